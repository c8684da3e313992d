/**
 * Scenario 3: pod lifecycles with skiffd SIGKILLed at a random point of each and restarted.
 *
 * A lifecycle is what kubelet does for a short job: RunPodSandbox, CreateContainer, StartContainer,
 * wait for the exit (its own code), StopPodSandbox, RemovePodSandbox. The kill point is uniform
 * over the length of an unkilled lifecycle measured first, so it lands in any RPC, in a background
 * teardown, or between lifecycles. After the restart the driver goes on like kubelet after a
 * runtime restart: it looks the pod and container up again (a pod that did not survive as READY
 * is removed and made anew) and repeats the step that was cut. Every exit code must be exact.
 */
import { podConfig, ctrConfig } from "../integration/cri-helpers.js";
import type { Reply } from "../integration/cri-client.js";
import { sleep } from "../../src/util/signal.js";
import { killAfter, type ScheduledKill } from "../faults/kill.js";
import type { Rng } from "../faults/random.js";
import { callT, checkExit, codeFor, errText, newResult, waitExited, type ScenarioResult } from "./cri.js";
import { finish, teardownPods } from "./scenarios.js";
import type { SkiffTarget } from "./targets.js";

interface Lifecycle {
  i: number;
  name: string;
  code: number;
  cfg: Reply;
  pod?: string;
  ctr?: string;
}

const step = (t: SkiffTarget) => ({
  async pod(l: Lifecycle): Promise<void> {
    if (l.pod) return;
    const found = ((await callT(t.runtime, "ListPodSandbox", { filter: { label_selector: { app: l.name } } })).items ?? []) as Reply[];
    for (const p of found) {
      if (p.state === "SANDBOX_READY" && !l.pod) l.pod = p.id;
      else {
        // A pod the kill left NOTREADY: kubelet removes it and makes a new one.
        await callT(t.runtime, "StopPodSandbox", { pod_sandbox_id: p.id });
        await callT(t.runtime, "RemovePodSandbox", { pod_sandbox_id: p.id });
      }
    }
    l.pod ??= (await callT(t.runtime, "RunPodSandbox", { config: l.cfg })).pod_sandbox_id;
  },
  async ctr(l: Lifecycle): Promise<void> {
    if (l.ctr) return;
    const found = ((await callT(t.runtime, "ListContainers", { filter: { pod_sandbox_id: l.pod } })).containers ?? []) as Reply[];
    l.ctr =
      found[0]?.id ??
      (
        await callT(t.runtime, "CreateContainer", {
          pod_sandbox_id: l.pod,
          config: ctrConfig(`c${l.i}`, ["sh", "-c", `sleep 0.3; exit ${l.code}`], { image: { image: t.image }, log_path: `${l.name}.log` }),
          sandbox_config: l.cfg,
        })
      ).container_id;
  },
  async start(l: Lifecycle): Promise<void> {
    const st = (await callT(t.runtime, "ContainerStatus", { container_id: l.ctr })).status;
    if (st.state === "CONTAINER_CREATED") await callT(t.runtime, "StartContainer", { container_id: l.ctr });
  },
});

/** Runs lifecycle `l`; a step cut by the kill is repeated once the daemon is back. */
async function runLifecycle(t: SkiffTarget, r: ScenarioResult, l: Lifecycle, kill: (ScheduledKill & { handled?: boolean }) | undefined): Promise<void> {
  const s = step(t);
  const phases: [string, () => Promise<void>][] = [
    ["RunPodSandbox", () => s.pod(l)],
    ["CreateContainer", () => s.ctr(l)],
    ["StartContainer", () => s.start(l)],
    [
      "wait for the exit",
      async () => {
        // In short polls, so a kill meanwhile is noticed and the daemon restarted.
        for (const end = Date.now() + 20_000; ; ) {
          if (kill?.fired && !kill.handled) throw new Error("skiffd killed while waiting for the exit");
          const { status } = await waitExited(() => t.runtime, l.ctr!, { timeoutMs: 500 });
          if (status?.state === "CONTAINER_EXITED") return checkExit(r, `lifecycle ${l.i} (${l.ctr!.slice(0, 12)})`, status, l.code);
          if (Date.now() > end) throw new Error(`container of lifecycle ${l.i} is ${status?.state} after 20 s`);
        }
      },
    ],
    ["StopPodSandbox", () => callT(t.runtime, "StopPodSandbox", { pod_sandbox_id: l.pod }).then(() => {})],
    ["RemovePodSandbox", () => callT(t.runtime, "RemovePodSandbox", { pod_sandbox_id: l.pod }).then(() => {})],
  ];
  for (const [name, fn] of phases) {
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        break;
      } catch (err) {
        if (kill?.fired && !kill.handled) {
          await kill.done;
          kill.handled = true;
          await t.restart();
          continue;
        }
        if (t.child.exitCode !== null || t.child.signalCode !== null) {
          r.errors.push(`lifecycle ${l.i}: skiffd exited on its own (${t.child.exitCode ?? t.child.signalCode}) during ${name}`);
          await t.restart();
          continue;
        }
        if (attempt >= 3) {
          r.errors.push(`lifecycle ${l.i}: ${name} failed ${attempt} times, last: ${errText(err)}`);
          throw err;
        }
        await sleep(500);
      }
    }
  }
}

export async function daemonKills(t: SkiffTarget, count: number, rng: Rng): Promise<ScenarioResult> {
  const r = newResult("3 skiffd SIGKILLed", t.name, count);
  r.seed = rng.seed;
  const left: string[] = [];
  try {
    // An unkilled lifecycle first: its length is the range the kill points are drawn from.
    const t0 = Date.now();
    const warm: Lifecycle = { i: 0, name: "s3-warm", code: 250, cfg: podConfig("s3-warm", t.logDir) };
    await runLifecycle(t, r, warm, undefined);
    const spanMs = Date.now() - t0;
    r.exitsTotal = r.exitsCorrect = 0; // the warm-up is not part of the count
    r.exitErrors = [];
    let kills = 0;
    for (let i = 0; i < count; i++) {
      const name = `s3-${i}`;
      const l: Lifecycle = { i, name, code: codeFor(i), cfg: podConfig(name, t.logDir) };
      const kill: ScheduledKill & { handled?: boolean } = killAfter(t.child.pid!, rng.int(0, Math.round(spanMs * 1.2)));
      try {
        await runLifecycle(t, r, l, kill);
      } catch {
        if (l.pod) left.push(l.pod);
      }
      // A kill that lands after the lifecycle still happens (between lifecycles): wait for it.
      if (await kill.done) {
        kills++;
        if (!kill.handled) await t.restart();
      }
    }
    r.faults = kills;
    r.notes.push(`${kills} kill(s); lifecycle span ${spanMs} ms`);
    await teardownPods(t, r, left);
    await finish(t, r, 30_000);
  } catch (err) {
    r.errors.push(`scenario aborted: ${errText(err)}`);
  }
  return r;
}
