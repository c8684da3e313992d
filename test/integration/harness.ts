/**
 * In-process skiffd for integration tests: a Daemon on temp dirs with its own namespace, a
 * busybox rootfs, and a cleanup that proves nothing is left (and removes what is, by PID/path).
 */
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { randomBytes, randomInt } from "node:crypto";
import { installDefaultConflist } from "../../src/cni/config.js";
import { listNetns, removeNetns, NETNS_PREFIX } from "../../src/cni/netns.js";
import { defaultConfig, type Config } from "../../src/config.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { silentLogger, createLogger } from "../../src/log.js";
import type { TeardownHooks } from "../../src/tasks/teardown.js";
import { makeBusyboxRootfs } from "../../src/testing/rootfs.js";
import { mkfifo, openFifoReader } from "../../src/runtime/fifo.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { mountsUnder, unmountAll } from "../../src/runtime/mount-linux.js";
import { run } from "../../src/util/exec.js";
import { removeTree } from "../../src/util/remove-tree.js";

export interface Env {
  dir: string;
  cfg: Config;
  rootfs: string;
  /** Shim pids seen during the test (all must be gone at the end). */
  shimPids: Set<number>;
}

const logger = process.env.SKIFF_TEST_LOG ? createLogger(process.env.SKIFF_TEST_LOG) : silentLogger;

export async function makeEnv(prefix = "skiff-it-"): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const cfg = defaultConfig();
  cfg.root = path.join(dir, "root");
  cfg.state = path.join(dir, "state");
  cfg.socket = path.join(dir, "run", "skiff.sock");
  cfg.debugSocket = path.join(dir, "run", "debug.sock");
  cfg.namespace = `skiff-test-${randomBytes(4).toString("hex")}`;
  cfg.timeouts = { shimCallMs: 5000, shimStartMs: 10_000, shimExitMs: 3000 };
  cfg.teardown = { initialBackoffMs: 200, maxBackoffMs: 2000 };
  cfg.builtinImages = false; // tests that need images turn this on (see images.test.ts)
  // A network of the test's own: bridge, subnet and IPAM store (removed by cleanupEnv).
  const tag = cfg.namespace.slice(-8);
  cfg.cni.confDir = path.join(dir, "net.d");
  cfg.cni.defaultBridge = `skb${tag}`;
  cfg.cni.defaultSubnet = `10.252.${randomInt(0, 256)}.0/24`;
  await installDefaultConflist(cfg.cni.confDir, {
    subnet: cfg.cni.defaultSubnet,
    bridge: cfg.cni.defaultBridge,
    name: `skn-${tag}`,
    dataDir: path.join(dir, "ipam"),
  });
  const rootfs = path.join(dir, "rootfs");
  await mkdir(rootfs);
  await makeBusyboxRootfs(rootfs);
  return { dir, cfg, rootfs, shimPids: new Set() };
}

export async function startDaemon(env: Env, hooks?: TeardownHooks): Promise<Daemon> {
  const d = new Daemon(env.cfg, logger, { hooks });
  await d.start();
  return d;
}

/** Records the pids of every shim the daemon knows now (call after creating tasks). */
export function noteShims(env: Env, d: Daemon): void {
  for (const s of d.meta.shims.list()) if (s.pid) env.shimPids.add(s.pid);
}

/** A stdout FIFO with a reader that collects everything written to it. */
export async function stdoutCollector(env: Env, name: string) {
  const p = path.join(env.dir, `${name}.stdout`);
  await mkfifo(p);
  const sock = await openFifoReader(p);
  let text = "";
  const ended = new Promise<void>((resolve) => {
    sock.on("data", (b: Buffer) => (text += b.toString()));
    sock.on("end", () => resolve());
    sock.on("close", () => resolve());
    sock.on("error", () => resolve());
  });
  return { path: p, text: () => text, ended, close: () => sock.destroy() };
}

/**
 * Asserts nothing of the test is left (shims, runc containers, mounts under the temp dir), then
 * force-cleans whatever is left so one failing test does not poison the next, and removes the
 * temp dir. Returns a list of leftovers (empty when clean).
 */
