/**
 * Test fixtures for the registry client: a real `docker-registry` on 127.0.0.1, OCI layouts built
 * on disk (GNU tar + gzip over Debian's busybox) and pushed with `skopeo`, and small node:http
 * servers. Everything started here is stopped and removed in `t.after`.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";

const run = promisify(execFile);

export interface T {
  after: (fn: () => unknown) => void;
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export async function tempDir(t: T, prefix = "skiff-registry-"): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function freePort(): Promise<number> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * Starts `docker-registry serve` on a free 127.0.0.1 port (plain HTTP); killed by PID in `t.after`.
 * With `htpasswd` (the file's contents: `user:<bcrypt hash>` lines) it demands HTTP Basic
 * credentials.
 */
export async function startRegistry(t: T, opts: { htpasswd?: string } = {}): Promise<{ host: string; port: number }> {
  const dir = await tempDir(t, "skiff-dreg-");
  const port = await freePort();
  const auth: string[] = [];
  if (opts.htpasswd !== undefined) {
    await writeFile(path.join(dir, "htpasswd"), opts.htpasswd);
    auth.push("auth:", "  htpasswd:", "    realm: skiff-test", `    path: ${dir}/htpasswd`);
  }
  const cfg = [
    "version: 0.1",
    "log:",
    "  level: error",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${dir}/data`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    ...auth,
    "",
  ].join("\n");
  await writeFile(path.join(dir, "config.yml"), cfg);
  const child = spawn("/usr/bin/docker-registry", ["serve", path.join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  t.after(async () => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    await exited;
  });
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(`http://${host}/v2/`, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || (opts.htpasswd !== undefined && res.statusCode === 401));
      });
      req.on("error", () => resolve(false));
    });
    if (ok) return { host, port };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layers: { bytes: Buffer; digest: string }[];
}

/** Builds a one-layer image: busybox-static as /bin/busybox plus a marker file naming `arch`. */
export async function buildImage(work: string, arch: string): Promise<BuiltImage> {
  const rootfs = await mkdtemp(path.join(work, `rootfs-${arch}-`));
  await mkdir(path.join(rootfs, "bin"));
  await copyFile("/bin/busybox", path.join(rootfs, "bin/busybox"));
  await writeFile(path.join(rootfs, "arch"), `${arch}\n`);
  const tarFile = path.join(work, `layer-${arch}.tar.gz`);
  await run("sh", ["-c", `tar --sort=name --owner=0 --group=0 --mtime=@0 -C '${rootfs}' -cf - . | gzip -n > '${tarFile}'`]);
  const layer = await import("node:fs/promises").then((f) => f.readFile(tarFile));
  const diffId = sha(gunzipSync(layer));
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: "linux",
      config: { Cmd: ["/bin/busybox", "sh"] },
      rootfs: { type: "layers", diff_ids: [diffId] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(layer), size: layer.length }],
    }),
  );
  return { manifest, manifestDigest: sha(manifest), config, configDigest: sha(config), layers: [{ bytes: layer, digest: sha(layer) }] };
}

async function writeBlobFile(layout: string, b: Buffer): Promise<string> {
  const d = sha(b);
  await writeFile(path.join(layout, "blobs/sha256", d.slice(7)), b);
  return d;
}

/**
 * Writes an OCI layout holding `images` under tag `tag`: one image → its manifest; several → an
 * index with one entry per image (platform linux/<arch>). Returns the layout dir and top digest.
 */
export async function writeLayout(work: string, tag: string, images: { img: BuiltImage; arch: string }[]) {
  const layout = await mkdtemp(path.join(work, "layout-"));
  await mkdir(path.join(layout, "blobs/sha256"), { recursive: true });
  await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const { img } of images) {
    await writeBlobFile(layout, img.manifest);
    await writeBlobFile(layout, img.config);
    for (const l of img.layers) await writeBlobFile(layout, l.bytes);
  }
  let top: { mediaType: string; digest: string; size: number };
  if (images.length === 1) {
    const m = images[0]!.img.manifest;
    top = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha(m), size: m.length };
  } else {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: images.map(({ img, arch }) => ({
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: img.manifestDigest,
          size: img.manifest.length,
          platform: { os: "linux", architecture: arch, ...(arch === "arm64" ? { variant: "v8" } : {}) },
        })),
      }),
    );
    const d = await writeBlobFile(layout, index);
    top = { mediaType: "application/vnd.oci.image.index.v1+json", digest: d, size: index.length };
  }
  await writeFile(
    path.join(layout, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { "org.opencontainers.image.ref.name": tag } }] }),
  );
  return { layout, digest: top.digest };
}

/** `skopeo copy` an OCI layout tag into `host/repo:tag` over plain HTTP (`creds`: "user:password"). */
export async function push(layout: string, tag: string, host: string, repo: string, opts: { creds?: string } = {}): Promise<void> {
  await run("skopeo", [
    "copy",
    "--all",
    "--preserve-digests",
    "--insecure-policy",
    "--dest-tls-verify=false",
    ...(opts.creds !== undefined ? ["--dest-creds", opts.creds] : []),
    `oci:${layout}:${tag}`,
    `docker://${host}/${repo}:${tag}`,
  ]);
}

/** A node:http server on 127.0.0.1, closed (with its connections) in `t.after`. */
export async function startServer(t: T, handler: http.RequestListener): Promise<{ host: string; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Forwards a request to `target` (host:port) and pipes the answer back. */
export function forward(req: http.IncomingMessage, res: http.ServerResponse, target: string): void {
  const headers = { ...req.headers, host: target };
  delete headers.authorization;
  const up = http.request(
    `http://${target}${req.url ?? "/"}`,
    { method: req.method, headers },
    (ur) => {
      const headers = { ...ur.headers };
      if (typeof headers.location === "string") headers.location = headers.location.replace(`http://${target}`, "");
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    },
  );
  up.on("error", () => res.destroy());
  req.pipe(up);
}

export { sha };
