/**
 * The reliability scenarios on the pod teardown path. Each runs `count` pods, each with a
 * container exiting with its own known code, injects a fault, tears everything down as kubelet
 * would, and ends by counting what is left and comparing every reported exit with the truth.
 *
 *   1. IO-pressure teardown: umount2 +15 s (strace) in every pod's shim.            (both runtimes)
 *   2. Held pipe: first `runc delete` +15 s (runc wrapper of handler "slow").       (both runtimes)
 *   3. Daemon SIGKILLed at random points of pod lifecycles, restarted: restarts.ts.
 *   4. Shims SIGKILLed at random while pods run.                                       (skiff)
 *   5, 6. CNI ADD failing / DEL hanging, state dir full: host-faults.ts.
 *
 * Scenarios never throw for a runtime's misbehaviour: they record it in the result (the soak
 * table shows containerd's leaks side by side); the tests assert on skiff's results.
 */
import * as path from "node:path";
import { podConfig, ctrConfig } from "../integration/cri-helpers.js";
import type { Reply } from "../integration/cri-client.js";
import { delayUmount2, type Umount2Delay } from "../faults/strace.js";
import { killShims } from "../faults/kill.js";
import type { Rng } from "../faults/random.js";
import { sleep } from "../../src/util/signal.js";
import { describe, emptyLeftovers, minus, waitClean } from "./audit.js";
import { callT, checkExit, codeFor, errText, newResult, pool, waitExited, type ScenarioResult } from "./cri.js";
import { SLOW_HANDLER, type Target, type SkiffTarget } from "./targets.js";

/** The stall both seed scenarios inject, well past skiff's and containerd's shim call timeouts. */
export const STALL_MS = 15_000;

export interface PodRun {
  i: number;
  pod: string;
  ctr: string;
  code: number;
  cfg: Reply;
}

/** RunPodSandbox, CreateContainer (sh -c script), StartContainer; then `after(run)`. */
export async function startPod(t: Target, name: string, i: number, script: string, handler = ""): Promise<PodRun> {
  const cfg = podConfig(name, t.logDir);
  const pod = (await callT(t.runtime, "RunPodSandbox", { config: cfg, runtime_handler: handler })).pod_sandbox_id as string;
  const ccfg = ctrConfig(`c${i}`, ["sh", "-c", script], { image: { image: t.image }, log_path: `${name}.log` });
  const ctr = (await callT(t.runtime, "CreateContainer", { pod_sandbox_id: pod, config: ccfg, sandbox_config: cfg })).container_id as string;
  await callT(t.runtime, "StartContainer", { container_id: ctr });
  return { i, pod, ctr, code: codeFor(i), cfg };
}

/**
 * Stops and removes every pod concurrently (as kubelet does for many pods); times each stop.
 * A failed call is retried like kubelet's pod sync does (after 1 s, then 2 s; 3 calls in all); each
 * retry is counted in `r.retries`, and only a call that never succeeded is an error.
 */
export async function teardownPods(t: Target, r: ScenarioResult, pods: string[]): Promise<void> {
  const retrying = async (what: string, pod: string, fn: () => Promise<unknown>) => {
    for (let attempt = 1, wait = 1000; ; attempt++, wait *= 2) {
      try {
        await fn();
        return true;
      } catch (err) {
        if (attempt === 1) r.notes.push(`${what} ${pod.slice(0, 12)} failed first: ${errText(err).slice(0, 200)}`);
        if (attempt >= 3) {
          r.errors.push(`${what} ${pod.slice(0, 12)} failed ${attempt} times, last: ${errText(err)}`);
          return false;
        }
        r.retries++;
        await sleep(wait);
      }
    }
  };
  await Promise.all(
    pods.map(async (pod) => {
      await retrying("StopPodSandbox", pod, async () => {
        const t1 = Date.now();
        await callT(t.runtime, "StopPodSandbox", { pod_sandbox_id: pod });
        // The time of the call that succeeded; a retried stop also shows in `retries`.
        r.stopPodMs.push(Date.now() - t1);
      });
      await retrying("RemovePodSandbox", pod, () => callT(t.runtime, "RemovePodSandbox", { pod_sandbox_id: pod }));
    }),
  );
}

/**
 * Waits for the host to be clean and records what is left after `deadlineMs`; only what is not
 * in `baseline` (the audit taken when the scenario began) counts.
 */
export async function finish(t: Target, r: ScenarioResult, deadlineMs: number, baseline = emptyLeftovers()): Promise<void> {
  const { left, cleanMs } = await waitClean(async () => minus(await t.audit(), baseline), deadlineMs);
  r.leftovers = describe(left);
  r.leakedShims = left.shims.length;
  r.cleanMs = cleanMs;
}

/** Waits for each run's container to exit and checks its code; collects exit-visible lags. */
async function collectExits(t: Target, r: ScenarioResult, runs: PodRun[], timeoutMs: number): Promise<void> {
  const pollMs = runs.length <= 5 ? 20 : 100;
  await Promise.all(
    runs.map(async (x) => {
      const { status, visibleMs } = await waitExited(() => t.runtime, x.ctr, { timeoutMs, pollMs });
      checkExit(r, `container ${x.i} (${x.ctr.slice(0, 12)})`, status, x.code);
      if (Number.isFinite(visibleMs)) r.exitVisibleMs.push(visibleMs);
    }),
  );
}

/**
 * Scenario 1, IO-pressure teardown: each pod's container sleeps, then exits with its code; once
 * it runs, strace delays the first umount2 of its pod's shim (the rootfs unmount of the
 * container's Delete) by STALL_MS. Then every pod is stopped and removed.
 */