export async function cleanupEnv(env: Env, d?: Daemon): Promise<string[]> {
  const leftovers: string[] = [];
  if (d) {
    for (const s of d.meta?.shims?.list() ?? []) if (s.pid) env.shimPids.add(s.pid);
    await d.close().catch(() => {});
  }
  // Also shims no test noted (e.g. a test failed before noting them): found by their namespace.
  for (const pid of await shimPidsOfNamespace(env.cfg.namespace)) env.shimPids.add(pid);
  for (const pid of env.shimPids) {
    if (await isAlive(pid)) {
      leftovers.push(`shim pid ${pid}`);
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
      await waitForExit(pid, 3000);
    }
  }
  const runcRoot = path.join("/run/containerd/runc", env.cfg.namespace);
  const list = await run("runc", ["--root", runcRoot, "list", "-q"]);
  for (const id of list.stdout.toString().split("\n").filter(Boolean)) {
    leftovers.push(`runc container ${id}`);
    await run("runc", ["--root", runcRoot, "delete", "-f", id]);
  }
  await rm(runcRoot, { recursive: true, force: true });
  for (const ns of await listNetns()) {
    if (ns.startsWith(`${NETNS_PREFIX}${env.cfg.namespace}-`)) {
      leftovers.push(`netns ${ns}`);
      await removeNetns(ns).catch(() => {});
    }
  }
  for (const rule of await removeCniRulesOf(`skn-${env.cfg.namespace.slice(-8)}`)) leftovers.push(`iptables ${rule}`);
  await run("ip", ["link", "del", env.cfg.cni.defaultBridge]);
  const mounts = await mountsUnder(env.dir);
  if (mounts.length) {
    leftovers.push(...mounts.map((m) => `mount ${m}`));
    await unmountAll(env.dir).catch(() => {});
  }
  await removeTree(env.dir);
  return leftovers;
}

/**
 * Removes the nat rules and chains the CNI plugins made for network `name` (pods whose network
 * was never torn down, e.g. after a failed test) and returns the removed rules.
 */
export async function removeCniRulesOf(name: string): Promise<string[]> {
  const text = (await run("iptables-save", ["-t", "nat"])).stdout.toString();
  const mark = String.raw`name: \"` + name + String.raw`\"`; // iptables-save escapes the comment's quotes
  const rules = text.split("\n").filter((l) => l.startsWith("-A ") && l.includes(mark));
  if (rules.length === 0) return [];
  const chains = new Set(rules.map((r) => r.split(" ")[1]!).filter((c) => c.startsWith("CNI-") && !c.startsWith("CNI-HOSTPORT")));
  const script = ["*nat", ...rules.filter((r) => !chains.has(r.split(" ")[1]!)).map((r) => r.replace(/^-A /, "-D ")), ...[...chains].flatMap((c) => [`-F ${c}`, `-X ${c}`]), "COMMIT", ""];
  await run("iptables-restore", ["--noflush"], { input: script.join("\n") });
  return rules;
}

/** Pids of live shim processes started with `-namespace NS`. */
export async function shimPidsOfNamespace(ns: string): Promise<number[]> {
  const { readdir, readFile } = await import("node:fs/promises");
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const argv = await readFile(`/proc/${name}/cmdline`, "utf8").then((t) => t.split("\0"), () => [] as string[]);
    if (!argv[0]?.endsWith("containerd-shim-runc-v2")) continue;
    const i = argv.indexOf("-namespace");
    if (i >= 0 && argv[i + 1] === ns) pids.push(Number(name));
  }
  return pids;
}

