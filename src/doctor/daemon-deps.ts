/**
 * Binds the doctor to a running daemon: records from its metadata store and CRI stores, host
 * state from this machine, repairs through its tasks service and CRI exit path.
 *
 * The doctor is a daemon-level tool, so unlike the CRI layer it reads the core's task and shim
 * tables directly: it must compare exactly what is stored, not a service's view of it.
 */
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { MetadataStore } from "../metadata/index.js";
import type { TasksService } from "../tasks/service.js";
import type { CriRuntime } from "../cri/runtime.js";
import { netnsNameForPod } from "../cni/netns.js";
import { collectHost } from "./host-linux.js";
import { repairFinding, type CriRepairPort } from "./repair.js";
import type { DoctorDeps } from "./doctor.js";
import type { RecordState } from "./types.js";

/** The parts of the daemon the doctor uses; `cri` may be absent (daemon started without CRI). */
export interface DaemonParts {
  cfg: Config;
  log: Logger;
  meta: MetadataStore;
  tasks: TasksService;
  cri: CriRuntime | undefined;
}

export function collectRecords(d: Pick<DaemonParts, "meta" | "cri">): RecordState {
  const teardowns = d.meta.teardowns.list();
  const pending = new Set(teardowns.map((w) => w.taskId));
  return {
    tasks: d.meta.tasks.list().map((t) => ({
      id: t.id,
      shimId: t.shimId,
      bundle: t.bundle,
      live: t.deletedAt === null,
      teardownPending: pending.has(t.id),
    })),
    shims: d.meta.shims.list().map((s) => ({ id: s.id, pid: s.pid, state: s.state })),
    pods: (d.cri?.pods.docs.list() ?? []).map((p) => ({ id: p.id, state: p.state, netns: p.netns?.name ?? null, dir: p.podDir })),
    containers: (d.cri?.ctrs.docs.list() ?? []).map((c) => ({ id: c.id, state: c.state })),
    teardowns: teardowns.map((w) => ({ taskId: w.taskId, phase: w.phase, attempts: w.attempts, lastError: w.lastError })),
  };
}

export function criRepairPort(cri: CriRuntime): CriRepairPort {
  return {
    containerState: (id) => cri.ctrs.docs.find(id)?.state,
    podState: (id) => cri.pods.docs.find(id)?.state,
    handleExit: (id, exit) => cri.monitor.handle(id, exit),
    // As start-up recovery does for a task lost while the daemon was down.
    markContainerLost: (id) =>
      void cri.ctrs.docs.update(id, { state: "exited", exitCode: 255, reason: "Unknown", message: "task lost (found by skiff doctor)", pid: 0 }),
    markPodLost: (id) => void cri.pods.docs.update(id, { state: "notready", pid: 0 }),
  };
}

export function daemonDoctorDeps(d: DaemonParts): DoctorDeps {
  // The CRI runtime's own prefix when it runs; the same naming rule otherwise.
  const netnsPrefix = d.cri?.pods.netnsPrefix ?? netnsNameForPod(`${d.cfg.namespace}-`);
  return {
    log: d.log,
    records: () => collectRecords(d),
    host: (signal) => collectHost({ cfg: d.cfg, netnsPrefix, signal }),
    repair: (f, signal) => repairFinding(f, { cfg: d.cfg, tasks: d.tasks, cri: d.cri ? criRepairPort(d.cri) : undefined }, signal),
    bundleGraceMs: d.cfg.doctor.bundleGraceMs,
  };
}
