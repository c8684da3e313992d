/**
 * CRI benchmark, side by side: skiff and containerd 1.6.20 (Debian's, test-owned config and
 * sockets, same shim, runc, images and grpc-js client) in one run. Prints per-RPC medians and
 * p99, the full pod+container lifecycle, exit→EXITED latency, 50 pods started concurrently
 * (total time, p99 of ListContainers meanwhile), daemon RSS with 100 pods, and daemon CPU (per
 * lifecycle, and idle with 100 pods; skiff's spawner helper counted with skiff); asserts nothing.
 *
 *   node --import tsx bench/cri.bench.ts [iterations=20] [--skiff-only]
 */
import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon, type Env } from "../test/integration/harness.js";
import { call, criClients } from "../test/integration/cri-client.js";
import { podConfig, ctrConfig } from "../test/integration/cri-helpers.js";
import { machine } from "./machine.js";

const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 20);
const skiffOnly = args.includes("--skiff-only");

interface Target {
  name: string;
  socket: string;
  pid: number;
  logDir: string;
  stop(): Promise<void>;
}

const OPS = [
  "RunPodSandbox",
  "CreateContainer",
  "StartContainer",
  "ContainerStatus",
  "ListContainers",
  "StopContainer",
  "RemoveContainer",
  "StopPodSandbox",
  "RemovePodSandbox",
] as const;
type Op = (typeof OPS)[number];

interface Result {
  ops: Record<Op, number[]>;
  lifecycle: number[];
  exitLatency: number[];
  concurrent: { totalMs: number; listP99: number };
  rssIdleMiB: number;
  rss100MiB: number;
  /** Daemon CPU per full pod + container lifecycle (ms). */
  cpuPerLifecycleMs: number;
  /** Daemon CPU with 100 pods running and no calls, % of one core over 10 s. */
  cpuIdle100Pct: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;
function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}
async function rssMiB(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU time (user + system, ms) of the daemon and of its helper processes (skiff's spawner). */
async function cpuMs(pid: number): Promise<number> {
  const { readdir } = await import("node:fs/promises");
  const ticks = async (p: number) => {
    const stat = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), cpu: Number(f[11]) + Number(f[12]) };
  };
  let total = (await ticks(pid)).cpu;
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const t = await ticks(Number(name));
    if (t.ppid === pid && t.comm.startsWith("skiff-spawner")) total += t.cpu;
  }
  return (total * 1000) / 100; // USER_HZ is 100 on Linux
}

async function timed<T>(out: number[], fn: () => Promise<T>): Promise<T> {
  const t0 = now();
  const r = await fn();
  out.push(now() - t0);
  return r;
}

/** One target's client and what was measured on it so far. */
interface Runner {
  t: Target;
  runtime: grpc.Client;
  close(): void;
  ops: Record<Op, number[]>;
  lifecycle: number[];
  exitLatency: number[];
  rssStartMiB: number;
  lifecycleCpuMs: number;
}

async function openRunner(t: Target): Promise<Runner> {
  const { runtime, close } = criClients(t.socket);
  const ops = Object.fromEntries(OPS.map((o) => [o, [] as number[]])) as Record<Op, number[]>;
  const r: Runner = { t, runtime, close, ops, lifecycle: [], exitLatency: [], rssStartMiB: await rssMiB(t.pid), lifecycleCpuMs: 0 };
  // Warm-up: the first pod fills caches on both sides (not recorded).
  await onePod(runtime, t, "warm", ops, true);
  return r;
}

async function lifecycleStep(r: Runner, i: number): Promise<void> {
  const cpu0 = await cpuMs(r.t.pid);
  const t0 = now();
  await onePod(r.runtime, r.t, `b${i}`, r.ops, false);
  r.lifecycle.push(now() - t0);
  // Background teardown (skiff's network and task teardown after the calls) is counted too:
  // settle before reading the CPU clock again.
  await sleep(300);
  r.lifecycleCpuMs += (await cpuMs(r.t.pid)) - cpu0;
}

