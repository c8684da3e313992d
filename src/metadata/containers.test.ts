import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore } from "./index.js";
import { fakeClock, SPEC } from "./testing.js";

const hasId = (code: (e: unknown) => boolean, id: string) => (err: Error) => code(err) && err.message.includes(`"${id}"`);

describe("ContainerStore", () => {
  let meta: MetadataStore;
  beforeEach(() => (meta = MetadataStore.open(":memory:", { now: fakeClock() })));
  afterEach(() => meta.close());

  test("create fills defaults and get returns an equal object", () => {
    const c = meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
    assert.deepEqual(c, {
      id: "c1",
      runtime: "runc",
      spec: SPEC,
      rootfs: [],
      labels: {},
      sandboxId: null,
      createdAt: 1000,
      updatedAt: 1000,
    });
    assert.deepEqual(meta.containers.get("c1"), c);
  });

  test("JSON columns round-trip mounts and labels", () => {
    const rootfs = [{ type: "overlay", source: "overlay", target: "", options: ["lowerdir=/a:/b", "upperdir=/u"] }];
    meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC, rootfs, labels: { app: "web", "k8s/x": "ü" } });
    const got = meta.containers.get("c1");
    assert.deepEqual(got.rootfs, rootfs);
    assert.deepEqual(got.labels, { app: "web", "k8s/x": "ü" });
  });

  test("create of a taken id is AlreadyExists naming the id", () => {
    meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
    assert.throws(() => meta.containers.create({ id: "c1", runtime: "kata", spec: SPEC }), hasId(isAlreadyExists, "c1"));
    assert.equal(meta.containers.get("c1").runtime, "runc", "the first record stands");
  });

  test("invalid input is InvalidArgument", () => {
    assert.throws(() => meta.containers.create({ id: "", runtime: "runc", spec: SPEC }), isInvalidArgument);
    assert.throws(() => meta.containers.create({ id: "c1", runtime: "runc", spec: "{not json" }), isInvalidArgument);
    assert.equal(meta.containers.find("c1"), undefined);
  });

  test("get / delete of a missing id is NotFound naming the id; find is undefined", () => {
    assert.throws(() => meta.containers.get("nope"), hasId(isNotFound, "nope"));
    assert.throws(() => meta.containers.delete("nope"), hasId(isNotFound, "nope"));
    assert.throws(() => meta.containers.update("nope", { runtime: "x" }), hasId(isNotFound, "nope"));
    assert.equal(meta.containers.find("nope"), undefined);
  });

  test("list filters by sandbox id and labels", () => {
    meta.containers.create({ id: "a", runtime: "runc", spec: SPEC, sandboxId: "p1", labels: { role: "app", tier: "1" } });
    meta.containers.create({ id: "b", runtime: "runc", spec: SPEC, sandboxId: "p1", labels: { role: "sidecar" } });
    meta.containers.create({ id: "c", runtime: "runc", spec: SPEC, sandboxId: "p2", labels: { role: "app" } });
    meta.containers.create({ id: "d", runtime: "runc", spec: SPEC });
    const ids = (f?: Parameters<typeof meta.containers.list>[0]) => meta.containers.list(f).map((c) => c.id);
    assert.deepEqual(ids(), ["a", "b", "c", "d"]);
    assert.deepEqual(ids({ sandboxId: "p1" }), ["a", "b"]);
    assert.deepEqual(ids({ labels: { role: "app" } }), ["a", "c"]);
    assert.deepEqual(ids({ sandboxId: "p1", labels: { role: "app", tier: "1" } }), ["a"]);
    assert.deepEqual(ids({ labels: { role: "app", tier: "2" } }), []);
  });

  test("update merges the patch, bumps updatedAt and persists", () => {
    const c = meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC, sandboxId: "p1", labels: { a: "1" } });
    const u = meta.containers.update("c1", { labels: { b: "2" }, sandboxId: null, runtime: undefined });
    assert.deepEqual(u.labels, { b: "2" });
    assert.equal(u.sandboxId, null);
    assert.equal(u.runtime, "runc", "undefined leaves a field unchanged");
    assert.equal(u.createdAt, c.createdAt);
    assert.ok(u.updatedAt > c.updatedAt);
    assert.deepEqual(meta.containers.get("c1"), u);
    assert.throws(() => meta.containers.update("c1", { spec: "nope" }), isInvalidArgument);
    assert.equal(meta.containers.get("c1").spec, SPEC);
  });

  test("delete removes the row", () => {
    meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
    meta.containers.delete("c1");
    assert.equal(meta.containers.find("c1"), undefined);
  });

  test("deleting a container that has a task is FailedPrecondition (FK restrict)", () => {
    meta.shims.create({ id: "s1", runtime: "runc", binary: "/bin/shim", bundle: "/b", namespace: "skiff" });
    meta.containers.create({ id: "c1", runtime: "runc", spec: SPEC });
    meta.tasks.create({ id: "c1", shimId: "s1", bundle: "/b/c1" });
    assert.throws(
      () => meta.containers.delete("c1"),
      (err: Error) => isFailedPrecondition(err) && err.message.includes('"c1"') && /task/.test(err.message),
    );
    assert.ok(meta.containers.find("c1"), "container still there");
    meta.tasks.delete("c1");
    meta.containers.delete("c1");
    assert.equal(meta.containers.find("c1"), undefined);
  });
});
