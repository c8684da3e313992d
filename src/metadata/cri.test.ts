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
