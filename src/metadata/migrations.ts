/**
 * Versioned schema migrations.
 *
 * Invariants:
 * - Versions are 1, 2, 3, … with no gaps; a released migration is never edited, only followed.
 * - Each migration runs in its own IMMEDIATE transaction together with its `schema_migrations`
 *   row, so a crash or error leaves the schema at the previous version, never half-migrated.
 * - A database whose recorded version is newer than the code knows is refused (FailedPrecondition)
 *   before anything is written: an older skiff must not guess at a newer schema.
 * - SQLite ignores `PRAGMA foreign_keys` inside a transaction; a future migration that rebuilds a
 *   referenced table must not rely on switching FKs off here.
 */
import { failedPrecondition, invalidArgument } from "../errors.js";
import type { Database } from "./db.js";
import { criSchema } from "./cri.js";

export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Database): void;
}

/** Schema v1: timestamps `*_at` are ms since epoch (INTEGER) except `exited_at` (see tasks.ts). */
const initialSchema = `
CREATE TABLE containers (
  id          TEXT PRIMARY KEY NOT NULL,
  runtime     TEXT NOT NULL,
  spec        TEXT NOT NULL,
  rootfs      TEXT NOT NULL DEFAULT '[]',
  labels      TEXT NOT NULL DEFAULT '{}',
  sandbox_id  TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX containers_sandbox_id ON containers (sandbox_id);

CREATE TABLE shims (
  id          TEXT PRIMARY KEY NOT NULL,
  runtime     TEXT NOT NULL,
  binary      TEXT NOT NULL,
  address     TEXT NOT NULL,
  bundle      TEXT NOT NULL,
  pid         INTEGER,
  namespace   TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('starting', 'running', 'shutting_down', 'stopped')),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE tasks (
  id          TEXT PRIMARY KEY NOT NULL REFERENCES containers (id) ON DELETE RESTRICT,
  shim_id     TEXT NOT NULL,
  bundle      TEXT NOT NULL,
  pid         INTEGER,
  status      TEXT NOT NULL CHECK (status IN ('created', 'running', 'paused', 'stopped', 'unknown')),
  stdin       TEXT NOT NULL DEFAULT '',
  stdout      TEXT NOT NULL DEFAULT '',
  stderr      TEXT NOT NULL DEFAULT '',
  terminal    INTEGER NOT NULL DEFAULT 0 CHECK (terminal IN (0, 1)),
  exit_status INTEGER,
  exited_at   TEXT,
  exit_reason TEXT,
  deleted_at  INTEGER,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  CHECK ((exit_status IS NULL) = (exited_at IS NULL)),
  CHECK (exit_status IS NULL OR status = 'stopped'),
  CHECK (deleted_at IS NULL OR exit_status IS NOT NULL)
) STRICT;
CREATE INDEX tasks_shim_id ON tasks (shim_id);

CREATE TABLE execs (
  task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  exec_id     TEXT NOT NULL,
  pid         INTEGER,
  status      TEXT NOT NULL CHECK (status IN ('created', 'running', 'paused', 'stopped', 'unknown')),
  stdin       TEXT NOT NULL DEFAULT '',
  stdout      TEXT NOT NULL DEFAULT '',
  stderr      TEXT NOT NULL DEFAULT '',
  terminal    INTEGER NOT NULL DEFAULT 0 CHECK (terminal IN (0, 1)),
  exit_status INTEGER,
  exited_at   TEXT,
  exit_reason TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (task_id, exec_id),
  CHECK ((exit_status IS NULL) = (exited_at IS NULL)),
  CHECK (exit_status IS NULL OR status = 'stopped')
) STRICT;

CREATE TABLE teardowns (
  task_id         TEXT PRIMARY KEY NOT NULL,
  shim_id         TEXT NOT NULL,
  bundle          TEXT NOT NULL,
  phase           TEXT NOT NULL CHECK (phase IN ('delete_task', 'shutdown_shim', 'cleanup_bundle')),
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX teardowns_created_at ON teardowns (created_at);
`;

/**
 * Schema v2: the image store (see images.ts). One row per name; many names may share a target.
 * `config` is the parsed image config (JSON), `size` the sum of manifest, config and layer sizes.
 */
const imagesSchema = `
CREATE TABLE images (
  name              TEXT PRIMARY KEY NOT NULL,
  target_digest     TEXT NOT NULL,
  target_media_type TEXT NOT NULL,
  target_size       INTEGER NOT NULL CHECK (target_size >= 0),
  config_digest     TEXT NOT NULL,
  config            TEXT NOT NULL DEFAULT '{}',
  size              INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
  labels            TEXT NOT NULL DEFAULT '{}',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX images_target_digest ON images (target_digest);
CREATE INDEX images_config_digest ON images (config_digest);
`;

/** Every migration this build knows, in order. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "initial schema", up: (db) => void db.exec(initialSchema) },
  { version: 2, name: "images", up: (db) => void db.exec(imagesSchema) },
  { version: 3, name: "cri records", up: (db) => void db.exec(criSchema) },
];

export interface AppliedMigration {
  version: number;
  name: string;
  /** ms since epoch. */
  appliedAt: number;
}

/** Migrations recorded in `db`, oldest first; empty if the bookkeeping table does not exist yet. */
export function appliedMigrations(db: Database): AppliedMigration[] {
  const exists = db
    .prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (!exists || exists.n === 0) return [];
  return db
    .prepare<[], AppliedMigration>(
      "SELECT version, name, applied_at AS appliedAt FROM schema_migrations ORDER BY version",
    )
    .all();
}

/**
 * Brings `db` to the newest version in `migrations`; a no-op when it is already there.
 * Returns the versions applied by this call. Safe against a concurrent migrator on the same file:
 * each step re-checks, inside its write transaction, whether it was already applied.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS, now = Date.now): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw invalidArgument(`migration "${m.name}" has version ${m.version}, want ${i + 1}`);
  });
  const latest = migrations.length;
  const current = () =>
    db.prepare<[], { v: number | null }>("SELECT max(version) AS v FROM schema_migrations").get()?.v ?? 0;
  const refuseFuture = (v: number) => {
    if (v > latest) {
      throw failedPrecondition(
        `metadata database ${db.name} has schema version ${v}, newer than the ${latest} this skiff knows; ` +
          "upgrade skiff or restore an older database",
      );
    }
  };
  // Check before writing anything, so an old binary leaves a newer database untouched.
  const recorded = appliedMigrations(db);
  refuseFuture(recorded.at(-1)?.version ?? 0);
  for (const r of recorded) {
    const known = migrations[r.version - 1];
    if (known && known.name !== r.name) {
      throw failedPrecondition(
        `metadata database ${db.name}: migration ${r.version} is recorded as "${r.name}" but this skiff calls it "${known.name}"`,
      );
    }
  }

  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const record = db.prepare<[number, string, number]>(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
  );
  const applied: number[] = [];
  const step = db.transaction((m: Migration): void => {
    const v = current();
    refuseFuture(v);
    if (v >= m.version) return; // another connection got there first
    m.up(db);
    record.run(m.version, m.name, now());
    applied.push(m.version);
  });
  for (const m of migrations) {
    if (m.version > current()) step.immediate(m);
  }
  return applied;
}
