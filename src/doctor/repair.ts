/**
 * Repairs of single findings. The caller (Doctor) has rechecked the records right before each
 * call, so what arrives here is an orphan at that moment; each repair still acts only on the
 * object the finding names (the PID it saw, the path it listed), never by a broad match.
 *
 * Metadata drift (a live task whose shim is gone, a running container without a task) is handed
 * to the daemon's own teardown and exit paths, which own ordering, retries and exit codes.
 */
import { readFile, rm } from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../config.js";
import { isNotFound } from "../errors.js";
import { removeNetns } from "../cni/netns.js";
import { readBundleAddress, removeBundle } from "../runtime/bundle.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { ShimTaskClient } from "../runtime/shim-client.js";
import type { TasksService } from "../tasks/service.js";
import { handleShimDisconnect } from "../tasks/recovery.js";
import type { ExitStatus } from "../tasks/types.js";
import { socketPathOf, TtrpcClient } from "../ttrpc/index.js";
import { run } from "../util/exec.js";
import { isAlive, waitForExit } from "../util/proc.js";
import { DEFAULT_RUNC_ROOT, parseShimArgs } from "./host-linux.js";
import type { Finding, RepairOutcome, RepairResult } from "./types.js";

/** The CRI records the metadata repairs touch (the CRI runtime's stores and exit path). */
export interface CriRepairPort {
  containerState(id: string): string | undefined;
  podState(id: string): string | undefined;
  /** Runs the CRI exit handling of a pod or container (as if its task had just exited). */
  handleExit(id: string, exit: ExitStatus): Promise<void>;
  /** Marks a running container whose task is lost as exited with an unknown code. */
  markContainerLost(id: string): void;
  /** Marks a ready pod whose pause task is lost as not ready. */
  markPodLost(id: string): void;
}

export interface RepairDeps {
  cfg: Config;
  tasks: TasksService;
  cri: CriRepairPort | undefined;
  /** How long a repair waits for work handed to the daemon before answering "queued". */
  waitMs?: number;
}

const result = (f: Finding, outcome: RepairOutcome, message: string): RepairResult => ({ kind: f.kind, object: f.object, outcome, message });

const isUnder = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir.replace(/\/+$/, "")}/`);

/** Resolves true if `p` settles within `ms` (its rejection propagates), false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function repairFinding(f: Finding, deps: RepairDeps, signal?: AbortSignal): Promise<RepairResult> {
  try {
    return await repairOne(f, deps, signal);
  } catch (err) {
    return result(f, "failed", (err as Error).message);
  }
}

async function repairOne(f: Finding, deps: RepairDeps, signal?: AbortSignal): Promise<RepairResult> {
  const { cfg, tasks } = deps;
  const waitMs = deps.waitMs ?? 10_000;
  switch (f.kind) {
    case "orphan-runc-container": {
      const handler = Object.values(cfg.runtimes).find((r) => path.join(r.runcRoot || DEFAULT_RUNC_ROOT, cfg.namespace) === f.root);
      const res = await run(handler?.binaryName || "runc", ["--root", f.root, "delete", "-f", f.id], { signal });
      if (res.code !== 0) throw new Error(`runc delete -f ${f.id}: ${res.stderr.toString().trim()}`);
      return result(f, "repaired", `runc container deleted (runc --root ${f.root} delete -f ${f.id})`);
    }
    case "orphan-shim":
      return result(f, "repaired", await stopOrphanShim(f, deps, signal));
    case "task-without-shim": {
      // The teardown path records the lost exit, deletes what remains and drops the records.
      if (tasks.meta.shims.find(f.shimId)) await handleShimDisconnect(tasks, f.shimId);
      else void tasks.teardown.enqueue(f.taskId).catch(() => {});
      const work = tasks.teardown.running(f.taskId);
      if (!work) return result(f, "repaired", `shim "${f.shimId}" reconnected or task already torn down`);
      return (await within(work, waitMs))
        ? result(f, "repaired", `task torn down through the daemon's teardown`)
        : result(f, "queued", `teardown queued in the daemon (retried until done)`);
    }
    case "container-without-task":
    case "pod-without-task": {
      const cri = deps.cri;
      if (!cri) return result(f, "manual", "the CRI runtime is not running");
      const state = f.kind === "pod-without-task" ? cri.podState(f.id) : cri.containerState(f.id);
      if (state !== (f.kind === "pod-without-task" ? "ready" : "running")) return result(f, "skipped", `now ${state ?? "gone"}`);
      let exit: ExitStatus | undefined;
      try {
        exit = tasks.info(f.id).exit;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (exit) {
        return (await within(cri.handleExit(f.id, exit), waitMs))
          ? result(f, "repaired", `recorded exit ${exit.exitStatus} handled`)
          : result(f, "queued", `exit handling queued in the daemon`);
      }
      if (f.kind === "pod-without-task") cri.markPodLost(f.id);
      else cri.markContainerLost(f.id);
      return result(f, "repaired", f.kind === "pod-without-task" ? "pod marked not ready" : "container marked exited (code unknown: 255)");
    }
    case "orphan-mount":
      await unmountAll(f.mountPoint, { signal });
      return result(f, "repaired", `unmounted ${f.mountPoint}`);
    case "orphan-netns":
      await removeNetns(f.name, { signal });
      return result(f, "repaired", `ip netns delete ${f.name}`);
    case "stuck-teardown":
      return result(f, "manual", "the daemon keeps retrying it; fix the cause named in the last error");
    case "missing-netns":
      return result(f, "manual", `the pod's network cannot be rebuilt in place: stop and remove pod "${f.podId}"`);
    case "orphan-bundle":
      // The shim binary's delete clears a runc container and rootfs mount the bundle may still hold.
      await tasks.shims.cleanupTask(cfg.defaultRuntime, f.id, f.path, { signal }).catch(() => undefined);
      await removeBundle(f.path, { signal });
      return result(f, "repaired", `removed ${f.path}`);
    case "orphan-pod-dir":
    case "orphan-shim-home":
      await unmountAll(f.path, { signal }); // never rm through a mount
      await rm(f.path, { recursive: true, force: true });
      return result(f, "repaired", `removed ${f.path}`);
    default: {
      const never: never = f;
      throw new Error(`unknown finding ${(never as Finding).kind}`);
    }
  }
}

