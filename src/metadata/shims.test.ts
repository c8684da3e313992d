import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore, type NewShim } from "./index.js";
import { fakeClock, seedTask } from "./testing.js";

const shim = (id: string, extra: Partial<NewShim> = {}): NewShim => ({
  id,
  runtime: "runc",
  binary: "/usr/bin/containerd-shim-runc-v2",
  bundle: `/run/skiff/shims/${id}`,
  namespace: "skiff",
  ...extra,
});

describe("ShimStore", () => {
  let meta: MetadataStore;
  beforeEach(() => (meta = MetadataStore.open(":memory:", { now: fakeClock() })));
  afterEach(() => meta.close());

  test("create fills defaults; get returns an equal object", () => {
    const s = meta.shims.create(shim("pod-1"));
    assert.deepEqual(s, { ...shim("pod-1"), address: "", pid: null, state: "starting", createdAt: 1000, updatedAt: 1000 });
    assert.deepEqual(meta.shims.get("pod-1"), s);
  });

  test("caller-given fields and timestamps are kept", () => {
    const s = meta.shims.create(shim("p", { address: "/run/s.sock", pid: 42, state: "running", createdAt: 5, updatedAt: 6 }));
    assert.deepEqual(meta.shims.get("p"), s);
    assert.equal(s.pid, 42);
    assert.equal(s.createdAt, 5);
  });

  test("AlreadyExists / NotFound name the id", () => {
    meta.shims.create(shim("pod-1"));
    assert.throws(() => meta.shims.create(shim("pod-1")), (e: Error) => isAlreadyExists(e) && e.message.includes('"pod-1"'));
    assert.throws(() => meta.shims.get("x"), (e: Error) => isNotFound(e) && e.message.includes('"x"'));
    assert.throws(() => meta.shims.update("x", { pid: 1 }), (e: Error) => isNotFound(e) && e.message.includes('"x"'));
    assert.throws(() => meta.shims.delete("x"), (e: Error) => isNotFound(e) && e.message.includes('"x"'));
    assert.equal(meta.shims.find("x"), undefined);
  });

  test("update: pid and state as the shim comes up, null clears pid", () => {
    meta.shims.create(shim("pod-1"));
    const u = meta.shims.update("pod-1", { address: "/run/containerd/s/abc", pid: 1234, state: "running" });
    assert.equal(u.state, "running");
    assert.equal(meta.shims.get("pod-1").pid, 1234);
    assert.equal(meta.shims.get("pod-1").address, "/run/containerd/s/abc");
    meta.shims.update("pod-1", { state: "starting", address: "", pid: null });
    assert.equal(meta.shims.get("pod-1").pid, null);
  });

  test("invalid state or pid is InvalidArgument and changes nothing", () => {
    meta.shims.create(shim("pod-1"));
    assert.throws(() => meta.shims.update("pod-1", { state: "zombie" as never }), isInvalidArgument);
    assert.throws(() => meta.shims.update("pod-1", { pid: -1 }), isInvalidArgument);
    assert.equal(meta.shims.get("pod-1").state, "starting");
  });

  test("list returns every shim, oldest first", () => {
    meta.shims.create(shim("b"));
    meta.shims.create(shim("a"));
    assert.deepEqual(
      meta.shims.list().map((s) => s.id),
      ["b", "a"],
    );
  });

  test("a shim used by a task cannot be deleted", () => {
    seedTask(meta, "c1", "pod-1");
    assert.throws(() => meta.shims.delete("pod-1"), (e: Error) => isFailedPrecondition(e) && e.message.includes('"pod-1"'));
    meta.tasks.delete("c1");
    meta.shims.delete("pod-1");
    assert.equal(meta.shims.find("pod-1"), undefined);
  });
});
