/**
 * Task records (table `tasks`): the running instance of a container, one per container id.
 *
 * Invariants:
 * - `id` is the container id (FK, ON DELETE RESTRICT). `shimId` names an existing shim while the
 *   task is live (checked here, not by an FK: a torn-down task outlives its shim).
 * - A torn-down task stays as a tombstone (`deletedAt` set, exit recorded) until its container is
 *   removed, so a repeated Delete reports the same exit. Tombstones never hold a shim.
 * - The first recorded exit wins: `recordExit` is one conditional UPDATE, later exits are ignored
 *   and the stored one is returned. Once an exit is recorded the status is 'stopped' for good
 *   (enforced here and by a CHECK constraint) and exit fields never change.
 * - Exit times are RFC 3339 UTC strings with up to nanosecond precision, stored verbatim, so the
 *   shim's protobuf Timestamp survives a round trip exactly (a JS number cannot hold ns since
 *   epoch). createdAt / updatedAt are daemon clock readings in ms since epoch.
 * Methods are synchronous and each is one transaction. Not safe to use after `close()`.
 */
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errors.js";
import { checkExitStatus, checkPid, checkTimestamp, definedOnly, fromBit, toBit } from "./codec.js";
import { durably, isConstraintError, type Database } from "./db.js";

export type ProcessStatus = "created" | "running" | "paused" | "stopped" | "unknown";
export const PROCESS_STATUSES: readonly ProcessStatus[] = ["created", "running", "paused", "stopped", "unknown"];

/** An exit as stored: `reason` is set when skiff decided the exit itself (e.g. "shim died"). */
export interface ExitRecord {
  exitStatus: number;
  /** RFC 3339 UTC, up to ns precision, e.g. "2024-05-01T10:00:00.123456789Z". */
  exitedAt: string;
  reason: string | null;
}

export interface ExitInput {
  exitStatus: number;
  exitedAt: string;
  reason?: string | null;
}

export interface RecordExitResult {
  /** True if this call stored the exit; false if an earlier exit stands (returned in `exit`). */
  recorded: boolean;
  exit: ExitRecord;
}

export interface Task {
  /** = container id. */
  id: string;
  shimId: string;
  bundle: string;
  pid: number | null;
  status: ProcessStatus;
  /** FIFO path / URI, or "". */
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exitStatus: number | null;
  /** RFC 3339 UTC with ns precision; null until exited. */
  exitedAt: string | null;
  exitReason: string | null;
  /** ms since epoch when teardown finished (tombstone); null while the task is live. */
  deletedAt: number | null;
  /** ms since epoch. */
  createdAt: number;
  /** ms since epoch. */
  updatedAt: number;
}

/** Required identity fields; the rest default (pid null, 'created', no stdio, no exit, now). */
export type NewTask = Pick<Task, "id" | "shimId" | "bundle"> & Partial<Omit<Task, "id" | "shimId" | "bundle">>;

/** Fields to change; exit fields change only through `recordExit`. */
export type TaskPatch = Partial<
  Pick<Task, "shimId" | "bundle" | "pid" | "status" | "stdin" | "stdout" | "stderr" | "terminal" | "deletedAt">
>;

export interface TaskFilter {
  shimId?: string;
  status?: ProcessStatus;
}

interface Row {
  id: string;
  shim_id: string;
  bundle: string;
  pid: number | null;
  status: ProcessStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: number;
  exit_status: number | null;
  exited_at: string | null;
  exit_reason: string | null;
  deleted_at: number | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  "id, shim_id, bundle, pid, status, stdin, stdout, stderr, terminal, exit_status, exited_at, exit_reason, deleted_at, created_at, updated_at";

export class TaskStore {
  readonly #now: () => number;
  readonly #insert;
  readonly #select;
  readonly #selectWhere;
  readonly #updateRow;
  readonly #recordExit;
  readonly #delete;
  readonly #containerExists;
  readonly #shimExists;
  readonly #shimUsed;
  readonly #updateTx;
  readonly #recordExitTx;