/** Still the shim process the finding saw (same pid, same namespace and group)? */
async function sameShim(pid: number, group: string, namespace: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
  return cmdline !== "" && parseShimArgs(cmdline.replace(/\0$/, "").split("\0"), namespace) === group && (await isAlive(pid));
}

/**
 * ttrpc Shutdown, then SIGKILL of that one PID if it does not exit, then the shim binary's
 * `delete` in its directory (only when that is one of skiff's own) and its socket file.
 */
async function stopOrphanShim(f: Extract<Finding, { kind: "orphan-shim" }>, deps: RepairDeps, signal?: AbortSignal): Promise<string> {
  const { cfg, tasks } = deps;
  const steps: string[] = [];
  const address = f.cwd ? await readBundleAddress(f.cwd) : undefined;
  if (address) {
    let client: TtrpcClient | undefined;
    try {
      client = await TtrpcClient.connect(socketPathOf(address), { namespace: cfg.namespace, timeoutMs: 2000 });
      await new ShimTaskClient(client).shutdown(f.group, false, { timeoutMs: cfg.timeouts.shimCallMs }).catch(() => {});
      steps.push("Shutdown sent");
    } catch {
      steps.push("socket not answering");
    } finally {
      client?.destroy();
    }
  }
  if (!(await waitForExit(f.pid, address ? cfg.timeouts.shimExitMs : 0, signal))) {
    if (await sameShim(f.pid, f.group, cfg.namespace)) {
      process.kill(f.pid, "SIGKILL");
      steps.push(`SIGKILL pid ${f.pid}`);
      if (!(await waitForExit(f.pid, 5000, signal))) throw new Error(`shim pid ${f.pid} did not exit after SIGKILL`);
    }
  }
  steps.push("exited");
  const ours = [cfg.state, cfg.root].some((d) => isUnder(f.cwd, d));
  if (f.cwd && ours) {
    await tasks.shims.cleanupTask(cfg.defaultRuntime, f.group, f.cwd, { signal }).then(
      () => steps.push("shim delete run"),
      () => steps.push("shim delete had nothing to clean"),
    );
  }
  if (address) await rm(socketPathOf(address), { force: true });
  return steps.join(", ");
}
