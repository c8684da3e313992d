/**
 * Daemon-owned teardown of tasks: the fix for shims that leak when a delete times out.
 *
 * Work items live in the `teardowns` table, so they survive a daemon restart. For each task at
 * most one runner exists (a per-id chain); it goes through three phases and persists each step:
 *
 *   delete_task    shim Delete. Success and NotFound (the shim already forgot the task — NOT
 *                  "nothing left to do") both advance. A dead shim → the shim binary's `delete`
 *                  action. A timeout means "outcome unknown": retry, waiting on the same call
 *                  (see shimDelete) rather than queueing another behind it.
 *   shutdown_shim  Shutdown is sent after every task delete. If no other task still needs the
 *                  shim, wait until its process is gone, then forget it (connection, home dir,
 *                  socket, record). Still alive → retry.
 *   cleanup_bundle unmount leftovers, remove the bundle, mark the task deleted.
 *
 * Failures retry with backoff (initial doubling to max, from config), forever: work is never
 * dropped. Callers only wait on the runner's promise with their own deadline; giving up does not
 * stop the work.
 */
import { access } from "node:fs/promises";
import * as path from "node:path";
import type { MetadataStore, Teardown } from "../metadata/index.js";
import type { ShimManager } from "../runtime/shim-manager.js";
import { removeBundle } from "../runtime/bundle.js";
import type { ExitRecorder } from "./exits.js";
import type { Logger } from "../log.js";
import type { Config } from "../config.js";
import { codeOf, isNotFound } from "../errors.js";
import { linkedSignal, raceSignal, sharedSignal, sleep } from "../util/signal.js";
import type { ShimHandle } from "../runtime/shim-manager.js";
import type { DeleteResponse } from "../gen/containerd/task/v2/shim_pb.js";
import { isAlive } from "../util/proc.js";
import { exitTimeOf, nowRfc3339 } from "../util/time.js";
import { UNKNOWN_EXIT_STATUS } from "./types.js";

export interface TeardownHooks {
  /** Test-only fault injection: called before each phase; may throw to simulate a failure. */
  beforePhase?: (taskId: string, phase: Teardown["phase"], attempt: number) => void | Promise<void>;
}

/** Counters for tests, `skiff doctor` and metrics. */
export interface TeardownStats {
  /** Steps that failed and were rescheduled. */
  retries: number;
  /** Shim Delete answered NotFound (the shim had already forgotten the task). */
  shimNotFound: number;
  /** Tasks cleaned up through the shim binary's `delete` action (shim unreachable). */
  deadShimCleanups: number;
  /** Attempts that waited again on a shim Delete still running from an earlier attempt. */
  rejoined: number;
  /** Tasks fully torn down. */
  completed: number;
}

/** A shim Delete whose outcome we still wait for (ttrpc cannot cancel it; it runs on in the shim). */
interface InflightDelete {
  call: Promise<DeleteResponse>;
  since: number;
}

export class TeardownQueue {
  readonly stats: TeardownStats = { retries: 0, shimNotFound: 0, deadShimCleanups: 0, completed: 0, rejoined: 0 };
  private readonly runners = new Map<string, Promise<void>>();
  private readonly inflight = new Map<string, InflightDelete>();
  private readonly stop = new AbortController();

  constructor(
    private readonly cfg: Config,
    private readonly meta: MetadataStore,
    private readonly shims: ShimManager,
    private readonly exits: ExitRecorder,
    private readonly log: Logger,
    readonly hooks: TeardownHooks = {},
  ) {
    // Every runner and shim call in flight listens on it.
    sharedSignal(this.stop.signal);
  }

  /**
   * Persists the work item (idempotent) and makes sure a runner is on it. Returns the runner's
   * promise, which resolves when the task is fully torn down (and never rejects).
   */
  enqueue(taskId: string): Promise<void> {
    const task = this.meta.tasks.get(taskId);
    const now = Date.now();
    this.meta.teardowns.enqueue({
      taskId,
      shimId: task.shimId,
      bundle: task.bundle,
      phase: "delete_task",
      attempts: 0,
      nextAttemptAt: now,
      lastError: null,
      createdAt: now,
      updatedAt: now,
    });
    return this.ensureRunner(taskId);
  }

