/**
 * Exec process records (table `execs`), keyed by (taskId, execId).
 *
 * Invariants: an exec belongs to an existing task and disappears with it (FK ON DELETE CASCADE);
 * first recorded exit wins, as for tasks (see tasks.ts), and an exited exec stays 'stopped'.
 * Methods are synchronous and each is one transaction. Not safe to use after `close()`.
 */
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errors.js";
import { checkExitStatus, checkPid, checkTimestamp, definedOnly, fromBit, toBit } from "./codec.js";
import { isConstraintError, type Database } from "./db.js";
import { PROCESS_STATUSES, type ExitInput, type ProcessStatus, type RecordExitResult } from "./tasks.js";

export interface Exec {
  taskId: string;
  execId: string;
  pid: number | null;
  status: ProcessStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exitStatus: number | null;
  /** RFC 3339 UTC with ns precision; null until exited. */
  exitedAt: string | null;
  exitReason: string | null;
  /** ms since epoch. */
  createdAt: number;
  /** ms since epoch. */
  updatedAt: number;
}

/** Required identity fields; the rest default (pid null, 'created', no stdio, now). */
export type NewExec = Pick<Exec, "taskId" | "execId"> &
  Partial<Pick<Exec, "pid" | "status" | "stdin" | "stdout" | "stderr" | "terminal" | "createdAt" | "updatedAt">>;

/** Fields to change; exit fields change only through `recordExit`. */
export type ExecPatch = Partial<Pick<Exec, "pid" | "status">>;

interface Row {
  task_id: string;
  exec_id: string;
  pid: number | null;
  status: ProcessStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: number;
  exit_status: number | null;
  exited_at: string | null;
  exit_reason: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  "task_id, exec_id, pid, status, stdin, stdout, stderr, terminal, exit_status, exited_at, exit_reason, created_at, updated_at";

const name = (taskId: string, execId: string) => `exec "${execId}" of task "${taskId}"`;

export class ExecStore {
  readonly #now: () => number;
  readonly #insert;
  readonly #select;
  readonly #selectByTask;
  readonly #updateRow;
  readonly #recordExit;
  readonly #delete;
  readonly #deleteByTask;
  readonly #updateTx;
  readonly #recordExitTx;

