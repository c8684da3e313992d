/**
 * Built-in images, made locally so a node runs pods without any registry:
 * - `registry.k8s.io/pause:3.9`: one file, `/pause` (native/pause.c, compiled statically);
 * - `docker.io/library/busybox:latest`: Debian's busybox-static with a link per applet,
 *   /etc/passwd and /etc/group, /tmp 1777 (src/images/busybox-rootfs.ts, also used for test root file systems).
 *
 * Each is a one-layer OCI image. The layer is a GNU tar of the root directory with sorted names,
 * numeric owner 0, mtime 0 and no pax times, gzip'd by zlib with a fixed header, and the config
 * carries no timestamps, so the same inputs always give the same digests.
 * `buildBuiltinImages` is idempotent: a name already recorded with its blobs present is kept.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { type Digest, sha256Digest } from "../content/digest.js";
import { childrenOf } from "../content/refs.js";
import type { ContentStore } from "../content/store.js";
import type { ImageRecord, ImageStore } from "../metadata/images.js";
import { makeBusyboxRootfs } from "./busybox-rootfs.js";
import { runChecked } from "../util/exec.js";
import { throwIfAborted } from "../util/signal.js";
import { parseImageConfig } from "./config.js";
import { hostPlatform, MediaType } from "./oci.js";

export const PAUSE_IMAGE = "registry.k8s.io/pause:3.9";
export const BUSYBOX_IMAGE = "docker.io/library/busybox:latest";
/** Label on the image records of built-in images. */
export const BUILTIN_LABEL = "io.skiff.builtin";

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface BuiltinImagesOptions {
  store: ContentStore;
  images: ImageStore;
  /** Scratch space for root file systems and layer tars (cleaned up afterwards). */
  workDir: string;
  /** The compiled native/pause.c. */
  pauseBinary: string;
  signal?: AbortSignal;
}

interface BuiltinSpec {
  name: string;
  populate(rootfs: string): Promise<void>;
  config: Record<string, unknown>;
}

/** Makes and records every built-in image that is missing; returns all their records. */
export async function buildBuiltinImages(opts: BuiltinImagesOptions): Promise<ImageRecord[]> {
  const specs: BuiltinSpec[] = [
    {
      name: PAUSE_IMAGE,
      populate: async (rootfs) => {
        await copyFile(opts.pauseBinary, path.join(rootfs, "pause"));
        await chmod(path.join(rootfs, "pause"), 0o755);
      },
      config: { Entrypoint: ["/pause"], Env: [PATH_ENV], WorkingDir: "/" },
    },
    {
      name: BUSYBOX_IMAGE,
      populate: (rootfs) => makeBusyboxRootfs(rootfs),
      config: { Cmd: ["sh"], Env: [PATH_ENV], WorkingDir: "/" },
    },
  ];
  const out: ImageRecord[] = [];
  for (const spec of specs) {
    throwIfAborted(opts.signal, "builtin images");
    const existing = opts.images.find(spec.name);
    if (existing && (await complete(opts.store, existing.target.digest))) out.push(existing);
    else out.push(await build(spec, opts));
  }
  return out;
}

/** True if the manifest and every blob it references are in the store. */
async function complete(store: ContentStore, manifest: string): Promise<boolean> {
  if (!(await store.has(manifest))) return false;
  for (const d of childrenOf(await store.readAll(manifest))) if (!(await store.has(d))) return false;
  return true;
}

async function build(spec: BuiltinSpec, opts: BuiltinImagesOptions): Promise<ImageRecord> {
  await mkdir(opts.workDir, { recursive: true });
  const tmp = await mkdtemp(path.join(opts.workDir, "builtin-"));
  const lease = `builtin-${randomUUID()}`;
  try {
    const rootfs = path.join(tmp, "rootfs");
    await mkdir(rootfs);
    await chmod(rootfs, 0o755);
    await spec.populate(rootfs);
    const layer = await reproducibleLayer(rootfs, tmp, opts.signal);

    const { os, architecture } = hostPlatform();
    const configBytes = Buffer.from(
      JSON.stringify({
        architecture,
        os,
        config: spec.config,
        rootfs: { type: "layers", diff_ids: [layer.diffId] },
        history: [{ created_by: "skiff built-in image", comment: spec.name }],
      }),
    );
    const configDigest = sha256Digest(configBytes);
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
        layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size }],
      }),
    );
    const manifestDigest = sha256Digest(manifestBytes);

    await opts.store.lease(lease, { expiresAt: new Date(Date.now() + 3600 * 1000) });
    const w = { lease, signal: opts.signal };
    await opts.store.writeBlob(createReadStream(layer.file), { digest: layer.digest, size: layer.size }, w);
    await opts.store.writeBlob(configBytes, { digest: configDigest, size: configBytes.length }, w);
    await opts.store.writeBlob(manifestBytes, { digest: manifestDigest, size: manifestBytes.length }, w);
    return opts.images.put({
      name: spec.name,
      target: { digest: manifestDigest, mediaType: MediaType.OciManifest, size: manifestBytes.length },
      configDigest,
      config: parseImageConfig(configBytes),
      size: manifestBytes.length + configBytes.length + layer.size,
      labels: { [BUILTIN_LABEL]: "true" },
    });
  } finally {
    await opts.store.releaseLease(lease).catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Tars `rootfs` reproducibly into `dir`/layer.tar, gzips it; returns the digests. */
async function reproducibleLayer(
  rootfs: string,
  dir: string,
  signal?: AbortSignal,
): Promise<{ file: string; digest: Digest; diffId: Digest; size: number }> {
  const tar = path.join(dir, "layer.tar");
  const gz = path.join(dir, "layer.tar.gz");
  // Top-level entries by name, not ".": the archive must not carry the temp dir's own mode.
  const top = (await readdir(rootfs)).sort();
  await runChecked(
    "tar",
    ["-c", "-f", tar, "-C", rootfs, "--format=gnu", "--numeric-owner", "--owner=0", "--group=0", "--sort=name", "--mtime=@0", "--", ...top],
    { signal },
  );
  const diffId = await fileDigest(tar);
  await pipeline(createReadStream(tar), createGzip({ level: 9 }), createWriteStream(gz), { signal });
  return { file: gz, digest: await fileDigest(gz), diffId, size: (await stat(gz)).size };
}

async function fileDigest(file: string): Promise<Digest> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return `sha256:${h.digest("hex")}`;
}
