/**
 * Fixtures for the image tests (used only by `*.test.ts`): two layers with whiteouts, and
 * builders for OCI layout and `docker save` archives made with GNU tar.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { unmountAll } from "../runtime/mount-linux.js";
import { makeTar } from "../unpack/tar-writer.js";
import { runChecked } from "../util/exec.js";

export const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const hex = (b: Buffer | string) => sha(b).slice(7);

/** Lower: a, b, d/x. Upper: whiteout of a, opaque d with d/y. Merged: b, d/y. */
export const LOWER = makeTar([
  { name: "a", data: "a" },
  { name: "b", data: "b" },
  { name: "d/", type: "dir" },
  { name: "d/x", data: "x" },
]);
export const UPPER = makeTar([
  { name: ".wh.a", data: "" },
  { name: "d/", type: "dir" },
  { name: "d/.wh..wh..opq", data: "" },
  { name: "d/y", data: "y" },
]);

export function configFor(layers: Buffer[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["sh"], Env: ["PATH=/bin"], ...extra },
      rootfs: { type: "layers", diff_ids: layers.map(sha) },
    }),
  );
}

export interface OciLayoutOptions {
  layers?: Buffer[];
  /** Annotations of the index.json entry. */
  annotations?: Record<string, string>;
  /** Replace a blob's bytes after the digests are computed (corruption). */
  corrupt?: (digest: string, data: Buffer) => Buffer;
}

/** Writes an OCI image layout dir with one gzip-layered image; returns its manifest digest. */
export async function writeOciLayout(dir: string, opts: OciLayoutOptions = {}): Promise<{ manifest: string; config: string }> {
  const layers = opts.layers ?? [LOWER, UPPER];
  const blobs = path.join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer) => {
    const d = sha(data);
    await writeFile(path.join(blobs, d.slice(7)), opts.corrupt ? opts.corrupt(d, data) : data);
    return { digest: d, size: data.length };
  };
  const gz = layers.map((l) => gzipSync(l));
  const layerDescs = [];
  for (const g of gz) layerDescs.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...(await put(g)) });
  const config = configFor(layers);
  const configDesc = { mediaType: "application/vnd.oci.image.config.v1+json", ...(await put(config)) };
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: configDesc, layers: layerDescs }),
  );
  const m = await put(manifest);
  await writeFile(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    path.join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...m, annotations: opts.annotations ?? {} }],
    }),
  );
  return { manifest: m.digest, config: configDesc.digest };
}

/** Writes a legacy `docker save` dir (uncompressed layers); returns the config digest. */
export async function writeDockerSave(
  dir: string,
  opts: { layers?: Buffer[]; repoTags?: string[]; corruptLayer?: number; config?: Record<string, unknown> } = {},
): Promise<{ config: string }> {
  const layers = opts.layers ?? [LOWER, UPPER];
  await mkdir(dir, { recursive: true });
  const config = configFor(layers, opts.config);
  await writeFile(path.join(dir, `${hex(config)}.json`), config);
  const names: string[] = [];
  for (const [i, l] of layers.entries()) {
    const id = hex(`layer-${i}-${hex(l)}`);
    await mkdir(path.join(dir, id));
    const data = i === opts.corruptLayer ? Buffer.concat([l.subarray(0, 100), Buffer.from("X"), l.subarray(101)]) : l;
    await writeFile(path.join(dir, id, "layer.tar"), data);
    await writeFile(path.join(dir, id, "VERSION"), "1.0");
    names.push(`${id}/layer.tar`);
  }
  await writeFile(
    path.join(dir, "manifest.json"),
    JSON.stringify([{ Config: `${hex(config)}.json`, RepoTags: opts.repoTags ?? ["example.com/app:v1"], Layers: names }]),
  );
  return { config: sha(config) };
}

/** Tars the contents of `dir` into `out` (gzip'd with `gzip: true`). */
export async function tarDir(dir: string, out: string, opts: { gzip?: boolean } = {}): Promise<string> {
  await runChecked("tar", ["-c", ...(opts.gzip ? ["-z"] : []), "-f", out, "-C", dir, "."]);
  return out;
}

/** A temp dir; `cleanup` unmounts whatever is mounted under it, then removes it. */
export async function tempRoot(prefix = "skiff-images-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return {
    dir,
    cleanup: async () => {
      await unmountAll(dir).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
