/**
 * Where skiffd's main thread spends its time during pod lifecycles: starts the built daemon with
 * V8's CPU profiler, runs N full pod + container lifecycles through the CRI (the same calls as
 * bench/cri.bench.ts), stops it, and prints the functions with the most self time (idle
 * excluded), per lifecycle. Time in synchronous native calls (SQLite, fsync) counts as the
 * caller's: that is event-loop time no other RPC can use.
 *
 *   node --import tsx bench/cri-profile.ts [lifecycles=30] [top=30]
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { makeEnv, cleanupEnv, writeConfig } from "../test/integration/harness.js";
import { call, criClients } from "../test/integration/cri-client.js";
import { podConfig, ctrConfig } from "../test/integration/cri-helpers.js";
import { DebugClient } from "../src/daemon/debug-client.js";

const [N = 30, TOP = 30] = process.argv.slice(2).map(Number);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

// Samples are counted between these (CLOCK_MONOTONIC µs, the clock of V8's profile timestamps):
// start-up (built-in images, module compilation) and shutdown are left out.
let windowStartUs = 0;
let windowEndUs = 0;
const env = await makeEnv("skiff-prof-");
env.cfg.builtinImages = true;
const profDir = await mkdtemp(path.join(tmpdir(), "skiff-prof-out-"));
const daemon = spawn(
  process.execPath,
  ["--cpu-prof", `--cpu-prof-dir=${profDir}`, path.resolve(import.meta.dirname, "../dist/cmd/skiffd.js"), "--config", await writeConfig(env)],
  { stdio: "ignore", env: { ...process.env, SKIFF_LOG_LEVEL: "warn" } },
);
try {
  for (let tries = 0; ; tries++) {
    try {
      (await DebugClient.connect(env.cfg.debugSocket, { timeoutMs: 500 })).close();
      break;
    } catch (err) {
      if (tries > 200) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const { runtime, close } = criClients(env.cfg.socket);
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const t0 = performance.now();
  windowStartUs = Number(process.hrtime.bigint() / 1000n);
  for (let i = 0; i < N; i++) {
    const cfg = podConfig(`p${i}`, logDir);
    const pod = (await call(runtime, "RunPodSandbox", { config: cfg })).pod_sandbox_id;
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("main", ["sleep", "3600"]), sandbox_config: cfg })).container_id;
    await call(runtime, "StartContainer", { container_id: id });
    await call(runtime, "ContainerStatus", { container_id: id });
    await call(runtime, "ListContainers", {});
    await call(runtime, "StopContainer", { container_id: id, timeout: 0 });
    await call(runtime, "RemoveContainer", { container_id: id });
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  }
  console.log(`${N} lifecycles in ${(performance.now() - t0).toFixed(0)} ms`);
  await new Promise((r) => setTimeout(r, 1000)); // background teardown
  windowEndUs = Number(process.hrtime.bigint() / 1000n);
  close();
} finally {
  daemon.kill("SIGTERM");
  await new Promise((r) => daemon.once("exit", r));
  const left = await cleanupEnv(env);
  if (left.length) console.error("left behind:", left);
}

const file = (await readdir(profDir)).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error("no profile written");
const prof = JSON.parse(await readFile(path.join(profDir, file), "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
await rm(profDir, { recursive: true, force: true });
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
let at = prof.startTime;
prof.samples.forEach((id, i) => {
  const us = prof.timeDeltas[i] ?? 0;
  at += us;
  const cf = byId.get(id)!.callFrame;
  if (cf.functionName === "(idle)" || at < windowStartUs || at > windowEndUs) return;
  total += us;
  const where = cf.url ? ` ${cf.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${cf.lineNumber + 1}` : "";
  const key = `${cf.functionName || "(anonymous)"}${where}`;
  self.set(key, (self.get(key) ?? 0) + us);
});
console.log(`main thread busy ${(total / 1000).toFixed(0)} ms during the lifecycles: ${(total / 1000 / N).toFixed(1)} ms per lifecycle`);
console.log("| self ms per lifecycle | function |\n| ---: | --- |");
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`| ${(us / 1000 / N).toFixed(2)} | \`${k}\` |`);
