/**
 * Opening and closing the SQLite connection that backs the metadata store.
 *
 * better-sqlite3 is synchronous: every statement blocks the event loop for its duration; keep
 * transactions short and never run one per byte of a hot data path.
 *
 * Durability: in WAL mode with synchronous=NORMAL a commit is in the WAL file (the page cache)
 * when it returns, so it survives the daemon being killed; only an OS crash or power loss can drop
 * the latest commits, and then always a suffix (WAL frames replay in order). An fsync per commit
 * (FULL) blocked the event loop 1–2 ms each, ~40 commits per pod lifecycle. What must survive
 * power loss too — recorded exit codes — commits through `durably`, which fsyncs the WAL and so
 * everything committed before it. (After a power loss every shim, container and /run file is gone
 * anyway; what remains to tell is which objects existed and how they ended.)
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
 * - synchronous=NORMAL: see the file comment; `durably` commits with FULL.
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
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Runs `fn` (which commits one transaction) with synchronous=FULL: its commit is fsynced, with
 * every commit before it. Inside an open transaction it just runs `fn`: the outer commit decides.
 */
export function durably<T>(db: Database, fn: () => T): T {
  if (db.inTransaction) return fn();
  db.pragma("synchronous = FULL");
  try {
    return fn();
  } finally {
    db.pragma("synchronous = NORMAL");
  }
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
