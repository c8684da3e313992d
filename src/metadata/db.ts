/**
 * Opening and closing the SQLite connection that backs the metadata store.
 *
 * better-sqlite3 is synchronous: every statement blocks the event loop for its duration. That is
 * the price of "one durable truth" (a commit returns only once it is on disk); keep transactions
 * short and never run one per byte of a hot data path.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";

export type Database = BetterSqlite3.Database;

/**
 * Opens (creating if needed) the database at `path`, creating its parent directory (mode 0700).
 * `":memory:"` opens a private in-memory database, for unit tests.
 *
 * Pragmas, set on every connection because SQLite does not persist them (except journal_mode):
 * - journal_mode=WAL: readers never block the writer; several connections may share the file.
 * - synchronous=FULL: a commit is fsynced, so a recorded exit code survives power loss.
 * - foreign_keys=ON: the FKs of the schema are enforced (SQLite's default is off).
 * - busy_timeout=5000: a writer waits up to 5 s for another connection's write lock.
 *
 * The caller owns the connection and closes it with `closeDatabase`.
 */
export function openDatabase(path: string): Database {
  const memory = path === ":memory:" || path === "";
  if (!memory) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new BetterSqlite3(path);
  try {
    if (!memory) db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Closes the connection; idempotent. Statements prepared on it become unusable. */
export function closeDatabase(db: Database): void {
  if (db.open) db.close();
}

/** The kinds of SQLite constraint failure the stores translate into SkiffErrors. */
export type ConstraintKind = "PRIMARYKEY" | "UNIQUE" | "FOREIGNKEY" | "CHECK" | "NOTNULL";

/**
 * True if `err` is a SQLite constraint violation of `kind` (better-sqlite3 reports extended
 * result codes such as `SQLITE_CONSTRAINT_FOREIGNKEY`). SQLite reports a violated
 * `ON DELETE RESTRICT` as `SQLITE_CONSTRAINT_TRIGGER`; that counts as FOREIGNKEY here.
 */
export function isConstraintError(err: unknown, kind: ConstraintKind): boolean {
  if (!(err instanceof BetterSqlite3.SqliteError)) return false;
  if (err.code === `SQLITE_CONSTRAINT_${kind}`) return true;
  return kind === "FOREIGNKEY" && err.code === "SQLITE_CONSTRAINT_TRIGGER" && /FOREIGN KEY/.test(err.message);
}
