/**
 * The metadata store: SQLite, the one durable source of truth of the runtime core.
 *
 * Invariants:
 * - Every state change is one transaction. A single store method is its own transaction;
 *   operations spanning several calls go through `transaction`, which nests (savepoints) and
 *   rolls back everything on throw.
 * - Transactions are synchronous: `fn` must not await (better-sqlite3 rejects a returned promise
 *   and rolls back). Do the I/O first, then write its outcome in one transaction.
 * - Write transactions begin IMMEDIATE, so two connections on one file (WAL) never deadlock on a
 *   read→write lock upgrade; a waiting writer gives up after busy_timeout (5 s) with SQLITE_BUSY.
 * - Stores return plain domain objects (camelCase); rows never leave this module.
 * Owned by the daemon; `close()` is idempotent and every store is unusable after it.
 */
import { closeDatabase, openDatabase, type Database } from "./db.js";
import { ContainerStore } from "./containers.js";
import { ExecStore } from "./execs.js";
import { ImageStore } from "./images.js";
import { migrate, MIGRATIONS, type Migration } from "./migrations.js";
import { ShimStore } from "./shims.js";
import { TaskStore } from "./tasks.js";
import { TeardownStore } from "./teardowns.js";
import { CriDocStore, type CriDoc } from "./cri.js";

export { closeDatabase, openDatabase, type Database } from "./db.js";
export { appliedMigrations, migrate, MIGRATIONS, type AppliedMigration, type Migration } from "./migrations.js";
export {
  ContainerStore,
  type Container,
  type ContainerFilter,
  type ContainerPatch,
  type Mount,
  type NewContainer,
} from "./containers.js";
export { ShimStore, type NewShim, type Shim, type ShimPatch, type ShimState } from "./shims.js";
export {
  PROCESS_STATUSES,
  TaskStore,
  type ExitInput,
  type ExitRecord,
  type NewTask,
  type ProcessStatus,
  type RecordExitResult,
  type Task,
  type TaskFilter,
  type TaskPatch,
} from "./tasks.js";
export { ExecStore, type Exec, type ExecPatch, type NewExec } from "./execs.js";
export {
  ImageStore,
  type ImageFilter,
  type ImageRecord,
  type ImageTarget,
  type NewImage,
} from "./images.js";
export { CriDocStore, type CriDoc } from "./cri.js";
export { TEARDOWN_PHASES, TeardownStore, type NewTeardown, type Teardown, type TeardownPhase } from "./teardowns.js";

export interface MetadataStoreOptions {
  /** Clock for createdAt / updatedAt (ms since epoch); tests inject a fake one. */
  now?: () => number;
  /** Schema migrations to apply; defaults to this build's `MIGRATIONS`. */
  migrations?: readonly Migration[];
}

/** What `finishTask` removed. */
export interface FinishedTask {
  execs: number;
  task: boolean;
  teardown: boolean;
}

export class MetadataStore {
  readonly containers: ContainerStore;
  readonly shims: ShimStore;
  readonly tasks: TaskStore;
  readonly execs: ExecStore;
  readonly teardowns: TeardownStore;
  readonly images: ImageStore;
  /** The file path given to `open` (":memory:" for an in-memory store). */
  readonly path: string;
  readonly #db: Database;
  readonly #finishTx;

  /**
   * Opens the database at `path` (creating it and its directory), applies pending migrations and
   * prepares every statement. FailedPrecondition if the file's schema is newer than this build.
   */
  static open(path: string, options: MetadataStoreOptions = {}): MetadataStore {
    const db = openDatabase(path);
    try {
      migrate(db, options.migrations ?? MIGRATIONS);
      return new MetadataStore(db, path, options.now ?? Date.now);
    } catch (err) {
      closeDatabase(db);
      throw err;
    }
  }

  private constructor(db: Database, path: string, now: () => number) {
    this.#db = db;
    this.path = path;
    this.containers = new ContainerStore(db, now);
    this.shims = new ShimStore(db, now);
    this.tasks = new TaskStore(db, now);
    this.execs = new ExecStore(db, now);
    this.teardowns = new TeardownStore(db, now);
    this.images = new ImageStore(db, now);
    this.#finishTx = db.transaction((taskId: string): FinishedTask => {
      const execs = this.execs.deleteAll(taskId);
      const task = this.tasks.find(taskId) !== undefined;
      if (task) this.tasks.delete(taskId);
      return { execs, task, teardown: this.teardowns.complete(taskId) };
    });
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction (a savepoint when nested) and returns its result.
   * If `fn` throws, every write it made is rolled back and the error is rethrown.
   */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  /**
   * The end of a task's life, in one transaction: deletes its exec rows, its task row and its
   * teardown row. Idempotent: whatever is already gone is skipped; reports what was removed.
   * The container row stays (it belongs to the containers service).
   */
  finishTask(taskId: string): FinishedTask {
    return this.#finishTx.immediate(taskId);
  }

  /**
   * A store of CRI documents on this database (the CRI layer owns their shape). `parentOf`
   * gives the pod id of a container document.
   */
  criDocs<T extends CriDoc>(table: "cri_sandboxes" | "cri_containers", what: string, parentOf?: (doc: T) => string): CriDocStore<T> {
    return new CriDocStore<T>(this.#db, table, what, parentOf);
  }

  /** True if no task row references the shim (so it may be shut down and forgotten). */
  shimIsUnused(shimId: string): boolean {
    return !this.tasks.shimInUse(shimId);
  }

  /** Closes the connection; idempotent. */
  close(): void {
    closeDatabase(this.#db);
  }
}