  /** Resumes every persisted work item (start-up). */
  resumeAll(): void {
    for (const w of this.meta.teardowns.list()) void this.ensureRunner(w.taskId);
  }

  /** The runner's promise for a task, if teardown is under way. */
  running(taskId: string): Promise<void> | undefined {
    return this.runners.get(taskId);
  }

  private ensureRunner(taskId: string): Promise<void> {
    const existing = this.runners.get(taskId);
    if (existing) return existing;
    const p = this.runLoop(taskId).finally(() => this.runners.delete(taskId));
    this.runners.set(taskId, p);
    return p;
  }

  private backoff(attempts: number): number {
    const { initialBackoffMs, maxBackoffMs } = this.cfg.teardown;
    return Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempts, 30));
  }

  private async runLoop(taskId: string): Promise<void> {
    const signal = this.stop.signal;
    for (;;) {
      if (signal.aborted) return;
      const work = this.meta.teardowns.find(taskId);
      if (!work) return;
      const wait = work.nextAttemptAt - Date.now();
      if (wait > 0) {
        try {
          await sleep(wait, signal);
        } catch {
          return; // daemon closing: the persisted work resumes at next start
        }
      }
      try {
        await this.hooks.beforePhase?.(taskId, work.phase, work.attempts);
        await this.step(work, signal);
      } catch (err) {
        if (signal.aborted) return;
        const delay = this.backoff(work.attempts);
        this.stats.retries++;
        const msg = err instanceof Error ? err.message : String(err);
        this.meta.teardowns.recordFailure(taskId, msg, Date.now() + delay);
        this.log.warn(
          { task: taskId, phase: work.phase, attempt: work.attempts + 1, code: codeOf(err), err: msg, retryInMs: delay },
          "teardown step failed; will retry",
        );
      }
    }
  }

  private async step(work: Teardown, signal: AbortSignal): Promise<void> {
    switch (work.phase) {
      case "delete_task":
        await this.deleteInShim(work, signal);
        this.meta.teardowns.advance(work.taskId, "shutdown_shim");
        return;
      case "shutdown_shim":
        await this.shutdownShim(work, signal);
        this.meta.teardowns.advance(work.taskId, "cleanup_bundle");
        return;
      case "cleanup_bundle":
        await removeBundle(work.bundle, { signal });
        this.meta.transaction(() => {
          if (this.meta.tasks.find(work.taskId)) this.meta.tasks.update(work.taskId, { deletedAt: Date.now() });
          this.meta.teardowns.complete(work.taskId);
          this.shims.dropStoppedRecord(work.shimId);
        });
        this.stats.completed++;
        this.log.info({ task: work.taskId }, "task torn down");
        return;
      default: {
        const never: never = work.phase;
        throw new Error(`unknown teardown phase ${String(never)}`);
      }
    }
  }

  private async deleteInShim(work: Teardown, signal: AbortSignal): Promise<void> {
    const shimRow = this.meta.shims.find(work.shimId);
    const task = this.meta.tasks.find(work.taskId);
    const runtime = shimRow?.runtime ?? this.cfg.defaultRuntime;
    let handle = this.shims.peek(work.shimId);
    if (!handle && shimRow?.pid && shimRow.address && (await isAlive(shimRow.pid))) {
      handle = await this.shims.connect(shimRow, { signal });
    }
    if (handle) {
      try {
        const res = await this.shimDelete(handle, work.taskId, signal);
        this.exits.record(work.taskId, {
          exitStatus: res.exitStatus,
          exitedAt: exitTimeOf(res.exitedAt),
        });
        return;
      } catch (err) {
        if (isNotFound(err)) {
          this.stats.shimNotFound++;
          this.log.info({ task: work.taskId, shim: work.shimId }, "shim has no record of the task; continuing teardown");
          if (task?.status === "unknown" && (await exists(path.join(work.bundle, "runtime")))) {
            // A shim Create cut short (the daemon died and the shim cancelled the call) can leave
            // a runc container and the rootfs mount that the shim never recorded; the shim
            // binary's delete action removes both, and is a no-op when nothing was left.
            await this.shims.cleanupTask(runtime, work.taskId, work.bundle, { signal });
          }
          this.exits.record(work.taskId, { exitStatus: UNKNOWN_EXIT_STATUS, exitedAt: nowRfc3339(), reason: "task lost" });
          return;
        }
        if (!handle.ttrpc.isClosed || (await isAlive(handle.pid))) throw err;
        // The shim died under us: fall through to the dead-shim cleanup.
      }
    }
    // No live shim: the shim binary's `delete` action kills and removes the runc container and
    // unmounts the rootfs. If the task's process was gone before that, its code is unknown.
    if (!(await exists(path.join(work.bundle, "runtime")))) {
      // The shim's Create writes this file before it mounts the rootfs or runs `runc create`,
      // and its `delete` action fails without it: a crash before Create left no container and
      // no mount, so there is nothing for the binary to do (the bundle goes in cleanup_bundle).
      this.stats.deadShimCleanups++;
      this.exits.record(work.taskId, { exitStatus: UNKNOWN_EXIT_STATUS, exitedAt: nowRfc3339(), reason: "never created in the shim" });
      return;
    }
    const wasAlive = task?.pid ? await isAlive(task.pid) : false;
    const res = await this.shims.cleanupTask(runtime, work.taskId, work.bundle, { signal });
    this.stats.deadShimCleanups++;
    this.exits.record(work.taskId, {
      exitStatus: wasAlive ? res.exitStatus : UNKNOWN_EXIT_STATUS,
      exitedAt: res.exitedAt ?? nowRfc3339(),
      reason: "shim died",
    });
  }

  /**
   * One shim Delete per task at a time. An attempt waits at most shimCallMs for it; a timed-out
   * attempt leaves the call running (the shim is still working on it — a new call would only
   * queue behind it and repeat the slow work) and the next attempt waits on the same call. Only
   * a call pending for longer than 10 × shimCallMs is abandoned and issued again.
   */
  private async shimDelete(handle: ShimHandle, taskId: string, signal: AbortSignal): Promise<DeleteResponse> {
    let f = this.inflight.get(taskId);
    if (f && Date.now() - f.since > 10 * this.cfg.timeouts.shimCallMs) {
      this.inflight.delete(taskId);
      f = undefined;
    }
    if (f) {
      this.stats.rejoined++;
    } else {
      const call = handle.task.delete(taskId, "", { signal: this.stop.signal });
      f = { call, since: Date.now() };
      const mine = f;
      this.inflight.set(taskId, f);
      call.then(
        () => this.inflight.get(taskId) === mine && this.inflight.delete(taskId),
        () => this.inflight.get(taskId) === mine && this.inflight.delete(taskId),
      );
    }
    const bound = linkedSignal([signal], this.cfg.timeouts.shimCallMs);
    try {
      return await raceSignal(f.call, bound.signal, `shim Delete of "${taskId}"`);
    } finally {
      bound.dispose();
    }
  }

  /** Tasks that still need the shim: not deleted and not past their own shim delete. */
  private otherUsers(shimId: string, taskId: string): string[] {
    const pastDelete = new Set(
      this.meta.teardowns
        .list()
        .filter((w) => w.shimId === shimId && w.phase !== "delete_task")
        .map((w) => w.taskId),
    );
    return this.meta.tasks
      .list({ shimId })
      .filter((t) => t.id !== taskId && t.deletedAt === null && !pastDelete.has(t.id))
      .map((t) => t.id);
  }

  private async shutdownShim(work: Teardown, signal: AbortSignal): Promise<void> {
    const row = this.meta.shims.find(work.shimId);
    if (!row || row.state === "stopped") return;
    const others = this.otherUsers(work.shimId, work.taskId);
    if (others.length > 0) {
      // Sent anyway: a grouped shim ignores it while tasks remain. Best effort here; the last
      // task's teardown is the one that must see the shim gone.
      const h = this.shims.peek(work.shimId);
      await h?.task.shutdown(work.shimId, false, { signal, timeoutMs: this.cfg.timeouts.shimCallMs }).catch(() => {});
      return;
    }
    const gone = await this.shims.shutdown(work.shimId, { signal });
    if (!gone) throw new Error(`shim "${work.shimId}" still running after Shutdown`);
    await this.shims.forget(work.shimId);
    this.log.info({ shim: work.shimId }, "shim shut down");
  }

  /** Stops runners; persisted work resumes at the next start. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled([...this.runners.values()]);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
