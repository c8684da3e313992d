import assert from "node:assert/strict";
import * as path from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore } from "./index.js";
import { fakeClock, seedTask, SPEC, tempDir } from "./testing.js";

const EXIT_AT = "2024-05-01T10:00:00.123456789Z";

describe("TaskStore", () => {
  let meta: MetadataStore;
  beforeEach(() => (meta = MetadataStore.open(":memory:", { now: fakeClock() })));
  afterEach(() => meta.close());

  test("create fills defaults; get returns an equal object", () => {
    seedTask(meta, "c1");
    const t = meta.tasks.get("c1");
    assert.deepEqual(
      { ...t, createdAt: 0, updatedAt: 0 },
      {
        id: "c1",
        shimId: "pod-1",
        bundle: "/run/b/c1",
        pid: null,
        status: "created",
        stdin: "",
        stdout: "",
        stderr: "",
        terminal: false,
        exitStatus: null,
        exitedAt: null,
        exitReason: null,
        deletedAt: null,
        createdAt: 0,
        updatedAt: 0,
      },
    );
    assert.equal(t.createdAt, t.updatedAt);
  });

  test("stdio and terminal round-trip", () => {
    meta.shims.create({ id: "s", runtime: "runc", binary: "/b", bundle: "/s", namespace: "n" });
    meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
    meta.tasks.create({ id: "c1", shimId: "s", bundle: "/b", stdin: "/f/in", stdout: "/f/out", stderr: "", terminal: true });
    const t = meta.tasks.get("c1");
    assert.equal(t.terminal, true);
    assert.deepEqual([t.stdin, t.stdout, t.stderr], ["/f/in", "/f/out", ""]);
  });

  test("create: AlreadyExists for a second task; FailedPrecondition for a missing container or shim", () => {
    seedTask(meta, "c1");
    assert.throws(
      () => meta.tasks.create({ id: "c1", shimId: "pod-1", bundle: "/x" }),
      (e: Error) => isAlreadyExists(e) && e.message.includes('"c1"'),
    );
    assert.throws(
      () => meta.tasks.create({ id: "ghost", shimId: "pod-1", bundle: "/x" }),
      (e: Error) => isFailedPrecondition(e) && e.message.includes('container "ghost"'),
    );
    meta.containers.create({ id: "c2", runtime: "runc", spec: SPEC });
    assert.throws(
      () => meta.tasks.create({ id: "c2", shimId: "no-shim", bundle: "/x" }),
      (e: Error) => isFailedPrecondition(e) && e.message.includes('shim "no-shim"'),
    );
    assert.equal(meta.tasks.find("c2"), undefined);
  });

  test("missing ids are NotFound naming the id", () => {
    const named = (e: Error) => isNotFound(e) && e.message === 'task "t9" not found';
    assert.throws(() => meta.tasks.get("t9"), named);
    assert.throws(() => meta.tasks.update("t9", { pid: 1 }), named);
    assert.throws(() => meta.tasks.delete("t9"), named);
    assert.throws(() => meta.tasks.recordExit("t9", { exitStatus: 0, exitedAt: EXIT_AT }), named);
    assert.equal(meta.tasks.find("t9"), undefined);
  });

  test("update sets pid and status; bad values are InvalidArgument", () => {
    seedTask(meta, "c1");
    const u = meta.tasks.update("c1", { pid: 4321, status: "running" });
    assert.equal(u.pid, 4321);
    assert.deepEqual(meta.tasks.get("c1"), u);
    assert.throws(() => meta.tasks.update("c1", { status: "deleted" as never }), isInvalidArgument);
    assert.throws(() => meta.tasks.update("c1", { pid: 0 }), isInvalidArgument);
    assert.throws(() => meta.tasks.update("c1", { shimId: "nope" }), isFailedPrecondition);
    assert.equal(meta.tasks.get("c1").status, "running");
  });

  test("list filters by shim and status", () => {
    seedTask(meta, "a", "p1");
    seedTask(meta, "b", "p1");
    seedTask(meta, "c", "p2");
    meta.tasks.update("b", { status: "running" });
    const ids = (f?: Parameters<typeof meta.tasks.list>[0]) => meta.tasks.list(f).map((t) => t.id);
    assert.deepEqual(ids(), ["a", "b", "c"]);
    assert.deepEqual(ids({ shimId: "p1" }), ["a", "b"]);
    assert.deepEqual(ids({ status: "running" }), ["b"]);
    assert.deepEqual(ids({ shimId: "p2", status: "running" }), []);
  });

  test("recordExit: first exit wins, later ones return it with recorded=false", () => {
    seedTask(meta, "c1");
    meta.tasks.update("c1", { status: "running", pid: 10 });
    const first = meta.tasks.recordExit("c1", { exitStatus: 3, exitedAt: EXIT_AT });
    assert.deepEqual(first, { recorded: true, exit: { exitStatus: 3, exitedAt: EXIT_AT, reason: null } });
    const second = meta.tasks.recordExit("c1", {
      exitStatus: 255,
      exitedAt: "2024-05-01T10:00:09Z",
      reason: "shim died",
    });
    assert.deepEqual(second, { recorded: false, exit: { exitStatus: 3, exitedAt: EXIT_AT, reason: null } });
    const t = meta.tasks.get("c1");
    assert.equal(t.status, "stopped");
    assert.equal(t.exitStatus, 3);
    assert.equal(t.exitedAt, EXIT_AT, "nanoseconds kept verbatim");
    assert.equal(t.pid, 10);
  });

  test("recordExit keeps a reason; exited tasks stay stopped", () => {
    seedTask(meta, "c1");
    const r = meta.tasks.recordExit("c1", { exitStatus: 255, exitedAt: EXIT_AT, reason: "shim died" });
    assert.equal(r.exit.reason, "shim died");
    assert.equal(meta.tasks.get("c1").exitReason, "shim died");
    assert.throws(() => meta.tasks.update("c1", { status: "running" }), (e: Error) => isFailedPrecondition(e) && e.message.includes('"c1"'));
    assert.equal(meta.tasks.get("c1").status, "stopped");
    assert.equal(meta.tasks.update("c1", { pid: 11 }).status, "stopped", "other fields still change");
  });

  test("recordExit rejects malformed exits without recording", () => {
    seedTask(meta, "c1");
    assert.throws(() => meta.tasks.recordExit("c1", { exitStatus: -1, exitedAt: EXIT_AT }), isInvalidArgument);
    assert.throws(() => meta.tasks.recordExit("c1", { exitStatus: 1.5, exitedAt: EXIT_AT }), isInvalidArgument);
    assert.throws(() => meta.tasks.recordExit("c1", { exitStatus: 0, exitedAt: "yesterday" }), isInvalidArgument);
    assert.throws(() => meta.tasks.recordExit("c1", { exitStatus: 0, exitedAt: "2024-05-01T10:00:00+02:00" }), isInvalidArgument);
    assert.equal(meta.tasks.get("c1").exitStatus, null);
    assert.equal(meta.tasks.recordExit("c1", { exitStatus: 0, exitedAt: "2024-05-01T10:00:00Z" }).recorded, true);
  });

  test("create with an exit requires status stopped", () => {
    meta.shims.create({ id: "s", runtime: "runc", binary: "/b", bundle: "/s", namespace: "n" });
    meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
    assert.throws(
      () => meta.tasks.create({ id: "c1", shimId: "s", bundle: "/b", status: "running", exitStatus: 1, exitedAt: EXIT_AT }),
      isInvalidArgument,
    );
    assert.throws(() => meta.tasks.create({ id: "c1", shimId: "s", bundle: "/b", exitStatus: 1 }), isInvalidArgument);
  });

  test("delete removes the task and cascades to its execs; the container stays", () => {
    seedTask(meta, "c1");
    meta.execs.create({ taskId: "c1", execId: "e1" });
    meta.tasks.delete("c1");
    assert.equal(meta.tasks.find("c1"), undefined);
    assert.deepEqual(meta.execs.list("c1"), []);
    assert.ok(meta.containers.find("c1"));
  });
});