/** exit → EXITED: a container that exits on its own; the first status that shows it. */
async function exitStep(r: Runner, i: number): Promise<void> {
  const c = (m: string, req: object) => call(r.runtime, m, req);
  const cfg = podConfig(`x${i}`, r.t.logDir);
  const pod = (await c("RunPodSandbox", { config: cfg })).pod_sandbox_id;
  const id = (await c("CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("x", ["sh", "-c", "sleep 0.3"]), sandbox_config: cfg })).container_id;
  await c("StartContainer", { container_id: id });
  for (;;) {
    const st = (await c("ContainerStatus", { container_id: id })).status;
    if (st.state === "CONTAINER_EXITED") {
      r.exitLatency.push(Date.now() - Number(BigInt(st.finished_at) / 1_000_000n));
      break;
    }
    await sleep(2);
  }
  await c("StopPodSandbox", { pod_sandbox_id: pod });
  await c("RemovePodSandbox", { pod_sandbox_id: pod });
}

/** The load phases (one target at a time): 50 concurrent pods, then RSS with 100 pods. */
async function loadPhases(r: Runner): Promise<Result> {
  const { runtime, t } = r;
  const c = (m: string, req: object) => call(runtime, m, req);
  const lists: number[] = [];
  let loading = true;
  const poller = (async () => {
    while (loading) await timed(lists, () => c("ListContainers", {}));
  })();
  const startPod = async (name: string) => {
    const cfg = podConfig(name, t.logDir);
    const pod = (await c("RunPodSandbox", { config: cfg })).pod_sandbox_id;
    const id = (await c("CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("s", ["sleep", "3600"]), sandbox_config: cfg })).container_id;
    await c("StartContainer", { container_id: id });
    return pod;
  };
  const t0 = now();
  const pods = await Promise.all(Array.from({ length: 50 }, (_, i) => startPod(`c${i}`)));
  const totalMs = now() - t0;
  loading = false;
  await poller;
  await removeAll(runtime, pods);
  const many: string[] = [];
  for (let i = 0; i < 100; i += 10) many.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => startPod(`r${i + j}`)))));
  await sleep(1000);
  const rss100MiB = await rssMiB(t.pid);
  const idle0 = await cpuMs(t.pid);
  await sleep(10_000);
  const cpuIdle100Pct = ((await cpuMs(t.pid)) - idle0) / 100;
  await removeAll(runtime, many);
  return {
    ops: r.ops,
    lifecycle: r.lifecycle,
    exitLatency: r.exitLatency,
    concurrent: { totalMs, listP99: q(lists, 0.99) },
    rssIdleMiB: r.rssStartMiB,
    rss100MiB,
    cpuPerLifecycleMs: r.lifecycleCpuMs / Math.max(1, r.lifecycle.length),
    cpuIdle100Pct,
  };
}

async function removeAll(runtime: grpc.Client, pods: string[]): Promise<void> {
  for (let i = 0; i < pods.length; i += 10) {
    await Promise.all(
      pods.slice(i, i + 10).map(async (pod) => {
        await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
        await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
      }),
    );
  }
}

