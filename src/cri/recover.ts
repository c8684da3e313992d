/**
 * Start-up recovery of the CRI layer, after the tasks service has reconciled tasks and shims:
 * pods and containers get their state from their tasks (an exit during the downtime is handled
 * with its recorded code), running containers get their log pumps and exit watches back, half
 * made pods and containers are rolled back, and netns, pod dirs and FIFO dirs that no record
 * explains are removed.
 */
import { readdir, rm } from "node:fs/promises";
import * as path from "node:path";
import { isNotFound } from "../errors.js";
import { listNetns, removeNetns } from "../cni/netns.js";
import type { TaskInfo } from "../tasks/types.js";
import type { CriDeps } from "./deps.js";
import type { PodService } from "./pods.js";
import type { ContainerService } from "./ctrs.js";
import type { ExitMonitor } from "./exit-monitor.js";
import { CRI_KIND_LABEL, type SandboxRecord } from "./records.js";
import { removePodDir } from "./pod-files.js";

function taskOf(d: CriDeps, id: string): TaskInfo | undefined {
  try {
    return d.tasks.info(id);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

export async function recoverCri(d: CriDeps, pods: PodService, ctrs: ContainerService, monitor: ExitMonitor): Promise<void> {
  const log = d.log;
  for (const pod of pods.docs.list()) {
    if (pod.state === "creating") {
      log.warn({ pod: pod.id }, "rolling back a pod sandbox left half made");
      await pods.rollBack(pod).catch((err: unknown) => log.error({ pod: pod.id, err: (err as Error).message }, "pod rollback failed"));
      continue;
    }
    if (pod.state === "removing") {
      log.warn({ pod: pod.id }, "finishing the removal of a pod sandbox");
      pods.resumeRemoval(pod);
      continue;
    }
    // A stopped pod whose network teardown had not finished: queue it again.
    if (pod.state === "notready" && pod.networkAttached) pods.queueNetworkTeardown(pod);
    const t = taskOf(d, pod.id);
    if (!t) {
      if (pod.state === "ready") pods.docs.update(pod.id, { state: "notready", pid: 0 });
      continue;
    }
    if (t.exit) void monitor.handle(pod.id, t.exit);
    else monitor.watch(pod.id);
  }

  for (const c of ctrs.docs.list()) {
    if (c.incomplete) {
      log.warn({ container: c.id }, "removing a container left half made");
      await d.containers.delete(c.id).catch((err: unknown) => {
        if (!isNotFound(err)) log.error({ container: c.id, err: (err as Error).message }, "container removal failed");
      });
      ctrs.docs.delete(c.id);
      continue;
    }
    const t = taskOf(d, c.id);
    if (!t) {
      if (c.state === "running" || c.state === "unknown") {
        // The task record is gone without an exit reaching this document: nothing can tell the code.
        ctrs.docs.update(c.id, { state: "exited", exitCode: 255, reason: "Unknown", message: "task lost while skiffd was down", pid: 0 });
      }
      continue;
    }
    if (c.state === "created" && (t.pid === 0 || t.status === "unknown" || (t.status === "created" && !t.exit))) {
      // Killed during StartContainer before the process was started: the shim's Create was cut
      // (no pid, or never confirmed) or done without a Start. Any "exit" of that task is no exit
      // of the container, which never ran: it stays CREATED, startable again once the task is
      // torn down (StartContainer waits for that teardown).
      void monitor.queue.push(c.id, "delete task that never ran", () => d.tasks.delete(c.id, { force: true }).then(() => undefined));
      continue;
    }
    if (t.exit) {
      if (c.state === "created") ctrs.docs.update(c.id, { state: "running", pid: t.pid });
      // Output the shim still holds (its copy may not have finished) goes to the log first.
      if (t.status !== "deleted") await ctrs.reattachIo(c).catch(() => {});
      void monitor.handle(c.id, t.exit);
      continue;
    }
    if (c.state !== "exited") {
      if (c.state === "created") ctrs.docs.update(c.id, { state: "running", pid: t.pid });
      await ctrs.reattachIo(c).catch((err: unknown) => log.error({ container: c.id, err: (err as Error).message }, "log re-attach failed"));
      monitor.watch(c.id);
    }
  }

  // Core containers of pods and containers removed for CRI but not yet purged.
  for (const core of d.containers.list()) {
    const kind = core.labels[CRI_KIND_LABEL];
    if (!kind || pods.docs.find(core.id) || ctrs.docs.find(core.id)) continue;
    log.warn({ id: core.id, kind }, "finishing the removal of a CRI object");
    if (kind === "container") void monitor.queue.push(core.id, "remove container", () => ctrs.purge(core.id));
    else void monitor.queue.push(core.id, "remove pod sandbox", () => pods.purge({ id: core.id, netns: null, podDir: path.join(d.cfg.root, "pods", core.id) } as SandboxRecord));
  }

  // What no record explains.
  const podIds = new Set(pods.docs.list().map((p) => p.id));
  const ctrIds = new Set(ctrs.docs.list().map((c) => c.id));
  const netnsNames = new Set(pods.docs.list().flatMap((p) => (p.netns ? [p.netns.name] : [])));
  for (const name of await listNetns().catch(() => [] as string[])) {
    if (name.startsWith(pods.netnsPrefix) && !netnsNames.has(name)) {
      log.warn({ netns: name }, "removing orphan network namespace");
      await removeNetns(name).catch((err: unknown) => log.error({ netns: name, err: (err as Error).message }, "netns not removed"));
    }
  }
  const podsDir = path.join(d.cfg.root, "pods");
  for (const name of await entries(podsDir)) {
    if (!podIds.has(name)) await removePodDir(path.join(podsDir, name)).catch((err: unknown) => log.error({ dir: name, err: (err as Error).message }, "orphan pod dir not removed"));
  }
  for (const name of await entries(ctrs.ioDir)) {
    if (!ctrIds.has(name)) await rm(path.join(ctrs.ioDir, name), { recursive: true, force: true });
  }
}
