/**
 * The reliability suite, short version (3 pods or lifecycles each): every fault of test/faults/
 * against skiffd, each scenario ending with zero leftovers (shims, runc containers, mounts,
 * netns, veths, CNI rules, addresses, bundles, pod dirs, SQLite rows) and every exit code exact.
 * Plus a dropped ttrpc connection (in-process daemon). The full counts and the side-by-side
 * containerd 1.6.20 run are in test/soak/reliability.test.ts.
 * SKIFF_FAULT_SEED repeats the random schedules of scenarios 3 and 4 (the seed is printed).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { makeRng } from "../faults/random.js";
import type { FaultyCniPlugin } from "../faults/cni-plugin.js";
import type { SmallFs } from "../faults/full-disk.js";
import type { ScenarioResult } from "../reliability/cri.js";
import { ioPressureTeardown, heldPipeTeardown, shimKills, STALL_MS } from "../reliability/scenarios.js";
import { daemonKills } from "../reliability/restarts.js";
import { cniFaults, fullStateDir, withCniFaults, withFullState, CNI_TIMEOUT_MS } from "../reliability/host-faults.js";
import { startSkiff, SLOW_HANDLER, type SkiffTarget } from "../reliability/targets.js";
import { callT, waitExited } from "../reliability/cri.js";
import { describe, waitClean } from "../reliability/audit.js";
import { podConfig, ctrConfig } from "./cri-helpers.js";
import { sleep } from "../../src/util/signal.js";
import { assertPerfect as judge, details, table } from "../reliability/report.js";
import { dropShimConnection } from "../faults/ttrpc-drop.js";
import { makeEnv, startDaemon, cleanupEnv, noteShims } from "./harness.js";
import { bindRootfs, defaultSpec } from "../../src/oci/spec.js";
import { waitForExit } from "../../src/util/proc.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";

const N = 3;
const results: ScenarioResult[] = [];

/** Kept for the table printed at the end, then judged (report.ts). */
function assertPerfect(r: ScenarioResult, minExits: number): void {
  results.push(r);
  judge(r, minExits);
}

let shared: SkiffTarget | undefined;
before(async () => {
  shared = await startSkiff();
});
after(async () => {
  console.log(`\nreliability (short), N=${N}\n${table(results)}`);
  if (shared) assert.deepEqual(await shared.close(), [], "the shared daemon's env is clean");
});

test("1: umount2 +15 s in every pod's shim: exits exact, stop prompt, nothing left", { timeout: 120_000 }, async () => {
  const r = await ioPressureTeardown(shared!, N);
  assertPerfect(r, N);
  assert.ok(Math.max(...r.exitVisibleMs) < 2000, `exit visible after ${r.exitVisibleMs.join(", ")} ms`);
  assert.equal(r.stopPodMs.length, N);
  assert.ok(Math.max(...r.stopPodMs) < STALL_MS, `StopPodSandbox waited for the stall: ${r.stopPodMs.join(", ")} ms`);
});

test("2: runc delete +15 s (held pipe): exits exact, stop prompt, nothing left", { timeout: 120_000 }, async () => {
  const r = await heldPipeTeardown(shared!, N);
  assertPerfect(r, N);
  assert.ok(Math.max(...r.stopPodMs) < STALL_MS, `StopPodSandbox waited for the stalled delete: ${r.stopPodMs.join(", ")} ms`);
});

test("4: shims SIGKILLed while pods run: EXITED with a code, known codes kept, nothing left", { timeout: 120_000 }, async () => {
  const rng = makeRng();
  const r = await shimKills(shared!, N + 1, rng);
  assertPerfect(r, N + 1);
  // A dead shim's tasks are gone (NotFound, exit recorded by teardown), not "unreachable".
  assert.equal(r.retries, 0, `StopPodSandbox/RemovePodSandbox needed retries\n${details(r)}`);
});

test("3: skiffd SIGKILLed at random points of pod lifecycles: exits exact, nothing left", { timeout: 180_000 }, async (t) => {
  const target = await startSkiff();
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await daemonKills(target, N, makeRng());
  assertPerfect(r, N);
});

test("5: CNI ADD fails (clean failure) and DEL hangs (stop returns, teardown finishes)", { timeout: 120_000 }, async (t) => {
  const f: { plugin?: FaultyCniPlugin } = {};
  const target = await startSkiff({ prepare: (env) => withCniFaults(env, f) });
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await cniFaults(target, f.plugin!, N);
  assertPerfect(r, N);
  assert.ok(r.stopPodMs.every((ms) => ms < CNI_TIMEOUT_MS));
});

