import assert from "node:assert/strict";
import * as path from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore } from "./index.js";
import { fakeClock, tempDir } from "./testing.js";

describe("TeardownStore", () => {
  let meta: MetadataStore;
  beforeEach(() => (meta = MetadataStore.open(":memory:", { now: fakeClock() })));
  afterEach(() => meta.close());

  const work = (taskId: string) => ({ taskId, shimId: "pod-1", bundle: `/run/b/${taskId}` });

  test("enqueue fills defaults and needs no task row", () => {
    const w = meta.teardowns.enqueue(work("t1"));
    assert.deepEqual(w, {
      ...work("t1"),
      phase: "delete_task",
      attempts: 0,
      nextAttemptAt: w.createdAt,
      lastError: null,
      createdAt: w.createdAt,
      updatedAt: w.createdAt,
    });
    assert.deepEqual(meta.teardowns.get("t1"), w);
    assert.equal(meta.tasks.find("t1"), undefined);
  });

  test("enqueue is idempotent: an existing row is kept and returned as-is", () => {
    const first = meta.teardowns.enqueue(work("t1"));
    meta.teardowns.advance("t1", "shutdown_shim");
    const failed = meta.teardowns.recordFailure("t1", "shim busy", 99_999);
    const again = meta.teardowns.enqueue({ ...work("t1"), shimId: "other", phase: "delete_task" });
    assert.deepEqual(again, failed);
    assert.equal(again.phase, "shutdown_shim");
    assert.equal(again.shimId, "pod-1");
    assert.equal(again.createdAt, first.createdAt);
    assert.equal(meta.teardowns.list().length, 1);
  });

  test("recordFailure counts attempts and schedules the next one", () => {
    meta.teardowns.enqueue(work("t1"));
    meta.teardowns.recordFailure("t1", "deadline exceeded", 5_000);
    const w = meta.teardowns.recordFailure("t1", "connection closed", 7_000);
    assert.equal(w.attempts, 2);
    assert.equal(w.lastError, "connection closed");
    assert.equal(w.nextAttemptAt, 7_000);
    assert.deepEqual(meta.teardowns.get("t1"), w);
    assert.throws(() => meta.teardowns.recordFailure("nope", "x", 1), (e: Error) => isNotFound(e) && e.message.includes('"nope"'));
  });

  test("advance moves forward, resets attempts and error, and never goes back", () => {
    meta.teardowns.enqueue(work("t1"));
    meta.teardowns.recordFailure("t1", "boom", 1_000_000);
    const a = meta.teardowns.advance("t1", "shutdown_shim");
    assert.deepEqual([a.phase, a.attempts, a.lastError], ["shutdown_shim", 0, null]);
    assert.ok(a.nextAttemptAt < 1_000_000, "due at once");
    meta.teardowns.recordFailure("t1", "again", 2_000_000);
    const same = meta.teardowns.advance("t1", "shutdown_shim");
    assert.equal(same.attempts, 1, "advancing to the current phase keeps the backoff");
    assert.throws(() => meta.teardowns.advance("t1", "delete_task"), isFailedPrecondition);
    assert.equal(meta.teardowns.advance("t1", "cleanup_bundle").phase, "cleanup_bundle");
    assert.throws(() => meta.teardowns.advance("t1", "bogus" as never), isInvalidArgument);
    assert.throws(() => meta.teardowns.advance("nope", "cleanup_bundle"), isNotFound);
  });

  test("complete deletes the row; a second complete returns false", () => {
    meta.teardowns.enqueue(work("t1"));
    assert.equal(meta.teardowns.complete("t1"), true);
    assert.equal(meta.teardowns.find("t1"), undefined);
    assert.throws(() => meta.teardowns.get("t1"), isNotFound);
    assert.equal(meta.teardowns.complete("t1"), false);
  });

  test("list is ordered by createdAt, then insertion", () => {
    meta.teardowns.enqueue({ ...work("late"), createdAt: 50 });
    meta.teardowns.enqueue({ ...work("b"), createdAt: 10 });
    meta.teardowns.enqueue({ ...work("a"), createdAt: 10 });
    assert.deepEqual(
      meta.teardowns.list().map((w) => w.taskId),
      ["b", "a", "late"],
    );
  });
});

describe("TeardownStore on a file", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("pending work survives a restart with its phase and attempts", () => {
    const file = path.join(dir, "td.db");
    const a = MetadataStore.open(file);
    a.teardowns.enqueue({ taskId: "t1", shimId: "s", bundle: "/b" });
    a.teardowns.advance("t1", "shutdown_shim");
    a.teardowns.recordFailure("t1", "shim not answering", 12_345);
    a.close();
    const b = MetadataStore.open(file);
    try {
      const w = b.teardowns.get("t1");
      assert.deepEqual([w.phase, w.attempts, w.lastError, w.nextAttemptAt], ["shutdown_shim", 1, "shim not answering", 12_345]);
    } finally {
      b.close();
    }
  });
});
