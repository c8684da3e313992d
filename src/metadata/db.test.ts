import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { closeDatabase, durably, isConstraintError, openDatabase } from "./db.js";
import { tempDir } from "./testing.js";

describe("openDatabase", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("creates the parent directory and sets the durability pragmas", () => {
    const file = path.join(dir, "nested", "deeper", "meta.db");
    const db = openDatabase(file);
    try {
      assert.ok(existsSync(file));
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("synchronous", { simple: true }), 1); // NORMAL; durably() commits with FULL
      assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
      assert.equal(db.pragma("busy_timeout", { simple: true }), 5000);
    } finally {
      closeDatabase(db);
    }
  });

  test("durably commits with synchronous=FULL and restores NORMAL, also when fn throws; nested it changes nothing", () => {
    const db = openDatabase(path.join(dir, "durable.db"));
    try {
      db.exec("CREATE TABLE t (x INTEGER)");
      const sync = () => db.pragma("synchronous", { simple: true });
      assert.equal(durably(db, () => (db.prepare("INSERT INTO t VALUES (1)").run(), sync())), 2);
      assert.equal(sync(), 1);
      assert.throws(() => durably(db, () => { throw new Error("boom"); }), /boom/);
      assert.equal(sync(), 1);
      const inner = db.transaction(() => durably(db, sync)).immediate();
      assert.equal(inner, 1, "inside a transaction the outer commit decides");
      assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 1);
    } finally {
      closeDatabase(db);
    }
  });

  test(":memory: works and enforces foreign keys", () => {
    const db = openDatabase(":memory:");
    db.exec("CREATE TABLE p (id TEXT PRIMARY KEY); CREATE TABLE c (p TEXT REFERENCES p (id))");
    assert.throws(
      () => db.prepare("INSERT INTO c VALUES ('missing')").run(),
      (err) => isConstraintError(err, "FOREIGNKEY"),
    );
    db.prepare("INSERT INTO p VALUES ('a')").run();
    assert.throws(
      () => db.prepare("INSERT INTO p VALUES ('a')").run(),
      (err) => isConstraintError(err, "PRIMARYKEY") && !isConstraintError(err, "FOREIGNKEY"),
    );
    // ON DELETE RESTRICT is reported as SQLITE_CONSTRAINT_TRIGGER; it still counts as FOREIGNKEY.
    db.exec("CREATE TABLE r (p TEXT REFERENCES p (id) ON DELETE RESTRICT); INSERT INTO r VALUES ('a')");
    assert.throws(
      () => db.prepare("DELETE FROM p WHERE id = 'a'").run(),
      (err) => isConstraintError(err, "FOREIGNKEY"),
    );
    closeDatabase(db);
  });

  test("closeDatabase is idempotent", () => {
    const db = openDatabase(":memory:");
    closeDatabase(db);
    closeDatabase(db);
    assert.equal(db.open, false);
  });

  test("isConstraintError is false for non-SQLite errors", () => {
    assert.equal(isConstraintError(new Error("SQLITE_CONSTRAINT_PRIMARYKEY"), "PRIMARYKEY"), false);
    assert.equal(isConstraintError(undefined, "CHECK"), false);
  });
});