/** Writes env.cfg as a TOML file skiffd can load; returns its path. */
export async function writeConfig(env: Env): Promise<string> {
  const c = env.cfg;
  const lines = [
    `socket = ${JSON.stringify(c.socket)}`,
    `debug_socket = ${JSON.stringify(c.debugSocket)}`,
    `root = ${JSON.stringify(c.root)}`,
    `state = ${JSON.stringify(c.state)}`,
    `namespace = ${JSON.stringify(c.namespace)}`,
    `builtin_images = ${c.builtinImages}`,
    `pause_binary = ${JSON.stringify(c.pauseBinary)}`,
    `spawner_binary = ${JSON.stringify(c.spawnerBinary)}`,
    `[timeouts]`,
    `shim_call_ms = ${c.timeouts.shimCallMs}`,
    `shim_start_ms = ${c.timeouts.shimStartMs}`,
    `shim_exit_ms = ${c.timeouts.shimExitMs}`,
    `[teardown]`,
    `initial_backoff_ms = ${c.teardown.initialBackoffMs}`,
    `max_backoff_ms = ${c.teardown.maxBackoffMs}`,
  ];
  for (const [name, r] of Object.entries(c.runtimes)) {
    lines.push(`[runtimes.${name}]`, `shim = ${JSON.stringify(r.shim)}`, `binary_name = ${JSON.stringify(r.binaryName)}`);
  }
  lines.push(
    `[cri]`,
    `sandbox_image = ${JSON.stringify(c.cri.sandboxImage)}`,
    `exec_sync_max_output_bytes = ${c.cri.execSyncMaxOutputBytes}`,
    `[cni]`,
    `conf_dir = ${JSON.stringify(c.cni.confDir)}`,
    `bin_dirs = ${JSON.stringify(c.cni.binDirs)}`,
    `default_subnet = ${JSON.stringify(c.cni.defaultSubnet)}`,
    `default_bridge = ${JSON.stringify(c.cni.defaultBridge)}`,
    `plugin_timeout_ms = ${c.cni.pluginTimeoutMs}`,
  );
  lines.push(`[registry]`, `stall_timeout_ms = ${c.registry.stallTimeoutMs}`, `concurrency = ${c.registry.concurrency}`);
  for (const h of c.registry.hosts) {
    lines.push(`[registry.hosts.${JSON.stringify(h.host)}]`);
    if (h.insecure !== undefined) lines.push(`insecure = ${h.insecure}`);
    if (h.mirrors) lines.push(`mirrors = ${JSON.stringify(h.mirrors)}`);
    if (h.caFile) lines.push(`ca_file = ${JSON.stringify(h.caFile)}`);
    if (h.auth) lines.push(`username = ${JSON.stringify(h.auth.username)}`, `password = ${JSON.stringify(h.auth.password)}`);
  }
  const file = path.join(env.dir, "config.toml");
  const { writeFile } = await import("node:fs/promises");
  await writeFile(file, lines.join("\n") + "\n");
  return file;
}

/** Runs skiffd as a separate process (so a test can SIGKILL it); resolves once it serves. */
export async function spawnDaemon(env: Env, opts: { built?: boolean } = {}): Promise<import("node:child_process").ChildProcess> {
  const { spawn } = await import("node:child_process");
  const { DebugClient } = await import("../../src/daemon/debug-client.js");
  const file = await writeConfig(env);
  // built: the compiled daemon `make run` starts (benchmarks); otherwise the sources through tsx.
  const entry = opts.built
    ? [path.resolve(import.meta.dirname, "../../dist/cmd/skiffd.js")]
    : ["--import", "tsx", path.resolve(import.meta.dirname, "../../src/cmd/skiffd.ts")];
  const child = spawn(process.execPath, [...entry, "--config", file], {
    stdio: ["ignore", "ignore", process.env.SKIFF_TEST_LOG ? "inherit" : "ignore"],
    env: { ...process.env, SKIFF_LOG_LEVEL: process.env.SKIFF_TEST_LOG ?? "warn" },
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`skiffd exited with ${child.exitCode} during start-up`);
    try {
      const c = await DebugClient.connect(env.cfg.debugSocket, { timeoutMs: 500 });
      c.close();
      return child;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error("skiffd did not start within 20 s");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Stops a skiffd started by spawnDaemon (SIGTERM, then waits); no-op if it already exited. */
export async function stopDaemon(child: import("node:child_process").ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}
