/**
 * Scenarios 5 and 6: the host fails skiff during RunPodSandbox and StopPodSandbox.
 *
 *   5. A CNI plugin last in the chain fails ADD (RunPodSandbox fails cleanly: no pod, no shim,
 *      netns, address or rule left) and then hangs DEL once per pod (StopPodSandbox still returns
 *      at once; the daemon's network teardown times the plugin out, retries, and finishes).
 *   6. The state dir is a small tmpfs filled to ENOSPC: RunPodSandbox fails with a clean error and
 *      leaves nothing half made; once space is freed the same request works.
 *
 * Each needs its fault in place before the daemon starts: use `withCniFaults` / `withFullState`
 * as the target's `prepare`, then run the scenario on that target.
 */
import * as path from "node:path";
import { podConfig } from "../integration/cri-helpers.js";
import type { Env } from "../integration/harness.js";
import { installFaultyCni, type FaultyCniPlugin } from "../faults/cni-plugin.js";
import { mountSmallFs, type SmallFs } from "../faults/full-disk.js";
import { callT, checkExit, codeFor, errText, newResult, waitExited, type ScenarioResult } from "./cri.js";
import { finish, startPod, teardownPods } from "./scenarios.js";
import type { SkiffTarget } from "./targets.js";

/** The CNI plugin timeout of scenario 5: a hung DEL is killed after this. */
export const CNI_TIMEOUT_MS = 4000;

/** Installs the faulty plugin into env's chain and shortens the plugin timeout. */
export async function withCniFaults(env: Env, out: { plugin?: FaultyCniPlugin }): Promise<void> {
  const binDir = path.join(env.dir, "cni-bin");
  out.plugin = await installFaultyCni(binDir, env.cfg.cni.confDir);
  env.cfg.cni.binDirs = [binDir, ...env.cfg.cni.binDirs];
  env.cfg.cni.pluginTimeoutMs = CNI_TIMEOUT_MS;
}

/** RunPodSandbox `count` times: each must fail; then nothing may be left. */
async function runMustFail(t: SkiffTarget, r: ScenarioResult, count: number, prefix: string, cleanMs: number): Promise<number> {
  let refused = 0;
  for (let i = 0; i < count; i++) {
    try {
      const id = (await callT(t.runtime, "RunPodSandbox", { config: podConfig(`${prefix}-${i}`, t.logDir) })).pod_sandbox_id;
      r.errors.push(`RunPodSandbox ${prefix}-${i} succeeded (${String(id).slice(0, 12)}) despite the fault`);
      await teardownPods(t, r, [id]);
    } catch (err) {
      if (i === 0) r.notes.push(`RunPodSandbox failed with ${errText(err).slice(0, 160)}`);
      refused++;
    }
  }
  const pods = ((await callT(t.runtime, "ListPodSandbox", {})).items ?? []).length;
  if (pods) r.errors.push(`${pods} pod(s) listed after failed RunPodSandbox calls`);
  await finish(t, r, cleanMs);
  if (r.leftovers.length) r.errors.push(`left after the failed RunPodSandbox calls: ${r.leftovers.join("; ")}`);
  return refused;
}

/** Pods whose containers exit with their codes; checked, then stopped (timed) and removed. */
async function runAndTearDown(t: SkiffTarget, r: ScenarioResult, count: number, prefix: string): Promise<string[]> {
  const pods: string[] = [];
  for (let i = 0; i < count; i++) {
    const x = await startPod(t, `${prefix}-${i}`, i, `exit ${codeFor(i)}`);
    pods.push(x.pod);
    const { status, visibleMs } = await waitExited(() => t.runtime, x.ctr, { timeoutMs: 20_000 });
    checkExit(r, `container ${i} (${x.ctr.slice(0, 12)})`, status, x.code);
    if (Number.isFinite(visibleMs)) r.exitVisibleMs.push(visibleMs);
  }
  await teardownPods(t, r, pods);
  return pods;
}

export async function cniFaults(t: SkiffTarget, plugin: FaultyCniPlugin, count: number): Promise<ScenarioResult> {
  const r = newResult("5 CNI ADD fails, DEL hangs", t.name, count);
  try {
    await plugin.set({ failAdd: true });
    await runMustFail(t, r, count, "s5-add", 15_000);
    const failedAdds = (await plugin.calls()).filter((c) => c.cmd === "ADD" && c.action === "failed").length;
    r.faults += failedAdds;
    if (failedAdds < count) r.errors.push(`only ${failedAdds} ADD calls failed for ${count} pods: the fault did not take`);

    await plugin.set({ hangDels: 1, hangDelMs: 120_000 });
    const pods = await runAndTearDown(t, r, count, "s5-del");
    const slow = r.stopPodMs.filter((ms) => ms >= CNI_TIMEOUT_MS);
    if (slow.length) r.errors.push(`StopPodSandbox waited for the hung DEL: ${slow.join(", ")} ms`);
    await finish(t, r, CNI_TIMEOUT_MS + 30_000);
    const calls = await plugin.calls();
    r.faults += calls.filter((c) => c.cmd === "DEL" && c.action === "hung").length;
    for (const pod of pods) {
      const dels = calls.filter((c) => c.cmd === "DEL" && c.container === pod);
      if (!dels.some((c) => c.action === "hung")) r.errors.push(`pod ${pod.slice(0, 12)}: no DEL hung (fault did not take)`);
      else if (!dels.some((c) => c.action === "ok")) r.errors.push(`pod ${pod.slice(0, 12)}: DEL never retried after the hang`);
    }
    const hung = await plugin.running();
    if (hung.length) r.leftovers.push(...hung.map((p) => `CNI plugin process ${p} still running`));
  } catch (err) {
    r.errors.push(`scenario aborted: ${errText(err)}`);
  } finally {
    await plugin.set({});
  }
  return r;
}

/** Mounts a small tmpfs on env's state dir (unmounted by the target's close). */
export async function withFullState(env: Env, out: { fs?: SmallFs }): Promise<void> {
  out.fs = await mountSmallFs(env.cfg.state, 16 << 20);
}

export async function fullStateDir(t: SkiffTarget, fs: SmallFs, count: number): Promise<ScenarioResult> {
  const r = newResult("6 state dir full", t.name, count);
  try {
    const filled = await fs.fill();
    r.notes.push(`filled ${(filled / 2 ** 20).toFixed(1)} MiB`);
    r.faults = await runMustFail(t, r, count, "s6-full", 15_000);
    await fs.free();
    await runAndTearDown(t, r, count, "s6-freed");
    await finish(t, r, 30_000);
  } catch (err) {
    r.errors.push(`scenario aborted: ${errText(err)}`);
  }
  return r;
}

