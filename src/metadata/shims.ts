/**
 * Shim records (table `shims`): one row per running (or starting, or stopping) shim process.
 * A row in state 'stopped' is a shim whose process is gone but whose last task is not yet
 * tombstoned; it is deleted in the same transaction that tombstones that task.
 *
 * Invariants: the id is the shim's group id (the sandbox id, or the task id when ungrouped); a
 * shim referenced by a task row cannot be deleted (FK → FailedPrecondition). The row is written
 * before the process is started, so a daemon crash mid-start leaves a record recovery can act on.
 * Methods are synchronous and each is one transaction. Not safe to use after `close()`.
 */
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errors.js";
import { checkPid, definedOnly } from "./codec.js";
import { isConstraintError, type Database } from "./db.js";

export type ShimState = "starting" | "running" | "shutting_down" | "stopped";

export interface Shim {
  /** Group id: sandbox id, or task id when ungrouped. */
  id: string;
  /** Runtime handler name, e.g. "runc". */
  runtime: string;
  /** Path of the shim binary. */
  binary: string;
  /** ttrpc socket (unix path); "" until the shim has printed it. */
  address: string;
  /** Directory the shim was started in. */
  bundle: string;
  /** null until known (Connect). */
  pid: number | null;
  namespace: string;
  state: ShimState;
  /** ms since epoch. */
  createdAt: number;
  /** ms since epoch. */
  updatedAt: number;
}

/** Required identity fields; the rest default (address "", pid null, state "starting", now). */
export type NewShim = Pick<Shim, "id" | "runtime" | "binary" | "bundle" | "namespace"> &
  Partial<Pick<Shim, "address" | "pid" | "state" | "createdAt" | "updatedAt">>;

/** Fields to change; absent or `undefined` means unchanged. */
export type ShimPatch = Partial<Pick<Shim, "runtime" | "binary" | "address" | "bundle" | "pid" | "namespace" | "state">>;

const STATES: readonly ShimState[] = ["starting", "running", "shutting_down", "stopped"];

interface Row {
  id: string;
  runtime: string;
  binary: string;
  address: string;
  bundle: string;
  pid: number | null;
  namespace: string;
  state: ShimState;
  created_at: number;
  updated_at: number;
}

const COLUMNS = "id, runtime, binary, address, bundle, pid, namespace, state, created_at, updated_at";

export class ShimStore {
  readonly #now: () => number;
  readonly #insert;
  readonly #select;
  readonly #selectAll;
  readonly #updateRow;
  readonly #delete;
  readonly #used;
  readonly #deleteTx;
  readonly #updateTx;

  constructor(db: Database, now: () => number = Date.now) {
    this.#now = now;
    this.#insert = db.prepare<Row>(
      `INSERT INTO shims (${COLUMNS})
       VALUES (@id, @runtime, @binary, @address, @bundle, @pid, @namespace, @state, @created_at, @updated_at)`,
    );
    this.#select = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM shims WHERE id = ?`);
    this.#selectAll = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM shims ORDER BY created_at, id`);
    this.#updateRow = db.prepare<Row>(
      `UPDATE shims SET runtime = @runtime, binary = @binary, address = @address, bundle = @bundle, pid = @pid,
         namespace = @namespace, state = @state, updated_at = @updated_at WHERE id = @id`,
    );
    this.#delete = db.prepare<[string]>("DELETE FROM shims WHERE id = ?");
    this.#used = db.prepare<[string], { one: number }>(
      "SELECT 1 AS one FROM tasks WHERE shim_id = ? AND deleted_at IS NULL LIMIT 1",
    );
    this.#deleteTx = db.transaction((id: string) => {
      if (this.#used.get(id)) throw failedPrecondition(`shim "${id}" is still used by a task; delete its tasks first`);
      if (this.#delete.run(id).changes === 0) throw notFound(`shim "${id}" not found`);
    });
    this.#updateTx = db.transaction((id: string, patch: ShimPatch): Shim => {
      const merged: Shim = { ...this.get(id), ...definedOnly(patch), id, updatedAt: this.#now() };
      validate(merged);
      this.#updateRow.run(toRow(merged));
      return merged;
    });
  }

  /** Inserts a shim record; AlreadyExists if the id is taken. */
  create(s: NewShim): Shim {
    const now = this.#now();
    const shim: Shim = {
      id: s.id,
      runtime: s.runtime,
      binary: s.binary,
      address: s.address ?? "",
      bundle: s.bundle,
      pid: s.pid ?? null,
      namespace: s.namespace,
      state: s.state ?? "starting",
      createdAt: s.createdAt ?? now,
      updatedAt: s.updatedAt ?? now,
    };
    validate(shim);
    try {
      this.#insert.run(toRow(shim));
    } catch (err) {
      if (isConstraintError(err, "PRIMARYKEY")) throw alreadyExists(`shim "${s.id}" already exists`, err);
      throw err;
    }
    return shim;
  }

  /** The shim, or NotFound. */
  get(id: string): Shim {
    const s = this.find(id);
    if (!s) throw notFound(`shim "${id}" not found`);
    return s;
  }

  /** The shim, or undefined. */
  find(id: string): Shim | undefined {
    const row = this.#select.get(id);
    return row && fromRow(row);
  }

  /** Every shim record, oldest first. */
  list(): Shim[] {
    return this.#selectAll.all().map(fromRow);
  }

  /** Applies `patch` in one transaction and returns the result; NotFound if missing. */
  update(id: string, patch: ShimPatch): Shim {
    return this.#updateTx.immediate(id, patch);
  }

  /** Deletes the record; NotFound if missing, FailedPrecondition while a task references it. */
  delete(id: string): void {
    this.#deleteTx.immediate(id);
  }
}

function validate(s: Shim): void {
  if (s.id === "") throw invalidArgument("shim id must not be empty");
  if (!STATES.includes(s.state)) throw invalidArgument(`shim "${s.id}": unknown state "${String(s.state)}"`);
  checkPid(s.pid, `shim "${s.id}"`);
}

function toRow(s: Shim): Row {
  return {
    id: s.id,
    runtime: s.runtime,
    binary: s.binary,
    address: s.address,
    bundle: s.bundle,
    pid: s.pid,
    namespace: s.namespace,
    state: s.state,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  };
}

function fromRow(r: Row): Shim {
  return {
    id: r.id,
    runtime: r.runtime,
    binary: r.binary,
    address: r.address,
    bundle: r.bundle,
    pid: r.pid,
    namespace: r.namespace,
    state: r.state,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
