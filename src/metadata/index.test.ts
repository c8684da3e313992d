import assert from "node:assert/strict";
import * as path from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { isAlreadyExists } from "../errors.js";
import { MetadataStore } from "./index.js";
import { seedTask, SPEC, tempDir } from "./testing.js";

const AT = "2024-05-01T10:00:00.5Z";

describe("MetadataStore", () => {
  let meta: MetadataStore;
  beforeEach(() => (meta = MetadataStore.open(":memory:")));
  afterEach(() => meta.close());

  test("transaction commits every write together and returns fn's result", () => {
    const n = meta.transaction(() => {
      meta.shims.create({ id: "s", runtime: "runc", binary: "/b", bundle: "/s", namespace: "n" });
      meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
      meta.tasks.create({ id: "c1", shimId: "s", bundle: "/b" });
      return 3;
    });
    assert.equal(n, 3);
    assert.ok(meta.tasks.find("c1"));
  });

  test("a throw inside transaction after two writes leaves neither visible", () => {
    assert.throws(
      () =>
        meta.transaction(() => {
          meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
          meta.teardowns.enqueue({ taskId: "c1", shimId: "s", bundle: "/b" });
          throw new Error("crash between writes");
        }),
      /crash between writes/,
    );
    assert.equal(meta.containers.find("c1"), undefined);
    assert.equal(meta.teardowns.find("c1"), undefined);
  });

  test("a store error inside transaction rolls back the earlier writes", () => {
    meta.containers.create({ id: "taken", runtime: "runc", spec: SPEC });
    assert.throws(
      () =>
        meta.transaction(() => {
          meta.containers.create({ id: "new", runtime: "runc", spec: SPEC });
          meta.containers.create({ id: "taken", runtime: "runc", spec: SPEC });
        }),
      isAlreadyExists,
    );
    assert.equal(meta.containers.find("new"), undefined);
  });

  test("nested transactions: an inner failure caught by the outer rolls back only the inner part", () => {
    meta.transaction(() => {
      meta.containers.create({ id: "outer", runtime: "runc", spec: SPEC });
      assert.throws(() =>
        meta.transaction(() => {
          meta.containers.create({ id: "inner", runtime: "runc", spec: SPEC });
          throw new Error("inner");
        }),
      );
    });
    assert.ok(meta.containers.find("outer"));
    assert.equal(meta.containers.find("inner"), undefined);
  });

  test("an async transaction function is refused and rolled back", () => {
    assert.throws(() =>
      meta.transaction(async () => {
        meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
      }),
    );
    assert.equal(meta.containers.find("c1"), undefined);
  });

  test("finishTask deletes execs, task and teardown in one go; idempotent", () => {
    seedTask(meta, "c1", "pod");
    seedTask(meta, "c2", "pod");
    meta.execs.create({ taskId: "c1", execId: "e1" });
    meta.execs.create({ taskId: "c1", execId: "e2" });
    meta.teardowns.enqueue({ taskId: "c1", shimId: "pod", bundle: "/run/b/c1" });
    assert.deepEqual(meta.finishTask("c1"), { execs: 2, task: true, teardown: true });
    assert.equal(meta.tasks.find("c1"), undefined);
    assert.deepEqual(meta.execs.list("c1"), []);
    assert.equal(meta.teardowns.find("c1"), undefined);
    assert.ok(meta.containers.find("c1"), "the container row stays");
    assert.ok(meta.tasks.find("c2"), "other tasks untouched");
    assert.deepEqual(meta.finishTask("c1"), { execs: 0, task: false, teardown: false });
  });

  test("finishTask works when only the teardown row remains", () => {
    meta.teardowns.enqueue({ taskId: "gone", shimId: "pod", bundle: "/b" });
    assert.deepEqual(meta.finishTask("gone"), { execs: 0, task: false, teardown: true });
  });

  test("shimIsUnused is false while any task row references the shim", () => {
    seedTask(meta, "c1", "pod");
    seedTask(meta, "c2", "pod");
    meta.shims.create({ id: "idle", runtime: "runc", binary: "/b", bundle: "/s", namespace: "n" });
    assert.equal(meta.shimIsUnused("pod"), false);
    assert.equal(meta.shimIsUnused("idle"), true);
    meta.tasks.recordExit("c1", { exitStatus: 0, exitedAt: AT });
    meta.finishTask("c1");
    assert.equal(meta.shimIsUnused("pod"), false, "c2 still uses it");
    meta.finishTask("c2");
    assert.equal(meta.shimIsUnused("pod"), true);
    meta.shims.delete("pod");
  });

  test("close is idempotent and the store is unusable after it", () => {
    const m = MetadataStore.open(":memory:");
    m.close();
    m.close();
    assert.throws(() => m.containers.list());
  });
});

describe("two MetadataStore instances on one file (WAL)", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let a: MetadataStore;
  let b: MetadataStore;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    const file = path.join(dir, "state", "meta.db");
    a = MetadataStore.open(file);
    b = MetadataStore.open(file);
  });
  after(async () => {
    a.close();
    b.close();
    await cleanup();
  });

  test("each sees the other's committed writes", () => {
    seedTask(a, "c1", "pod");
    assert.equal(b.tasks.get("c1").shimId, "pod");
    b.tasks.update("c1", { status: "running", pid: 99 });
    assert.equal(a.tasks.get("c1").pid, 99);
  });

  test("uncommitted writes are invisible to the other until commit", () => {
    a.transaction(() => {
      a.containers.create({ id: "pending", runtime: "runc", spec: SPEC });
      assert.equal(b.containers.find("pending"), undefined);
    });
    assert.ok(b.containers.find("pending"));
  });

  test("first exit wins across connections", () => {
    seedTask(a, "c2", "pod");
    assert.equal(a.tasks.recordExit("c2", { exitStatus: 1, exitedAt: AT }).recorded, true);
    const late = b.tasks.recordExit("c2", { exitStatus: 255, exitedAt: "2024-05-01T10:00:01Z", reason: "shim died" });
    assert.deepEqual(late, { recorded: false, exit: { exitStatus: 1, exitedAt: AT, reason: null } });
  });

  test("opening a third instance on a migrated file is a no-op", () => {
    const c = MetadataStore.open(a.path);
    try {
      assert.ok(c.tasks.find("c1"));
    } finally {
      c.close();
    }
  });
});