async function onePod(runtime: grpc.Client, t: Target, name: string, ops: Record<Op, number[]>, warm: boolean): Promise<void> {
  const sink: Record<Op, number[]> = warm ? (Object.fromEntries(OPS.map((o) => [o, []])) as unknown as Record<Op, number[]>) : ops;
  const c = (m: Op, req: object) => timed(sink[m], () => call(runtime, m, req));
  const cfg = podConfig(name, t.logDir);
  const pod = (await c("RunPodSandbox", { config: cfg })).pod_sandbox_id;
  const id = (await c("CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("main", ["sleep", "3600"]), sandbox_config: cfg })).container_id;
  await c("StartContainer", { container_id: id });
  await c("ContainerStatus", { container_id: id });
  await c("ListContainers", {});
  await c("StopContainer", { container_id: id, timeout: 0 });
  await c("RemoveContainer", { container_id: id });
  await c("StopPodSandbox", { pod_sandbox_id: pod });
  await c("RemovePodSandbox", { pod_sandbox_id: pod });
}

async function skiffTarget(): Promise<{ target: Target; env: Env }> {
  const env = await makeEnv("skiff-bench-");
  env.cfg.builtinImages = true;
  env.cfg.timeouts = { shimCallMs: 10_000, shimStartMs: 10_000, shimExitMs: 5000 };
  const child = await spawnDaemon(env, { built: true }); // what `make run` starts (make bench builds)
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir, { recursive: true });
  return { env, target: { name: "skiff", socket: env.cfg.socket, pid: child.pid!, logDir, stop: () => stopDaemon(child) } };
}

const fmt = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : "–");

function table(results: [string, Result][]): void {
  const names = results.map(([n]) => n);
  const head = ["Operation", ...names.flatMap((n) => [`${n} p50 ms`, `${n} p99 ms`]), ...(names.length > 1 ? ["ratio p50"] : [])];
  const rows: string[][] = [];
  const add = (label: string, pick: (r: Result) => number[] | number) => {
    const cells: string[] = [];
    const p50s: number[] = [];
    for (const [, r] of results) {
      const v = pick(r);
      const p50 = Array.isArray(v) ? q(v, 0.5) : v;
      const p99 = Array.isArray(v) ? q(v, 0.99) : NaN;
      p50s.push(p50);
      cells.push(fmt(p50), fmt(p99));
    }
    rows.push([label, ...cells, ...(p50s.length > 1 ? [`${(p50s[0]! / p50s[1]!).toFixed(2)}×`] : [])]);
  };
  for (const op of OPS) add(op, (r) => r.ops[op]);
  add("Lifecycle sum (9 RPCs above)", (r) => OPS.reduce((s, op) => s + q(r.ops[op], 0.5), 0));
  add("Full pod+container lifecycle", (r) => r.lifecycle);
  add("exit → EXITED visible", (r) => r.exitLatency);
  add("50 pods concurrently: total", (r) => r.concurrent.totalMs);
  add("50 pods: ListContainers p99 meanwhile", (r) => r.concurrent.listP99);
  add("Daemon RSS at start (MiB)", (r) => r.rssIdleMiB);
  add("Daemon RSS with 100 pods (MiB)", (r) => r.rss100MiB);
  add("Daemon CPU per lifecycle (ms)", (r) => r.cpuPerLifecycleMs);
  add("Daemon CPU, 100 pods idle (% of a core)", (r) => r.cpuIdle100Pct);
  console.log(`| ${head.join(" | ")} |`);
  console.log(`| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}

// Both daemons run side by side; the per-RPC samples alternate between them, so background
// load on the machine falls on both alike. The load phases run one target at a time.
const results: [string, Result][] = [];
const s = await skiffTarget();
const peer = skiffOnly ? undefined : await (await import("./cri-peer.js")).containerdTarget();
const runners: Runner[] = [];
try {
  runners.push(await openRunner(s.target));
  if (peer) runners.push(await openRunner(peer.target));
  for (let i = 0; i < N; i++) for (const r of runners) await lifecycleStep(r, i);
  for (let i = 0; i < Math.min(N, 10); i++) for (const r of runners) await exitStep(r, i);
  for (const r of runners) results.push([r.t.name, await loadPhases(r)]);
} finally {
  for (const r of runners) r.close();
  await s.target.stop();
  const left = await cleanupEnv(s.env);
  if (left.length) console.error("skiff left behind:", left);
  await peer?.cleanup();
}
console.log(`\nCRI benchmark, ${N} iterations, ${new Date().toISOString().slice(0, 10)}, ${machine()}`);
table(results);
