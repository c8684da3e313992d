/**
 * Container records (table `containers`): what to run and how, independent of whether it runs.
 *
 * Invariants: `spec` is valid JSON (the OCI runtime spec as text, kept verbatim); a container
 * referenced by a task cannot be deleted (FK ON DELETE RESTRICT → FailedPrecondition).
 * Methods are synchronous and each is one transaction. Not safe to use after `close()`.
 */
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errors.js";
import { definedOnly, parseJson } from "./codec.js";
import { isConstraintError, type Database } from "./db.js";

/** One rootfs mount, as handed to the shim's Create. */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface Container {
  id: string;
  /** Runtime handler name, e.g. "runc". */
  runtime: string;
  /** OCI runtime spec, JSON text. */
  spec: string;
  rootfs: Mount[];
  labels: Record<string, string>;
  /** Grouping key: containers of one pod share a sandbox id (and a shim). */
  sandboxId: string | null;
  /** ms since epoch. */
  createdAt: number;
  /** ms since epoch. */
  updatedAt: number;
}

/** Required identity fields; the rest default (no mounts, no labels, no sandbox, now). */
export type NewContainer = Pick<Container, "id" | "runtime" | "spec"> &
  Partial<Pick<Container, "rootfs" | "labels" | "sandboxId" | "createdAt" | "updatedAt">>;

/** Fields to change; absent or `undefined` means unchanged, `sandboxId: null` clears it. */
export type ContainerPatch = Partial<Pick<Container, "runtime" | "spec" | "rootfs" | "labels" | "sandboxId">>;

export interface ContainerFilter {
  sandboxId?: string;
  /** Every given label must be present with the same value. */
  labels?: Record<string, string>;
}

interface Row {
  id: string;
  runtime: string;
  spec: string;
  rootfs: string;
  labels: string;
  sandbox_id: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = "id, runtime, spec, rootfs, labels, sandbox_id, created_at, updated_at";

export class ContainerStore {
  readonly #now: () => number;
  readonly #insert;
  readonly #select;
  readonly #selectAll;
  readonly #selectBySandbox;
  readonly #updateRow;
  readonly #delete;
  readonly #updateTx;

  constructor(db: Database, now: () => number = Date.now) {
    this.#now = now;
    this.#insert = db.prepare<Row>(
      `INSERT INTO containers (${COLUMNS}) VALUES (@id, @runtime, @spec, @rootfs, @labels, @sandbox_id, @created_at, @updated_at)`,
    );
    this.#select = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM containers WHERE id = ?`);
    this.#selectAll = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM containers ORDER BY created_at, id`);
    this.#selectBySandbox = db.prepare<[string], Row>(
      `SELECT ${COLUMNS} FROM containers WHERE sandbox_id = ? ORDER BY created_at, id`,
    );
    this.#updateRow = db.prepare<Row>(
      `UPDATE containers SET runtime = @runtime, spec = @spec, rootfs = @rootfs, labels = @labels,
         sandbox_id = @sandbox_id, updated_at = @updated_at WHERE id = @id`,
    );
    this.#delete = db.prepare<[string]>("DELETE FROM containers WHERE id = ?");
    this.#updateTx = db.transaction((id: string, patch: ContainerPatch): Container => {
      const merged: Container = { ...this.get(id), ...definedOnly(patch), id, updatedAt: this.#now() };
      validate(merged);
      this.#updateRow.run(toRow(merged));
      return merged;
    });
  }

  /** Inserts a new container; AlreadyExists if the id is taken. */
  create(c: NewContainer): Container {
    const now = this.#now();
    const container: Container = {
      id: c.id,
      runtime: c.runtime,
      spec: c.spec,
      rootfs: c.rootfs ?? [],
      labels: c.labels ?? {},
      sandboxId: c.sandboxId ?? null,
      createdAt: c.createdAt ?? now,
      updatedAt: c.updatedAt ?? now,
    };
    validate(container);
    try {
      this.#insert.run(toRow(container));
    } catch (err) {
      if (isConstraintError(err, "PRIMARYKEY")) throw alreadyExists(`container "${c.id}" already exists`, err);
      throw err;
    }
    return container;
  }

  /** The container, or NotFound. */
  get(id: string): Container {
    const c = this.find(id);
    if (!c) throw notFound(`container "${id}" not found`);
    return c;
  }

  /** The container, or undefined. */
  find(id: string): Container | undefined {
    const row = this.#select.get(id);
    return row && fromRow(row);
  }

  /** Containers matching `filter`, oldest first. */
  list(filter: ContainerFilter = {}): Container[] {
    const rows = filter.sandboxId !== undefined ? this.#selectBySandbox.all(filter.sandboxId) : this.#selectAll.all();
    const wanted = Object.entries(filter.labels ?? {});
    return rows.map(fromRow).filter((c) => wanted.every(([k, v]) => c.labels[k] === v));
  }

  /** Applies `patch` in one transaction and returns the result; NotFound if missing. */
  update(id: string, patch: ContainerPatch): Container {
    return this.#updateTx.immediate(id, patch);
  }

  /** Deletes the container; NotFound if missing, FailedPrecondition while a task references it. */
  delete(id: string): void {
    let changes: number;
    try {
      changes = this.#delete.run(id).changes;
    } catch (err) {
      if (isConstraintError(err, "FOREIGNKEY")) {
        throw failedPrecondition(`container "${id}" still has a task; delete the task first`, err);
      }
      throw err;
    }
    if (changes === 0) throw notFound(`container "${id}" not found`);
  }
}

function validate(c: Container): void {
  if (c.id === "") throw invalidArgument("container id must not be empty");
  if (c.runtime === "") throw invalidArgument(`container "${c.id}": runtime must not be empty`);
  try {
    JSON.parse(c.spec);
  } catch (err) {
    throw invalidArgument(`container "${c.id}": spec is not valid JSON`, err);
  }
}

function toRow(c: Container): Row {
  return {
    id: c.id,
    runtime: c.runtime,
    spec: c.spec,
    rootfs: JSON.stringify(c.rootfs),
    labels: JSON.stringify(c.labels),
    sandbox_id: c.sandboxId,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
  };
}

function fromRow(r: Row): Container {
  const what = `container "${r.id}"`;
  return {
    id: r.id,
    runtime: r.runtime,
    spec: r.spec,
    rootfs: parseJson<Mount[]>(r.rootfs, what),
    labels: parseJson<Record<string, string>>(r.labels, what),
    sandboxId: r.sandbox_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
