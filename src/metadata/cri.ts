/**
 * The CRI layer's own records (tables `cri_sandboxes`, `cri_containers`): one JSON document per
 * pod or container, plus the columns SQLite must index or keep unique.
 *
 * Invariants:
 * - `name_key` is unique: a second pod (or container) with the same CRI metadata is refused
 *   with AlreadyExists naming the id that holds the name, which is how CRI name reservation works.
 * - Documents are owned by the CRI layer; this module only stores them. Each method is one
 *   transaction. Not safe to use after `close()`.
 */
import { alreadyExists, notFound } from "../errors.js";
import { parseJson } from "./codec.js";
import { isConstraintError, type Database } from "./db.js";

/** What every CRI document carries. */
export interface CriDoc {
  id: string;
  /** The reservation key built from the CRI metadata (unique per table). */
  nameKey: string;
}

interface Row {
  id: string;
  name_key: string;
  parent_id: string;
  doc: string;
}

/** A table of CRI documents; `parent` links containers to their pod (empty for pods). */
export class CriDocStore<T extends CriDoc> {
  readonly #insert;
  readonly #select;
  readonly #selectByName;
  readonly #selectAll;
  readonly #selectByParent;
  readonly #update;
  readonly #rename;
  readonly #delete;

  constructor(
    db: Database,
    private readonly table: "cri_sandboxes" | "cri_containers",
    private readonly what: string,
    private readonly parentOf: (doc: T) => string = () => "",
  ) {
    this.#insert = db.prepare<Row>(`INSERT INTO ${table} (id, name_key, parent_id, doc) VALUES (@id, @name_key, @parent_id, @doc)`);
    this.#select = db.prepare<[string], Row>(`SELECT * FROM ${table} WHERE id = ?`);
    this.#selectByName = db.prepare<[string], Row>(`SELECT * FROM ${table} WHERE name_key = ?`);
    this.#selectAll = db.prepare<[], Row>(`SELECT * FROM ${table} ORDER BY rowid`);
    this.#selectByParent = db.prepare<[string], Row>(`SELECT * FROM ${table} WHERE parent_id = ? ORDER BY rowid`);
    this.#update = db.prepare<[string, string]>(`UPDATE ${table} SET doc = ? WHERE id = ?`);
    this.#rename = db.prepare<[string, string, string]>(`UPDATE ${table} SET name_key = ?, doc = ? WHERE id = ?`);
    this.#delete = db.prepare<[string]>(`DELETE FROM ${table} WHERE id = ?`);
  }

  #toDoc(row: Row): T {
    return parseJson<T>(row.doc, `${this.what} "${row.id}"`);
  }

  /** Inserts a new document; AlreadyExists (naming the holder) if its id or name is taken. */
  create(doc: T): T {
    try {
      this.#insert.run({ id: doc.id, name_key: doc.nameKey, parent_id: this.parentOf(doc), doc: JSON.stringify(doc) });
    } catch (err) {
      if (isConstraintError(err, "UNIQUE") || isConstraintError(err, "PRIMARYKEY")) {
        const holder = this.#selectByName.get(doc.nameKey);
        if (holder) {
          throw alreadyExists(`${this.what} name "${doc.nameKey}" is reserved for id "${holder.id}"`, err);
        }
        throw alreadyExists(`${this.what} "${doc.id}" already exists`, err);
      }
      throw err;
    }
    return doc;
  }

  find(id: string): T | undefined {
    const row = this.#select.get(id);
    return row ? this.#toDoc(row) : undefined;
  }

  get(id: string): T {
    const doc = this.find(id);
    if (!doc) throw notFound(`${this.what} "${id}" not found`);
    return doc;
  }

  list(): T[] {
    return this.#selectAll.all().map((r) => this.#toDoc(r));
  }

  listByParent(parentId: string): T[] {
    return this.#selectByParent.all(parentId).map((r) => this.#toDoc(r));
  }

  /** Replaces fields of a stored document; returns the new document. NotFound if it is gone. */
  update(id: string, patch: Partial<Omit<T, "id" | "nameKey">>): T {
    const cur = this.get(id);
    const next = { ...cur, ...patch } as T;
    this.#update.run(JSON.stringify(next), id);
    return next;
  }

  /**
   * Frees the document's name for a new object while the document itself stays (an object being
   * removed in the background). Its key becomes `removed/<id>`, which no request can produce:
   * request keys join four or more parts with "_" and ids are hex.
   */
  releaseName(id: string, patch: Partial<Omit<T, "id" | "nameKey">> = {}): T {
    const next = { ...this.get(id), ...patch, nameKey: `removed/${id}` } as T;
    this.#rename.run(next.nameKey, JSON.stringify(next), id);
    return next;
  }

  /** Removes the document; true if it existed. */
  delete(id: string): boolean {
    return this.#delete.run(id).changes > 0;
  }
}

export const criSchema = `
CREATE TABLE cri_sandboxes (
  id        TEXT PRIMARY KEY NOT NULL,
  name_key  TEXT NOT NULL UNIQUE,
  parent_id TEXT NOT NULL DEFAULT '',
  doc       TEXT NOT NULL
) STRICT;
CREATE TABLE cri_containers (
  id        TEXT PRIMARY KEY NOT NULL,
  name_key  TEXT NOT NULL UNIQUE,
  parent_id TEXT NOT NULL,
  doc       TEXT NOT NULL
) STRICT;
CREATE INDEX cri_containers_parent ON cri_containers (parent_id);
`;
