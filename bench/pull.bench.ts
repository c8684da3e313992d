/**
 * Registry pull throughput over loopback: a ~200 MB image (4 layers of 50 MB random bytes, gzip'd,
 * so incompressible) in a local docker-registry on 127.0.0.1, pulled by
 *   - skiff's `pullImage` in-process into a fresh content store (and pull + unpack into overlay),
 *   - `skopeo copy docker://… dir:…`,
 *   - containerd 1.6 (`ctr content fetch` = fetch only; `ctr images pull` = fetch + unpack), a
 *     test-owned containerd with its own root, state and socket in a temp dir,
 *   - and, as an archive: the same image written once by `skopeo copy` to an `oci-archive:` tar
 *     (blobs as in the registry, gzip'd) and a `docker-archive:` tar (skopeo stores its layers
 *     uncompressed), imported by skiff's `importArchive` into a fresh content store + SQLite image
 *     store, and by `ctr images import --no-unpack` (skiff's import does not unpack either).
 * Medians of `runs` (fresh stores every run). Everything started is stopped by PID; temp dirs go.
 *
 *   node --import tsx bench/pull.bench.ts [runs=3]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { defaultConfig } from "../src/config.js";
import { ContentStore } from "../src/content/store.js";
import { openSnapshotter } from "../src/daemon/snapshotter.js";
import { importArchive } from "../src/images/import.js";
import { pullImage } from "../src/images/pull.js";
import { ImageService } from "../src/images/service.js";
import { silentLogger } from "../src/log.js";
import { MetadataStore } from "../src/metadata/index.js";
import { RegistryHosts } from "../src/registry/hosts.js";
import { push, startRegistry } from "../src/registry/testing/fixtures.js";
import { run, runChecked } from "../src/util/exec.js";

const RUNS = Number(process.argv[2] ?? 3);
const LAYERS = 4;
const LAYER_MB = 50;
const work = await mkdtemp(path.join(tmpdir(), "skiff-bench-pull-"));
const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => void cleanups.push(fn) };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/** Writes the OCI layout; returns the total bytes of its blobs. */
async function buildLayout(layout: string): Promise<number> {
  const blobs = path.join(layout, "blobs/sha256");
  await mkdir(blobs, { recursive: true });
  const layers: { digest: string; size: number; diffId: string }[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const src = path.join(work, `src${i}`);
    await mkdir(src);
    await runChecked("sh", ["-c", `head -c ${LAYER_MB}M /dev/urandom > '${src}/random${i}'`]);
    const tar = path.join(work, `layer${i}.tar`);
    await runChecked("tar", ["--owner=0", "--group=0", "--mtime=@0", "-C", src, "-cf", tar, "."]);
    await runChecked("sh", ["-c", `gzip -1 -n -c '${tar}' > '${tar}.gz'`]);
    const digest = await sha256File(`${tar}.gz`);
    layers.push({ digest, size: (await stat(`${tar}.gz`)).size, diffId: await sha256File(tar) });
    await rename(`${tar}.gz`, path.join(blobs, digest.slice(7)));
    await rm(tar);
    await rm(src, { recursive: true });
  }
  const put = async (b: Buffer) => {
    const d = `sha256:${createHash("sha256").update(b).digest("hex")}`;
    await writeFile(path.join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const config = await put(
    Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) } })),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.size })),
      }),
    ),
  );
  await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    path.join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": "1" } }],
    }),
  );
  return manifest.size + config.size + layers.reduce((n, l) => n + l.size, 0);
}

async function timed(fn: (dir: string) => Promise<unknown>, setup?: (dir: string) => Promise<() => Promise<void>>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = await mkdtemp(path.join(work, "run-"));
    const teardown = setup ? await setup(dir) : undefined;
    try {
      await runChecked("sync", []);
      const t0 = process.hrtime.bigint();
      await fn(dir);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    } finally {
      await teardown?.();
      await rm(dir, { recursive: true, force: true });
    }
  }
  return median(times);
}