  constructor(
    private readonly db: Database,
    now: () => number = Date.now,
  ) {
    this.#now = now;
    this.#insert = db.prepare<Row>(
      `INSERT INTO tasks (${COLUMNS}) VALUES (@id, @shim_id, @bundle, @pid, @status, @stdin, @stdout, @stderr,
         @terminal, @exit_status, @exited_at, @exit_reason, @deleted_at, @created_at, @updated_at)`,
    );
    this.#select = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM tasks WHERE id = ?`);
    this.#selectWhere = db.prepare<{ shim: string | null; status: string | null }, Row>(
      `SELECT ${COLUMNS} FROM tasks WHERE (@shim IS NULL OR shim_id = @shim) AND (@status IS NULL OR status = @status)
       ORDER BY created_at, id`,
    );
    this.#updateRow = db.prepare<Row>(
      `UPDATE tasks SET shim_id = @shim_id, bundle = @bundle, pid = @pid, status = @status, stdin = @stdin,
         stdout = @stdout, stderr = @stderr, terminal = @terminal, deleted_at = @deleted_at, updated_at = @updated_at
         WHERE id = @id`,
    );
    this.#recordExit = db.prepare<{ id: string; status: number; at: string; reason: string | null; now: number }>(
      `UPDATE tasks SET exit_status = @status, exited_at = @at, exit_reason = @reason, status = 'stopped',
         updated_at = @now WHERE id = @id AND exit_status IS NULL`,
    );
    this.#delete = db.prepare<[string]>("DELETE FROM tasks WHERE id = ?");
    this.#shimExists = db.prepare<[string], { one: number }>("SELECT 1 AS one FROM shims WHERE id = ?");
    this.#containerExists = db.prepare<[string], { one: number }>("SELECT 1 AS one FROM containers WHERE id = ?");
    this.#shimUsed = db.prepare<[string], { one: number }>("SELECT 1 AS one FROM tasks WHERE shim_id = ? AND deleted_at IS NULL LIMIT 1");

    this.#updateTx = db.transaction((id: string, patch: TaskPatch): Task => {
      const current = this.get(id);
      const merged: Task = { ...current, ...definedOnly(patch), id, updatedAt: this.#now() };
      if (current.exitStatus !== null && merged.status !== "stopped") {
        throw failedPrecondition(`task "${id}" has exited; its status cannot become "${merged.status}"`);
      }
      validate(merged);
      if (merged.deletedAt === null && merged.shimId !== current.shimId && !this.#shimExists.get(merged.shimId)) {
        throw failedPrecondition(`task "${id}": shim "${merged.shimId}" does not exist`);
      }
      try {
        this.#updateRow.run(toRow(merged));
      } catch (err) {
        if (isConstraintError(err, "FOREIGNKEY")) throw failedPrecondition(`task "${id}": shim "${merged.shimId}" does not exist`, err);
        throw err;
      }
      return merged;
    });

    this.#recordExitTx = db.transaction((id: string, exit: ExitInput): RecordExitResult => {
      checkExitStatus(exit.exitStatus, `task "${id}"`);
      checkTimestamp(exit.exitedAt, `task "${id}" exit time`);
      const reason = exit.reason ?? null;
      const res = this.#recordExit.run({ id, status: exit.exitStatus, at: exit.exitedAt, reason, now: this.#now() });
      if (res.changes === 1) return { recorded: true, exit: { exitStatus: exit.exitStatus, exitedAt: exit.exitedAt, reason } };
      const t = this.get(id);
      return { recorded: false, exit: { exitStatus: t.exitStatus!, exitedAt: t.exitedAt!, reason: t.exitReason } };
    });
  }

  /**
   * Inserts a task; AlreadyExists if the container already has one, FailedPrecondition if the
   * container or the shim does not exist.
   */
  create(t: NewTask): Task {
    const now = this.#now();
    const task: Task = {
      id: t.id,
      shimId: t.shimId,
      bundle: t.bundle,
      pid: t.pid ?? null,
      status: t.status ?? "created",
      stdin: t.stdin ?? "",
      stdout: t.stdout ?? "",
      stderr: t.stderr ?? "",
      terminal: t.terminal ?? false,
      exitStatus: t.exitStatus ?? null,
      exitedAt: t.exitedAt ?? null,
      exitReason: t.exitReason ?? null,
      deletedAt: t.deletedAt ?? null,
      createdAt: t.createdAt ?? now,
      updatedAt: t.updatedAt ?? now,
    };
    validate(task);
    if (task.deletedAt === null && !this.#shimExists.get(task.shimId)) {
      throw failedPrecondition(`cannot create task "${t.id}": shim "${t.shimId}" does not exist`);
    }
    try {
      this.#insert.run(toRow(task));
    } catch (err) {
      if (isConstraintError(err, "PRIMARYKEY")) throw alreadyExists(`task "${t.id}" already exists`, err);
      if (isConstraintError(err, "FOREIGNKEY")) {
        const missing = !this.#containerExists.get(t.id) ? `container "${t.id}"` : `shim "${t.shimId}"`;
        throw failedPrecondition(`cannot create task "${t.id}": ${missing} does not exist`, err);
      }
      throw err;
    }
    return task;
  }

  /** The task, or NotFound. */
  get(id: string): Task {
    const t = this.find(id);
    if (!t) throw notFound(`task "${id}" not found`);
    return t;
  }

  /** The task, or undefined. */
  find(id: string): Task | undefined {
    const row = this.#select.get(id);
    return row && fromRow(row);
  }

  /** Tasks matching `filter`, oldest first. */
  list(filter: TaskFilter = {}): Task[] {
    return this.#selectWhere.all({ shim: filter.shimId ?? null, status: filter.status ?? null }).map(fromRow);
  }

  /**
   * Applies `patch` in one transaction and returns the result. NotFound if missing;
   * FailedPrecondition when moving an exited task out of 'stopped' or onto a missing shim.
   */
  update(id: string, patch: TaskPatch): Task {
    return this.#updateTx.immediate(id, patch);
  }

  /**
   * Records the task's exit unless one is recorded already (first exit wins), setting status
   * 'stopped'. NotFound if the task is missing; InvalidArgument for a malformed exit. The commit
   * is fsynced (`durably`): a recorded exit code survives power loss too.
   */
  recordExit(id: string, exit: ExitInput): RecordExitResult {
    return durably(this.db, () => this.#recordExitTx.immediate(id, exit));
  }

  /** Deletes the task and (by cascade) its execs; NotFound if missing. */
  delete(id: string): void {
    if (this.#delete.run(id).changes === 0) throw notFound(`task "${id}" not found`);
  }

  /** True if a live task (not a tombstone) references the shim. */
  shimInUse(shimId: string): boolean {
    return this.#shimUsed.get(shimId) !== undefined;
  }
}

function validate(t: Task): void {
  const what = `task "${t.id}"`;
  if (t.id === "") throw invalidArgument("task id must not be empty");
  if (!PROCESS_STATUSES.includes(t.status)) throw invalidArgument(`${what}: unknown status "${String(t.status)}"`);
  checkPid(t.pid, what);
  if ((t.exitStatus === null) !== (t.exitedAt === null)) {
    throw invalidArgument(`${what}: exit status and exit time are set together`);
  }
  if (t.exitStatus !== null) {
    checkExitStatus(t.exitStatus, what);
    checkTimestamp(t.exitedAt!, `${what} exit time`);
    if (t.status !== "stopped") throw invalidArgument(`${what}: an exited task must be stopped, not ${t.status}`);
  }
  if (t.deletedAt !== null && t.exitStatus === null) throw invalidArgument(`${what}: a torn-down task must have an exit`);
}

function toRow(t: Task): Row {
  return {
    id: t.id,
    shim_id: t.shimId,
    bundle: t.bundle,
    pid: t.pid,
    status: t.status,
    stdin: t.stdin,
    stdout: t.stdout,
    stderr: t.stderr,
    terminal: toBit(t.terminal),
    exit_status: t.exitStatus,
    exited_at: t.exitedAt,
    exit_reason: t.exitReason,
    deleted_at: t.deletedAt,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  };
}

function fromRow(r: Row): Task {
  return {
    id: r.id,
    shimId: r.shim_id,
    bundle: r.bundle,
    pid: r.pid,
    status: r.status,
    stdin: r.stdin,
    stdout: r.stdout,
    stderr: r.stderr,
    terminal: fromBit(r.terminal),
    exitStatus: r.exit_status,
    exitedAt: r.exited_at,
    exitReason: r.exit_reason,
    deletedAt: r.deleted_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
