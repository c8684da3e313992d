import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore } from "./index.js";
import { fakeClock, seedTask } from "./testing.js";

const AT = "2024-05-01T10:00:00.000000001Z";

describe("ExecStore", () => {
  let meta: MetadataStore;
  beforeEach(() => {
    meta = MetadataStore.open(":memory:", { now: fakeClock() });
    seedTask(meta, "c1");
  });
  afterEach(() => meta.close());

  test("create / get / list", () => {
    const e = meta.execs.create({ taskId: "c1", execId: "e1", stdout: "/f/out", terminal: true });
    assert.deepEqual(meta.execs.get("c1", "e1"), e);
    assert.equal(e.status, "created");
    assert.equal(e.terminal, true);
    meta.execs.create({ taskId: "c1", execId: "e2" });
    assert.deepEqual(
      meta.execs.list("c1").map((x) => x.execId),
      ["e1", "e2"],
    );
    assert.deepEqual(meta.execs.list("other"), []);
  });

  test("AlreadyExists, NotFound and missing task name the ids", () => {
    meta.execs.create({ taskId: "c1", execId: "e1" });
    assert.throws(
      () => meta.execs.create({ taskId: "c1", execId: "e1" }),
      (e: Error) => isAlreadyExists(e) && e.message.includes('"e1"') && e.message.includes('"c1"'),
    );
    assert.throws(() => meta.execs.get("c1", "zz"), (e: Error) => isNotFound(e) && e.message.includes('"zz"'));
    assert.throws(() => meta.execs.delete("c1", "zz"), isNotFound);
    assert.throws(() => meta.execs.recordExit("c1", "zz", { exitStatus: 0, exitedAt: AT }), isNotFound);
    assert.throws(
      () => meta.execs.create({ taskId: "nope", execId: "e1" }),
      (e: Error) => isFailedPrecondition(e) && e.message.includes('task "nope"'),
    );
    assert.throws(() => meta.execs.create({ taskId: "c1", execId: "" }), isInvalidArgument);
  });

  test("recordExit: first exit wins", () => {
    meta.execs.create({ taskId: "c1", execId: "e1" });
    meta.execs.update("c1", "e1", { pid: 77, status: "running" });
    assert.equal(meta.execs.recordExit("c1", "e1", { exitStatus: 2, exitedAt: AT }).recorded, true);
    const second = meta.execs.recordExit("c1", "e1", { exitStatus: 9, exitedAt: "2025-01-01T00:00:00Z" });
    assert.deepEqual(second, { recorded: false, exit: { exitStatus: 2, exitedAt: AT, reason: null } });
    const e = meta.execs.get("c1", "e1");
    assert.deepEqual([e.status, e.exitStatus, e.exitedAt, e.pid], ["stopped", 2, AT, 77]);
    assert.throws(() => meta.execs.update("c1", "e1", { status: "running" }), isFailedPrecondition);
    assert.equal(meta.tasks.get("c1").exitStatus, null, "an exec exit is not the task's exit");
  });

  test("delete one, deleteAll", () => {
    meta.execs.create({ taskId: "c1", execId: "e1" });
    meta.execs.create({ taskId: "c1", execId: "e2" });
    meta.execs.create({ taskId: "c1", execId: "e3" });
    meta.execs.delete("c1", "e1");
    assert.equal(meta.execs.find("c1", "e1"), undefined);
    assert.equal(meta.execs.deleteAll("c1"), 2);
    assert.deepEqual(meta.execs.list("c1"), []);
  });
});