  constructor(db: Database, now: () => number = Date.now) {
    this.#now = now;
    this.#insert = db.prepare<Row>(
      `INSERT INTO execs (${COLUMNS}) VALUES (@task_id, @exec_id, @pid, @status, @stdin, @stdout, @stderr, @terminal,
         @exit_status, @exited_at, @exit_reason, @created_at, @updated_at)`,
    );
    this.#select = db.prepare<[string, string], Row>(`SELECT ${COLUMNS} FROM execs WHERE task_id = ? AND exec_id = ?`);
    this.#selectByTask = db.prepare<[string], Row>(
      `SELECT ${COLUMNS} FROM execs WHERE task_id = ? ORDER BY created_at, exec_id`,
    );
    this.#updateRow = db.prepare<Row>(
      "UPDATE execs SET pid = @pid, status = @status, updated_at = @updated_at WHERE task_id = @task_id AND exec_id = @exec_id",
    );
    this.#recordExit = db.prepare<{ taskId: string; execId: string; status: number; at: string; reason: string | null; now: number }>(
      `UPDATE execs SET exit_status = @status, exited_at = @at, exit_reason = @reason, status = 'stopped',
         updated_at = @now WHERE task_id = @taskId AND exec_id = @execId AND exit_status IS NULL`,
    );
    this.#delete = db.prepare<[string, string]>("DELETE FROM execs WHERE task_id = ? AND exec_id = ?");
    this.#deleteByTask = db.prepare<[string]>("DELETE FROM execs WHERE task_id = ?");

    this.#updateTx = db.transaction((taskId: string, execId: string, patch: ExecPatch): Exec => {
      const current = this.get(taskId, execId);
      const merged: Exec = { ...current, ...definedOnly(patch), taskId, execId, updatedAt: this.#now() };
      if (current.exitStatus !== null && merged.status !== "stopped") {
        throw failedPrecondition(`${name(taskId, execId)} has exited; its status cannot become "${merged.status}"`);
      }
      validate(merged);
      this.#updateRow.run(toRow(merged));
      return merged;
    });

    this.#recordExitTx = db.transaction((taskId: string, execId: string, exit: ExitInput): RecordExitResult => {
      const what = name(taskId, execId);
      checkExitStatus(exit.exitStatus, what);
      checkTimestamp(exit.exitedAt, `${what} exit time`);
      const reason = exit.reason ?? null;
      const res = this.#recordExit.run({ taskId, execId, status: exit.exitStatus, at: exit.exitedAt, reason, now: this.#now() });
      if (res.changes === 1) return { recorded: true, exit: { exitStatus: exit.exitStatus, exitedAt: exit.exitedAt, reason } };
      const e = this.get(taskId, execId);
      return { recorded: false, exit: { exitStatus: e.exitStatus!, exitedAt: e.exitedAt!, reason: e.exitReason } };
    });
  }

  /** Inserts an exec; AlreadyExists if the exec id is taken for the task, FailedPrecondition if the task is missing. */
  create(e: NewExec): Exec {
    const now = this.#now();
    const exec: Exec = {
      taskId: e.taskId,
      execId: e.execId,
      pid: e.pid ?? null,
      status: e.status ?? "created",
      stdin: e.stdin ?? "",
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
      terminal: e.terminal ?? false,
      exitStatus: null,
      exitedAt: null,
      exitReason: null,
      createdAt: e.createdAt ?? now,
      updatedAt: e.updatedAt ?? now,
    };
    validate(exec);
    try {
      this.#insert.run(toRow(exec));
    } catch (err) {
      if (isConstraintError(err, "PRIMARYKEY")) throw alreadyExists(`${name(e.taskId, e.execId)} already exists`, err);
      if (isConstraintError(err, "FOREIGNKEY")) {
        throw failedPrecondition(`cannot create ${name(e.taskId, e.execId)}: task "${e.taskId}" does not exist`, err);
      }
      throw err;
    }
    return exec;
  }

  /** The exec, or NotFound. */
  get(taskId: string, execId: string): Exec {
    const e = this.find(taskId, execId);
    if (!e) throw notFound(`${name(taskId, execId)} not found`);
    return e;
  }

  /** The exec, or undefined. */
  find(taskId: string, execId: string): Exec | undefined {
    const row = this.#select.get(taskId, execId);
    return row && fromRow(row);
  }

  /** The task's execs, oldest first (empty if the task has none or does not exist). */
  list(taskId: string): Exec[] {
    return this.#selectByTask.all(taskId).map(fromRow);
  }

  /** Applies `patch` in one transaction; NotFound if missing, FailedPrecondition to leave 'stopped' after exit. */
  update(taskId: string, execId: string, patch: ExecPatch): Exec {
    return this.#updateTx.immediate(taskId, execId, patch);
  }

  /** First exit wins, as `TaskStore.recordExit`. NotFound if the exec is missing. */
  recordExit(taskId: string, execId: string, exit: ExitInput): RecordExitResult {
    return this.#recordExitTx.immediate(taskId, execId, exit);
  }

  /** Deletes one exec; NotFound if missing. */
  delete(taskId: string, execId: string): void {
    if (this.#delete.run(taskId, execId).changes === 0) throw notFound(`${name(taskId, execId)} not found`);
  }

  /** Deletes every exec of the task; returns how many there were. */
  deleteAll(taskId: string): number {
    return this.#deleteByTask.run(taskId).changes;
  }
}

function validate(e: Exec): void {
  const what = name(e.taskId, e.execId);
  if (e.execId === "") throw invalidArgument(`exec id of task "${e.taskId}" must not be empty`);
  if (!PROCESS_STATUSES.includes(e.status)) throw invalidArgument(`${what}: unknown status "${String(e.status)}"`);
  checkPid(e.pid, what);
}

function toRow(e: Exec): Row {
  return {
    task_id: e.taskId,
    exec_id: e.execId,
    pid: e.pid,
    status: e.status,
    stdin: e.stdin,
    stdout: e.stdout,
    stderr: e.stderr,
    terminal: toBit(e.terminal),
    exit_status: e.exitStatus,
    exited_at: e.exitedAt,
    exit_reason: e.exitReason,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
  };
}

function fromRow(r: Row): Exec {
  return {
    taskId: r.task_id,
    execId: r.exec_id,
    pid: r.pid,
    status: r.status,
    stdin: r.stdin,
    stdout: r.stdout,
    stderr: r.stderr,
    terminal: fromBit(r.terminal),
    exitStatus: r.exit_status,
    exitedAt: r.exited_at,
    exitReason: r.exit_reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