test("6: state dir full during RunPodSandbox: clean error, nothing half made, works once freed", { timeout: 120_000 }, async (t) => {
  const f: { fs?: SmallFs } = {};
  const target = await startSkiff({ prepare: (env) => withFullState(env, f) });
  target.ignoreMounts = [target.env.cfg.state];
  target.beforeCleanup = () => f.fs!.unmount();
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await fullStateDir(target, f.fs!, N);
  assertPerfect(r, N);
});

test("7: ttrpc connection to a shim dropped: skiff reconnects, the exit code is exact, the shim goes", { timeout: 60_000 }, async (t) => {
  // In-process daemon: a unix socket's daemon end cannot be closed from outside (see ttrpc-drop.ts).
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));
  d.containers.create({ id: "drop", spec: defaultSpec({ args: ["sh", "-c", "sleep 2; exit 9"] }), rootfs: bindRootfs(env.rootfs) });
  await d.tasks.create("drop");
  noteShims(env, d);
  await d.tasks.start("drop");
  const shimPid = d.meta.shims.get("drop").pid!;
  const before = d.shims.peek("drop")!.ttrpc;
  assert.equal(dropShimConnection(d, "drop"), true);
  assert.equal(before.isClosed, true, "the old connection is gone");
  // The exit happens after the drop: only a re-armed Wait on a new connection can see it.
  const exit = await d.tasks.wait("drop", { signal: AbortSignal.timeout(15_000) });
  assert.equal(exit.exitStatus, 9);
  assert.notEqual(d.shims.peek("drop")?.ttrpc, before, "a new connection");
  assert.equal((await d.tasks.delete("drop", { signal: AbortSignal.timeout(15_000) })).exitStatus, 9);
  assert.equal(await waitForExit(shimPid, 10_000), true, "shim shut down");
  assert.deepEqual(await mountsUnder(env.dir), []);
});

/**
 * Runs a pod on the wrapper handler, holds its container's `runc create` after runc made the
 * container and SIGKILLs skiffd meanwhile (the shim cancels the cut Create and keeps no record;
 * runc's container stays), then restarts skiffd. Returns the target, pod and container.
 */
async function cutCreate(t: { after(fn: () => Promise<void>): void }, name: string) {
  const target = await startSkiff();
  t.after(async () => assert.deepEqual(await target.close(), []));
  const cfg = podConfig(name, target.logDir, { labels: { app: name } });
  const pod = (await callT(target.runtime, "RunPodSandbox", { config: cfg, runtime_handler: SLOW_HANDLER })).pod_sandbox_id as string;
  const ctr = (
    await callT(target.runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: ctrConfig(name, ["sh", "-c", "exit 42"], { image: { image: target.image }, log_path: `${name}.log` }),
      sandbox_config: cfg,
    })
  ).container_id as string;
  await target.wrapper.set({ createHoldS: 60 });
  const starting = callT(target.runtime, "StartContainer", { container_id: ctr }).catch((err: unknown) => err);
  for (const end = Date.now() + 20_000; (await target.wrapper.heldCreates()) === 0; await sleep(50)) {
    assert.ok(Date.now() < end, "runc create was never held");
  }
  target.child.kill("SIGKILL");
  assert.ok((await starting) instanceof Error, "the cut StartContainer failed");
  await target.wrapper.set({});
  await target.restart();
  const st = (await callT(target.runtime, "ContainerStatus", { container_id: ctr })).status;
  assert.equal(st.state, "CONTAINER_CREATED", `it never ran: ${JSON.stringify(st)}`);
  return { target, pod, ctr };
}

async function removeAndAudit(target: SkiffTarget, pod: string): Promise<void> {
  await callT(target.runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await callT(target.runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  const { left } = await waitClean(() => target.audit(), 30_000);
  assert.deepEqual(describe(left), [], "nothing left: no runc container, shim, mount or row");
}

test("3b: skiffd SIGKILLed after runc made a container, before the shim's Create returned: it starts cleanly after the restart", { timeout: 120_000 }, async (t) => {
  const { target, pod, ctr } = await cutCreate(t, "cut-create");
  await callT(target.runtime, "StartContainer", { container_id: ctr });
  const { status } = await waitExited(() => target.runtime, ctr, { timeoutMs: 20_000 });
  assert.equal(status?.state, "CONTAINER_EXITED");
  assert.equal(status?.exit_code, 42, "its own exit code");
  await removeAndAudit(target, pod);
});

test("3c: the same cut create, then the pod removed without starting it: runc's container goes too", { timeout: 120_000 }, async (t) => {
  const { target, pod } = await cutCreate(t, "cut-create-rm");
  await removeAndAudit(target, pod);
});
