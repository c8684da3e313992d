import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { isFailedPrecondition, isInvalidArgument } from "../errors.js";
import { closeDatabase, openDatabase } from "./db.js";
import { MetadataStore } from "./index.js";
import { appliedMigrations, migrate, MIGRATIONS, type Migration } from "./migrations.js";
import { tempDir } from "./testing.js";

const tables = (db: ReturnType<typeof openDatabase>) =>
  db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all()
    .map((r) => r.name);

describe("migrations", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("apply once, in order, recorded in schema_migrations", () => {
    const db = openDatabase(":memory:");
    assert.deepEqual(migrate(db, MIGRATIONS, () => 42), MIGRATIONS.map((m) => m.version));
    assert.deepEqual(appliedMigrations(db), MIGRATIONS.map((m) => ({ version: m.version, name: m.name, appliedAt: 42 })));
    for (const t of ["containers", "shims", "tasks", "execs", "teardowns", "schema_migrations"]) {
      assert.ok(tables(db).includes(t), `table ${t} exists`);
    }
    assert.deepEqual(migrate(db), [], "second run applies nothing");
    assert.equal(appliedMigrations(db).length, MIGRATIONS.length);
    closeDatabase(db);
  });

  test("re-opening a file is a no-op", () => {
    const file = path.join(dir, "reopen.db");
    MetadataStore.open(file).close();
    const first = openDatabase(file);
    const before = appliedMigrations(first);
    closeDatabase(first);
    const meta = MetadataStore.open(file);
    meta.close();
    const db = openDatabase(file);
    assert.deepEqual(appliedMigrations(db), before);
    assert.equal(appliedMigrations(db).length, MIGRATIONS.length);
    closeDatabase(db);
  });

  test("a database from a newer skiff is refused and left untouched", () => {
    const file = path.join(dir, "future.db");
    MetadataStore.open(file).close();
    const db = openDatabase(file);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)").run();
    closeDatabase(db);

    assert.throws(
      () => MetadataStore.open(file),
      (err: Error) => isFailedPrecondition(err) && /version 999/.test(err.message) && /newer/.test(err.message),
    );
    const check = openDatabase(file);
    assert.equal(appliedMigrations(check).at(-1)?.version, 999);
    closeDatabase(check);
  });

  test("a recorded migration with another name is refused", () => {
    const db = openDatabase(":memory:");
    migrate(db, [{ version: 1, name: "one", up: (d) => void d.exec("CREATE TABLE a (x)") }]);
    assert.throws(
      () => migrate(db, [{ version: 1, name: "renamed", up: () => {} }]),
      (err: Error) => isFailedPrecondition(err) && err.message.includes('"one"'),
    );
    closeDatabase(db);
  });

  test("each migration is its own transaction: a failing one leaves the previous applied", () => {
    const db = openDatabase(":memory:");
    const list: Migration[] = [
      { version: 1, name: "one", up: (d) => void d.exec("CREATE TABLE a (x)") },
      {
        version: 2,
        name: "two",
        up: (d) => {
          d.exec("CREATE TABLE b (x)");
          throw new Error("boom");
        },
      },
    ];
    assert.throws(() => migrate(db, list), /boom/);
    assert.deepEqual(
      appliedMigrations(db).map((m) => m.version),
      [1],
    );
    assert.ok(tables(db).includes("a"));
    assert.ok(!tables(db).includes("b"), "half-applied migration rolled back");
    // Fixed migration applies on the next run.
    list[1] = { version: 2, name: "two", up: (d) => void d.exec("CREATE TABLE b (x)") };
    assert.deepEqual(migrate(db, list), [2]);
    closeDatabase(db);
  });

  test("versions must be 1..n without gaps", () => {
    const db = openDatabase(":memory:");
    assert.throws(() => migrate(db, [{ version: 2, name: "x", up: () => {} }]), isInvalidArgument);
    closeDatabase(db);
  });
});
