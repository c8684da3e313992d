/**
 * Pending daemon-owned teardown work (table `teardowns`), one row per task being torn down.
 *
 * Invariants:
 * - At most one row per task id; `enqueue` never replaces or resets an existing row, so a retried
 *   Delete joins the work in progress instead of restarting it.
 * - No FK to tasks: the task row may be gone while shim shutdown and bundle cleanup remain.
 * - Phases only move forward: delete_task → shutdown_shim → cleanup_bundle. Advancing resets the
 *   attempt count and makes the next step due at once; failures count attempts and set the next
 *   due time (the caller computes the backoff). A row is removed only by `complete`.
 * Methods are synchronous and each is one transaction. Not safe to use after `close()`.
 */
import { failedPrecondition, invalidArgument, notFound } from "../errors.js";
import type { Database } from "./db.js";

export type TeardownPhase = "delete_task" | "shutdown_shim" | "cleanup_bundle";
export const TEARDOWN_PHASES: readonly TeardownPhase[] = ["delete_task", "shutdown_shim", "cleanup_bundle"];

export interface Teardown {
  taskId: string;
  shimId: string;
  bundle: string;
  phase: TeardownPhase;
  /** Failed attempts of the current phase. */
  attempts: number;
  /** ms since epoch; the step is due when the clock reaches it. */
  nextAttemptAt: number;
  lastError: string | null;
  /** ms since epoch. */
  createdAt: number;
  /** ms since epoch. */
  updatedAt: number;
}

/** Required identity fields; the rest default (phase delete_task, 0 attempts, due now, now). */
export type NewTeardown = Pick<Teardown, "taskId" | "shimId" | "bundle"> &
  Partial<Omit<Teardown, "taskId" | "shimId" | "bundle">>;

interface Row {
  task_id: string;
  shim_id: string;
  bundle: string;
  phase: TeardownPhase;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = "task_id, shim_id, bundle, phase, attempts, next_attempt_at, last_error, created_at, updated_at";

export class TeardownStore {
  readonly #now: () => number;
  readonly #insert;
  readonly #select;
  readonly #selectAll;
  readonly #advance;
  readonly #fail;
  readonly #delete;
  readonly #enqueueTx;
  readonly #advanceTx;
  readonly #failTx;

  constructor(db: Database, now: () => number = Date.now) {
    this.#now = now;
    this.#insert = db.prepare<Row>(
      `INSERT INTO teardowns (${COLUMNS}) VALUES (@task_id, @shim_id, @bundle, @phase, @attempts, @next_attempt_at,
         @last_error, @created_at, @updated_at) ON CONFLICT (task_id) DO NOTHING`,
    );
    this.#select = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM teardowns WHERE task_id = ?`);
    // rowid breaks ties between rows created in the same millisecond: insertion order.
    this.#selectAll = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM teardowns ORDER BY created_at, rowid`);
    this.#advance = db.prepare<{ id: string; phase: TeardownPhase; now: number }>(
      `UPDATE teardowns SET phase = @phase, attempts = 0, last_error = NULL, next_attempt_at = @now, updated_at = @now
       WHERE task_id = @id`,
    );
    this.#fail = db.prepare<{ id: string; error: string; next: number; now: number }>(
      `UPDATE teardowns SET attempts = attempts + 1, last_error = @error, next_attempt_at = @next, updated_at = @now
       WHERE task_id = @id`,
    );
    this.#delete = db.prepare<[string]>("DELETE FROM teardowns WHERE task_id = ?");

    this.#enqueueTx = db.transaction((w: Teardown): Teardown => {
      this.#insert.run(toRow(w));
      return this.get(w.taskId);
    });
    this.#advanceTx = db.transaction((taskId: string, phase: TeardownPhase): Teardown => {
      const cur = this.get(taskId);
      const from = TEARDOWN_PHASES.indexOf(cur.phase);
      const to = TEARDOWN_PHASES.indexOf(phase);
      if (to === from) return cur;
      if (to < from) {
        throw failedPrecondition(`teardown of task "${taskId}" is at ${cur.phase}; it cannot go back to ${phase}`);
      }
      this.#advance.run({ id: taskId, phase, now: this.#now() });
      return this.get(taskId);
    });
    this.#failTx = db.transaction((taskId: string, error: string, next: number): Teardown => {
      if (this.#fail.run({ id: taskId, error, next, now: this.#now() }).changes === 0) throw missing(taskId);
      return this.get(taskId);
    });
  }

  /**
   * Persists teardown work for a task. Idempotent: if a row exists for the task it is returned
   * unchanged (whatever `work` says); otherwise the new row is returned.
   */
  enqueue(work: NewTeardown): Teardown {
    const now = this.#now();
    const w: Teardown = {
      taskId: work.taskId,
      shimId: work.shimId,
      bundle: work.bundle,
      phase: work.phase ?? "delete_task",
      attempts: work.attempts ?? 0,
      nextAttemptAt: work.nextAttemptAt ?? now,
      lastError: work.lastError ?? null,
      createdAt: work.createdAt ?? now,
      updatedAt: work.updatedAt ?? now,
    };
    if (w.taskId === "") throw invalidArgument("teardown task id must not be empty");
    checkPhase(w.phase, w.taskId);
    if (!Number.isInteger(w.attempts) || w.attempts < 0) {
      throw invalidArgument(`teardown of task "${w.taskId}": attempts ${w.attempts} is not a non-negative integer`);
    }
    return this.#enqueueTx.immediate(w);
  }

  /** The work item, or NotFound. */
  get(taskId: string): Teardown {
    const w = this.find(taskId);
    if (!w) throw missing(taskId);
    return w;
  }

  /** The work item, or undefined. */
  find(taskId: string): Teardown | undefined {
    const row = this.#select.get(taskId);
    return row && fromRow(row);
  }

  /** All pending work, oldest first. */
  list(): Teardown[] {
    return this.#selectAll.all().map(fromRow);
  }

  /**
   * Moves the work to `phase`, resetting attempts and the last error; due at once. Advancing to
   * the current phase is a no-op (keeps the backoff); going back is FailedPrecondition.
   */
  advance(taskId: string, phase: TeardownPhase): Teardown {
    checkPhase(phase, taskId);
    return this.#advanceTx.immediate(taskId, phase);
  }

  /** Counts a failed attempt of the current phase and schedules the next at `nextAttemptAt` (ms). */
  recordFailure(taskId: string, error: string, nextAttemptAt: number): Teardown {
    return this.#failTx.immediate(taskId, error, nextAttemptAt);
  }

  /** Removes the work item. Idempotent: returns false if there was none. */
  complete(taskId: string): boolean {
    return this.#delete.run(taskId).changes === 1;
  }
}

const missing = (taskId: string) => notFound(`teardown of task "${taskId}" not found`);

function checkPhase(phase: TeardownPhase, taskId: string): void {
  if (!TEARDOWN_PHASES.includes(phase)) {
    throw invalidArgument(`teardown of task "${taskId}": unknown phase "${String(phase)}"`);
  }
}

function toRow(w: Teardown): Row {
  return {
    task_id: w.taskId,
    shim_id: w.shimId,
    bundle: w.bundle,
    phase: w.phase,
    attempts: w.attempts,
    next_attempt_at: w.nextAttemptAt,
    last_error: w.lastError,
    created_at: w.createdAt,
    updated_at: w.updatedAt,
  };
}

function fromRow(r: Row): Teardown {
  return {
    taskId: r.task_id,
    shimId: r.shim_id,
    bundle: r.bundle,
    phase: r.phase,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
