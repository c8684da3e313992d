/**
 * Exit recording: the single place that turns "a process exited" into durable state.
 *
 * Several signals may report the same exit (the Wait call registered before Start, a
 * `/tasks/exit` event, State after a restart, the shim's Delete reply, dead-shim cleanup).
 * The first one recorded wins (one SQLite UPDATE ... WHERE exit_status IS NULL); later ones are
 * ignored. Waiters are woken once the exit is durable.
 */
import type { MetadataStore } from "../metadata/index.js";
import type { Logger } from "../log.js";
import type { ExitStatus } from "./types.js";
import { Waiters } from "../util/waiters.js";
import { notFound } from "../errors.js";

type Listener = (taskId: string, exit: ExitStatus) => void;

export class ExitRecorder {
  private readonly waiters = new Waiters<ExitStatus>();
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly meta: MetadataStore,
    private readonly log: Logger,
  ) {}

  /** Records the exit if none is recorded yet; returns the exit that stands. Safe to call repeatedly. */
  record(taskId: string, exit: ExitStatus): ExitStatus | undefined {
    const row = this.meta.tasks.find(taskId);
    if (!row) return undefined;
    const res = this.meta.tasks.recordExit(taskId, {
      exitStatus: exit.exitStatus,
      exitedAt: exit.exitedAt,
      reason: exit.reason ?? null,
    });
    const stands: ExitStatus = {
      exitStatus: res.exit.exitStatus,
      exitedAt: res.exit.exitedAt,
      ...(res.exit.reason ? { reason: res.exit.reason } : {}),
    };
    if (res.recorded) {
      this.log.info({ task: taskId, exitStatus: stands.exitStatus, reason: stands.reason }, "task exited");
      for (const l of this.listeners) {
        try {
          l(taskId, stands);
        } catch (err) {
          this.log.error({ err }, "exit listener failed");
        }
      }
    }
    this.waiters.resolve(taskId, stands);
    return stands;
  }

  /** The recorded exit, if any. */
  recorded(taskId: string): ExitStatus | undefined {
    const row = this.meta.tasks.find(taskId);
    if (!row || row.exitStatus === null || row.exitStatus === undefined) return undefined;
    return { exitStatus: row.exitStatus, exitedAt: row.exitedAt ?? "", ...(row.exitReason ? { reason: row.exitReason } : {}) };
  }

  /** Resolves once the task's exit is recorded; bounded by `signal` only. */
  wait(taskId: string, signal?: AbortSignal): Promise<ExitStatus> {
    const now = this.recorded(taskId);
    if (now) return Promise.resolve(now);
    if (!this.meta.tasks.find(taskId)) return Promise.reject(notFound(`task "${taskId}" not found`));
    return this.waiters.wait(taskId, signal, `wait for task "${taskId}"`);
  }

  /** Subscribes to newly recorded exits; returns the unsubscribe function. */
  onExit(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
