import { test } from "node:test";
import assert from "node:assert/strict";
import { isAlreadyExists, isNotFound } from "../errors.js";
import { MetadataStore } from "./index.js";

interface Doc {
  id: string;
  nameKey: string;
  podId: string;
  n: number;
}

test("CriDocStore: create/find/update/delete, name reservation naming the holder", () => {
  const meta = MetadataStore.open(":memory:");
  const s = meta.criDocs<Doc>("cri_containers", "container", (d) => d.podId);
  s.create({ id: "c1", nameKey: "web_1", podId: "p1", n: 1 });
  s.create({ id: "c2", nameKey: "db_1", podId: "p2", n: 2 });
  assert.throws(() => s.create({ id: "c3", nameKey: "web_1", podId: "p1", n: 3 }), (e: Error) => isAlreadyExists(e) && /"c1"/.test(e.message));
  assert.throws(() => s.create({ id: "c1", nameKey: "other", podId: "p1", n: 3 }), isAlreadyExists);
  assert.equal(s.get("c1").n, 1);
  assert.deepEqual(s.listByParent("p2").map((d) => d.id), ["c2"]);
  assert.equal(s.update("c1", { n: 9 }).n, 9);
  assert.equal(s.find("c1")?.n, 9);
  assert.throws(() => s.get("nope"), (e: Error) => isNotFound(e) && /container "nope"/.test(e.message));
  assert.throws(() => s.update("nope", { n: 1 }), isNotFound);
  assert.equal(s.delete("c1"), true);
  assert.equal(s.delete("c1"), false);
  s.create({ id: "c4", nameKey: "web_1", podId: "p1", n: 4 }); // the name is free again
  assert.deepEqual(s.list().map((d) => d.id), ["c2", "c4"]);
  meta.close();
});

test("CriDocStore: pods table without parents; documents round-trip; update keeps id and name", () => {
  const meta = MetadataStore.open(":memory:");
  const pods = meta.criDocs<Doc>("cri_sandboxes", "pod sandbox");
  assert.deepEqual(pods.list(), []);
  assert.equal(pods.find("p1"), undefined);
  const doc = { id: "p1", nameKey: "web_ns_u_0", podId: "ignored", n: 1 };
  assert.equal(pods.create(doc), doc);
  assert.deepEqual(pods.get("p1"), doc);
  assert.deepEqual(pods.listByParent("").map((d) => d.id), ["p1"], "no parentOf: parent is empty");
  assert.deepEqual(pods.listByParent("ignored"), []);
  assert.deepEqual(pods.update("p1", { n: 2, podId: "x" }), { id: "p1", nameKey: "web_ns_u_0", podId: "x", n: 2 });
  assert.deepEqual(pods.get("p1"), { id: "p1", nameKey: "web_ns_u_0", podId: "x", n: 2 });
  assert.throws(() => pods.create({ id: "p2", nameKey: "web_ns_u_0", podId: "", n: 0 }), (e: Error) => isAlreadyExists(e) && /pod sandbox name "web_ns_u_0" is reserved for id "p1"/.test(e.message));
  assert.throws(() => pods.get("p2"), (e: Error) => isNotFound(e) && /pod sandbox "p2" not found/.test(e.message));
  const ctrs = meta.criDocs<Doc>("cri_containers", "container", (d) => d.podId);
  ctrs.create({ id: "p1", nameKey: "web_ns_u_0", podId: "p1", n: 0 }); // tables are separate namespaces
  assert.equal(ctrs.get("p1").n, 0);
  assert.equal(pods.get("p1").n, 2);
  meta.close();
});

test("CriDocStore.releaseName: the document stays (patched) while its name is free for a new one", () => {
  const meta = MetadataStore.open(":memory:");
  const pods = meta.criDocs<Doc>("cri_sandboxes", "pod sandbox");
  pods.create({ id: "p1", nameKey: "web_ns_u_0", podId: "", n: 1 });
  const released = pods.releaseName("p1", { n: 2 });
  assert.deepEqual(released, { id: "p1", nameKey: "removed/p1", podId: "", n: 2 });
  assert.deepEqual(pods.get("p1"), released, "persisted");
  pods.create({ id: "p2", nameKey: "web_ns_u_0", podId: "", n: 3 });
  assert.deepEqual(pods.list().map((d) => d.id), ["p1", "p2"]);
  assert.throws(() => pods.releaseName("nope"), isNotFound);
  meta.close();
});