/** A containerd of its own in `dir`; returns its socket and a stop (SIGTERM by PID, then SIGKILL). */
async function startContainerd(dir: string): Promise<{ sock: string; stop: () => Promise<void> }> {
  const sock = path.join(dir, "containerd.sock");
  const cfg = [
    "version = 2",
    `root = ${JSON.stringify(path.join(dir, "root"))}`,
    `state = ${JSON.stringify(path.join(dir, "state"))}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    "[grpc]",
    `  address = ${JSON.stringify(sock)}`,
    "[ttrpc]",
    `  address = ${JSON.stringify(`${sock}.ttrpc`)}`,
    "[debug]",
    '  address = ""',
    "[metrics]",
    '  address = ""',
    "",
  ].join("\n");
  await writeFile(path.join(dir, "config.toml"), cfg);
  const child: ChildProcess = spawn("containerd", ["--config", path.join(dir, "config.toml")], { stdio: "ignore" });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if ((await run("ctr", ["--address", sock, "version"])).code === 0) return { sock, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error("containerd did not start");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

try {
  const layout = path.join(work, "layout");
  const bytes = await buildLayout(layout);
  const reg = await startRegistry(t);
  await push(layout, "1", reg.host, "bench/big");
  await rm(layout, { recursive: true });
  const ref = `${reg.host}/bench/big:1`;
  const hosts = new RegistryHosts([{ host: reg.host, insecure: true }]);

  const skiffPull = async (root: string, unpack: boolean) => {
    const meta = MetadataStore.open(path.join(root, "meta.db"));
    const content = new ContentStore(root);
    try {
      const img = await pullImage(ref, { content, images: meta.images, hosts });
      if (unpack) {
        const cfg = { ...defaultConfig(), root };
        const sn = await openSnapshotter(cfg, silentLogger);
        try {
          const svc = new ImageService({ content, images: meta.images, snapshotsDir: path.join(root, "snapshots") });
          await svc.unpack(img.name, sn);
        } finally {
          await sn.close();
        }
      }
    } finally {
      meta.close();
    }
  };
  // The archives, written once from the registry.
  const ociArchive = path.join(work, "img.tar");
  const dockerArchive = path.join(work, "img-docker.tar");
  // The OCI archive's ref name is a bare tag ("1"), named by `--base-name` / `name`; the docker
  // archive carries a full RepoTag.
  for (const dest of [`oci-archive:${ociArchive}:1`, `docker-archive:${dockerArchive}:bench/imported:1`]) {
    await runChecked("skopeo", ["copy", "--insecure-policy", "--src-tls-verify=false", `docker://${ref}`, dest]);
  }
  const archiveMB = {
    oci: (await stat(ociArchive)).size / 1e6,
    docker: (await stat(dockerArchive)).size / 1e6,
  };
  const skiffImport = async (root: string, archive: string) => {
    const meta = MetadataStore.open(path.join(root, "meta.db"));
    try {
      const content = new ContentStore(path.join(root, "content"));
      const tmpDir = path.join(root, "tmp");
      await mkdir(tmpDir);
      const recs = await importArchive(archive, { content, images: meta.images, name: "bench/imported:1", tmpDir });
      if (recs.length !== 1) throw new Error(`importArchive recorded ${recs.length} names`);
    } finally {
      meta.close();
    }
  };

  /** [operation, median ms, MB the MB/s column is computed from (default: the image's blobs)] */
  const rows: [string, number, number?][] = [];
  rows.push(["skiff pullImage (fetch + verify + record)", await timed((d) => skiffPull(d, false))]);
  rows.push(["skiff pullImage + unpack (overlay)", await timed((d) => skiffPull(d, true))]);
  rows.push([
    "skopeo copy docker:// → dir:",
    await timed((d) => runChecked("skopeo", ["copy", "--insecure-policy", "--src-tls-verify=false", `docker://${ref}`, `dir:${d}/out`])),
  ]);
  rows.push(["skiff importArchive, OCI archive", await timed((d) => skiffImport(d, ociArchive)), archiveMB.oci]);
  rows.push(["skiff importArchive, docker archive (tar layers)", await timed((d) => skiffImport(d, dockerArchive)), archiveMB.docker]);
  let ctrd: { sock: string; stop: () => Promise<void> } | undefined;
  const withContainerd = async (d: string) => {
    ctrd = await startContainerd(d);
    return async () => {
      await ctrd?.stop();
      ctrd = undefined;
    };
  };
  try {
    rows.push([
      "containerd 1.6 `ctr content fetch`",
      await timed((_d) => runChecked("ctr", ["--address", ctrd!.sock, "-n", "bench", "content", "fetch", "--plain-http", ref]), withContainerd),
    ]);
    rows.push([
      "containerd 1.6 `ctr images pull` (+ unpack)",
      await timed((_d) => runChecked("ctr", ["--address", ctrd!.sock, "-n", "bench", "images", "pull", "--plain-http", ref]), withContainerd),
    ]);
    const ctrImport = (archive: string, extra: string[]) => (_d: string) =>
      runChecked("ctr", ["--address", ctrd!.sock, "-n", "bench", "images", "import", "--no-unpack", ...extra, archive]);
    // Outside the timing: the import must have recorded the image, or the row measures nothing.
    const withContainerdExpecting = (name: string) => async (d: string) => {
      const stop = await withContainerd(d);
      return async () => {
        try {
          const ls = await runChecked("ctr", ["--address", ctrd!.sock, "-n", "bench", "images", "ls", "-q"]);
          if (!String(ls.stdout).split("\n").includes(name)) throw new Error(`ctr import did not record ${name}: ${String(ls.stdout)}`);
        } finally {
          await stop();
        }
      };
    };
    rows.push([
      "containerd 1.6 `ctr images import --no-unpack`, OCI archive",
      await timed(ctrImport(ociArchive, ["--base-name", "bench/imported"]), withContainerdExpecting("bench/imported:1")),
      archiveMB.oci,
    ]);
    rows.push([
      "containerd 1.6 `ctr images import --no-unpack`, docker archive",
      await timed(ctrImport(dockerArchive, []), withContainerdExpecting("docker.io/bench/imported:1")),
      archiveMB.docker,
    ]);
  } catch (err) {
    console.error(`containerd comparison skipped: ${(err as Error).message}`);
  }

  const mb = bytes / 1e6;
  const base = rows[0]![1];
  console.log(`\nimage: ${LAYERS} layers, ${mb.toFixed(1)} MB compressed; medians of ${RUNS} runs over 127.0.0.1`);
  console.log(`archives: OCI ${archiveMB.oci.toFixed(1)} MB, docker ${archiveMB.docker.toFixed(1)} MB (import MB/s is of the archive)\n`);
  const W = 62;
  console.log(`| ${"Operation".padEnd(W)} | ${"time".padStart(9)} | ${"MB/s".padStart(7)} | ${"vs skiff pull".padStart(13)} |`);
  console.log(`| ${"-".repeat(W)} | ${"-".repeat(8)}: | ${"-".repeat(6)}: | ${"-".repeat(12)}: |`);
  for (const [name, ms, rowMB = mb] of rows) {
    console.log(
      `| ${name.padEnd(W)} | ${`${(ms / 1000).toFixed(2)} s`.padStart(9)} | ${(rowMB / (ms / 1000)).toFixed(0).padStart(7)} | ${`${(ms / base).toFixed(2)}×`.padStart(13)} |`,
    );
  }
  const time = (prefix: string) => rows.find(([n]) => n.startsWith(prefix))?.[1];
  for (const [label, a, b] of [
    ["skiff pull / skopeo copy", "skiff pullImage (", "skopeo"],
    ["skiff pull / ctr content fetch", "skiff pullImage (", "containerd 1.6 `ctr content"],
    ["skiff pull+unpack / ctr images pull", "skiff pullImage +", "containerd 1.6 `ctr images pull"],
    ["skiff import / ctr images import --no-unpack, OCI archive", "skiff importArchive, OCI", "containerd 1.6 `ctr images import --no-unpack`, OCI"],
    ["skiff import / ctr images import --no-unpack, docker archive", "skiff importArchive, docker", "containerd 1.6 `ctr images import --no-unpack`, docker"],
  ] as const) {
    const ta = time(a);
    const tb = time(b);
    if (ta !== undefined && tb !== undefined) console.log(`${label}: ${(ta / tb).toFixed(2)}×`);
  }
} finally {
  for (const fn of cleanups.reverse()) await fn();
  await rm(work, { recursive: true, force: true });
}
