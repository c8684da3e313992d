/**
 * Registry pull throughput over loopback: a ~200 MB image (4 layers of 50 MB random bytes, gzip'd,
 * so incompressible) in a local docker-registry on 127.0.0.1, pulled by
 *   - skiff's `pullImage` in-process into a fresh content store (and pull + unpack into overlay),
 *   - `skopeo copy docker://… dir:…`,
 *   - containerd 1.6 (`ctr content fetch` = fetch only; `ctr images pull` = fetch + unpack), a
 *     test-owned containerd with its own root, state and socket in a temp dir.
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
  const rows: [string, number][] = [];
  rows.push(["skiff pullImage (fetch + verify + record)", await timed((d) => skiffPull(d, false))]);
  rows.push(["skiff pullImage + unpack (overlay)", await timed((d) => skiffPull(d, true))]);
  rows.push([
    "skopeo copy docker:// → dir:",
    await timed((d) => runChecked("skopeo", ["copy", "--insecure-policy", "--src-tls-verify=false", `docker://${ref}`, `dir:${d}/out`])),
  ]);
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
  } catch (err) {
    console.error(`containerd comparison skipped: ${(err as Error).message}`);
  }

  const mb = bytes / 1e6;
  const base = rows[0]![1];
  console.log(`\nimage: ${LAYERS} layers, ${mb.toFixed(1)} MB compressed; medians of ${RUNS} runs over 127.0.0.1\n`);
  console.log(`| ${"Operation".padEnd(44)} | ${"time".padStart(9)} | ${"MB/s".padStart(7)} | ${"vs skiff pull".padStart(13)} |`);
  console.log(`| ${"-".repeat(44)} | ${"-".repeat(8)}: | ${"-".repeat(6)}: | ${"-".repeat(12)}: |`);
  for (const [name, ms] of rows) {
    console.log(
      `| ${name.padEnd(44)} | ${`${(ms / 1000).toFixed(2)} s`.padStart(9)} | ${(mb / (ms / 1000)).toFixed(0).padStart(7)} | ${`${(ms / base).toFixed(2)}×`.padStart(13)} |`,
    );
  }
  const time = (prefix: string) => rows.find(([n]) => n.startsWith(prefix))?.[1];
  for (const [label, a, b] of [
    ["skiff pull / skopeo copy", "skiff pullImage (", "skopeo"],
    ["skiff pull / ctr content fetch", "skiff pullImage (", "containerd 1.6 `ctr content"],
    ["skiff pull+unpack / ctr images pull", "skiff pullImage +", "containerd 1.6 `ctr images"],
  ] as const) {
    const ta = time(a);
    const tb = time(b);
    if (ta !== undefined && tb !== undefined) console.log(`${label}: ${(ta / tb).toFixed(2)}×`);
  }
} finally {
  for (const fn of cleanups.reverse()) await fn();
  await rm(work, { recursive: true, force: true });
}