export async function ioPressureTeardown(t: Target, count: number): Promise<ScenarioResult> {
  const r = newResult("1 umount2 +15 s", t.name, count);
  const baseline = await t.audit();
  const straces: Umount2Delay[] = [];
  const sleepS = 6;
  try {
    const runs = await pool(
      Array.from({ length: count }, (_, i) => i),
      4,
      async (i) => {
        const x = await startPod(t, `s1-${i}`, i, `sleep ${sleepS}; exit ${codeFor(i)}`);
        const shim = (await t.shims()).find((s) => s.id === x.pod);
        if (!shim) throw new Error(`no shim with -id ${x.pod} for pod ${i}`);
        straces.push(await delayUmount2(shim.pid, { delayMs: STALL_MS, log: path.join(t.scratch, `strace-${x.pod.slice(0, 12)}.log`) }));
        return { ...x, attachedAt: Date.now() };
      },
    );
    await collectExits(t, r, runs, sleepS * 1000 + 30_000);
    for (const x of runs) {
      const st = (await callT(t.runtime, "ContainerStatus", { container_id: x.ctr })).status;
      if (Number(BigInt(st.finished_at) / 1_000_000n) < x.attachedAt) r.errors.push(`pod ${x.i}: exited before strace attached (injection late)`);
    }
    await teardownPods(t, r, runs.map((x) => x.pod));
    await finish(t, r, STALL_MS + 30_000, baseline);
    const delayed = (await Promise.all(straces.map((s) => s.delayed()))).reduce((a, b) => a + b, 0);
    r.faults = delayed;
    r.notes.push(`${delayed} umount2 call(s) delayed`);
    if (delayed < count) r.errors.push(`only ${delayed} of ${count} shims had an umount2 delayed: the fault did not take`);
  } catch (err) {
    r.errors.push(`scenario aborted: ${errText(err)}`);
  } finally {
    await Promise.all(straces.map((s) => s.detach()));
  }
  return r;
}

/**
 * Scenario 2, held pipe: pods on handler "slow" whose runc wrapper sleeps STALL_MS in the first
 * `runc delete` of each container (the container's and the pause container's), then stop and
 * remove. Once per id: a runtime that kills the slow delete at its timeout and retries can finish.
 */
export async function heldPipeTeardown(t: Target, count: number): Promise<ScenarioResult> {
  const r = newResult("2 runc delete +15 s", t.name, count);
  const baseline = await t.audit();
  const before = (await t.wrapper.deletes()).length;
  try {
    await t.wrapper.set({ deleteDelayS: STALL_MS / 1000, deleteDelayOnce: true });
    const runs = await pool(
      Array.from({ length: count }, (_, i) => i),
      4,
      (i) => startPod(t, `s2-${i}`, i, `sleep 2; exit ${codeFor(i)}`, SLOW_HANDLER),
    );
    await collectExits(t, r, runs, 40_000);
    await teardownPods(t, r, runs.map((x) => x.pod));
    await finish(t, r, 2 * STALL_MS + 30_000, baseline);
    const delayed = (await t.wrapper.deletes()).slice(before).filter((d) => d.action === "delayed").length;
    r.faults = delayed;
    r.notes.push(`${delayed} runc delete call(s) delayed`);
    if (delayed < count) r.errors.push(`only ${delayed} runc deletes delayed for ${count} pods: the fault did not take`);
  } catch (err) {
    r.errors.push(`scenario aborted: ${errText(err)}`);
  } finally {
    await t.wrapper.set({});
  }
  return r;
}

/**
 * Scenario 4, shims SIGKILLed at random while pods run: even pods' containers have exited with
 * their code before the kills (the code must survive), odd ones still run (their exit is then
 * unknowable: EXITED with a nonzero code is the truth to report). Then stop and remove.
 */
export async function shimKills(t: SkiffTarget, count: number, rng: Rng): Promise<ScenarioResult> {
  const r = newResult("4 shims SIGKILLed", t.name, count);
  r.seed = rng.seed;
  try {
    const runs = await pool(
      Array.from({ length: count }, (_, i) => i),
      4,
      (i) => startPod(t, `s4-${i}`, i, i % 2 === 0 ? `exit ${codeFor(i)}` : "sleep 600"),
    );
    for (const x of runs.filter((y) => y.i % 2 === 0)) {
      const { status } = await waitExited(() => t.runtime, x.ctr, { timeoutMs: 20_000 });
      if (status?.state !== "CONTAINER_EXITED") r.errors.push(`pod ${x.i}: container ${status?.state} before the kills, want EXITED`);
    }
    for (const x of runs.filter((y) => y.i % 2 === 1)) {
      const st = (await callT(t.runtime, "ContainerStatus", { container_id: x.ctr })).status;
      if (st.state !== "CONTAINER_RUNNING") r.errors.push(`pod ${x.i}: container ${st.state} before the kills, want RUNNING`);
    }
    const killed = await killShims(t.env.cfg.namespace, { rng, maxGapMs: 300 });
    r.faults = killed.length;
    r.notes.push(`killed ${killed.length} shim(s)`);
    if (killed.length < count) r.errors.push(`only ${killed.length} of ${count} shims were there to kill`);
    await Promise.all(
      runs.map(async (x) => {
        const { status } = await waitExited(() => t.runtime, x.ctr, { timeoutMs: 20_000 });
        // Re-checked after the kills: even pods' codes must not turn into 137/255.
        checkExit(r, `container ${x.i} (${x.ctr.slice(0, 12)})`, status, x.i % 2 === 0 ? x.code : "nonzero");
      }),
    );
    await teardownPods(t, r, runs.map((x) => x.pod));
    await finish(t, r, 30_000);
  } catch (err) {
    r.errors.push(`scenario aborted: ${errText(err)}`);
  }
  return r;
}