describe("TaskStore on a file", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  test("a recorded exit survives close and re-open, and still wins", () => {
    const file = path.join(dir, "exits.db");
    const a = MetadataStore.open(file);
    seedTask(a, "c1");
    a.tasks.recordExit("c1", { exitStatus: 137, exitedAt: EXIT_AT, reason: "OOMKilled" });
    a.close();

    const b = MetadataStore.open(file);
    try {
      const t = b.tasks.get("c1");
      assert.deepEqual([t.status, t.exitStatus, t.exitedAt, t.exitReason], ["stopped", 137, EXIT_AT, "OOMKilled"]);
      const again = b.tasks.recordExit("c1", { exitStatus: 255, exitedAt: "2030-01-01T00:00:00Z", reason: "shim died" });
      assert.deepEqual(again, { recorded: false, exit: { exitStatus: 137, exitedAt: EXIT_AT, reason: "OOMKilled" } });
    } finally {
      b.close();
    }
  });
});

test("a torn-down task is a tombstone: it keeps its exit, outlives its shim and frees it", () => {
  const meta = MetadataStore.open(":memory:");
  try {
    meta.containers.create({ id: "c1", runtime: "runc", spec: "{}" });
    meta.shims.create({ id: "s1", runtime: "runc", binary: "shim", bundle: "/b", namespace: "ns" });
    meta.tasks.create({ id: "c1", shimId: "s1", bundle: "/b/c1" });
    assert.throws(() => meta.shims.delete("s1"), isFailedPrecondition, "a live task holds its shim");
    assert.throws(() => meta.tasks.update("c1", { deletedAt: 1 }), isInvalidArgument, "no tombstone without an exit");
    meta.tasks.recordExit("c1", { exitStatus: 3, exitedAt: "2026-01-01T00:00:00.123456789Z" });
    meta.tasks.update("c1", { deletedAt: 5 });
    assert.equal(meta.shimIsUnused("s1"), true);
    meta.shims.delete("s1");
    const t = meta.tasks.get("c1");
    assert.equal(t.deletedAt, 5);
    assert.equal(t.exitStatus, 3);
    assert.throws(
      () => meta.tasks.create({ id: "c2", shimId: "gone", bundle: "/b/c2" }),
      (e: Error) => isFailedPrecondition(e) || isNotFound(e),
    );
  } finally {
    meta.close();
  }
});
