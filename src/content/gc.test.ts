import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { isNotFound } from "../errors.js";
import { type Digest } from "./digest.js";
import { ContentStore } from "./store.js";
import { ingestDirName } from "./writer.js";

async function tempStore(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(path.join(tmpdir(), "skiff-gc-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  return { root, store: new ContentStore(root) };
}

async function put(store: ContentStore, data: string | object): Promise<Digest> {
  return (await store.writeBlob(typeof data === "string" ? data : JSON.stringify(data), {})).digest;
}

describe("leases and gc", () => {
  test("keeps everything reachable from an index root, deletes the rest", async (t) => {
    const { store } = await tempStore(t);
    const layer = await put(store, "layer bytes");
    const config = await put(store, { architecture: "amd64" });
    const manifest = await put(store, { schemaVersion: 2, config: { digest: config }, layers: [{ digest: layer }] });
    const index = await put(store, { schemaVersion: 2, manifests: [{ digest: manifest }] });
    const junk = await put(store, "unreferenced");
    const res = await store.gc({ roots: new Set([index]) });
    assert.deepEqual(res.blobs, [junk]);
    for (const d of [layer, config, manifest, index]) assert.equal(await store.has(d), true);
    assert.deepEqual((await store.gc({ roots: [] })).blobs.sort(), [layer, config, manifest, index].sort());
  });

  test("a lease protects its blobs until released; persisted in leases.json", async (t) => {
    const { root, store } = await tempStore(t);
    await store.lease("pull-1");
    const info = await store.writeBlob("leased", {}, { lease: "pull-1" });
    assert.deepEqual((await store.gc({ roots: [] })).blobs, []);
    const file = JSON.parse(await readFile(path.join(root, "content/leases.json"), "utf8")) as { leases: { id: string; digests: string[] }[] };
    assert.equal(file.leases.length, 1);
    assert.equal(file.leases[0]?.id, "pull-1");
    assert.deepEqual(file.leases[0]?.digests, [info.digest]);
    // a fresh store (daemon restart) sees the lease
    const again = new ContentStore(root);
    assert.deepEqual((await again.leases()).map((l) => l.digests), [[info.digest]]);
    assert.equal(await again.releaseLease("pull-1"), true);
    assert.equal(await again.releaseLease("pull-1"), false);
    assert.deepEqual((await again.gc({ roots: [] })).blobs, [info.digest]);
  });

  test("addToLease on a missing lease is NotFound; expired leases are dropped", async (t) => {
    const { store } = await tempStore(t);
    const d = await put(store, "x");
    await assert.rejects(store.addToLease("nope", d), isNotFound);
    await store.lease("old", { expiresAt: new Date(Date.now() - 1000) });
    await store.addToLease("old", d);
    const res = await store.gc({ roots: [] });
    assert.deepEqual(res.leases, ["old"]);
    assert.deepEqual(res.blobs, [d]);
    assert.deepEqual(await store.leases(), []);
  });

  test("removes stale unlocked ingests, keeps fresh and locked ones", async (t) => {
    const { root, store } = await tempStore(t);
    const stale = await store.writer("stale");
    await stale.write(Buffer.from("abc"));
    await stale.close();
    const live = await store.writer("live");
    await live.write(Buffer.from("abc"));
    const fresh = await store.writer("fresh");
    await fresh.close();
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const ref of ["stale", "live"]) {
      const dir = path.join(root, "content/ingest", ingestDirName(ref));
      for (const p of [dir, path.join(dir, "data"), path.join(dir, "ref")]) await utimes(p, old, old);
    }
    const res = await store.gc({ roots: [], ingestMaxAgeMs: 3600_000 });
    assert.deepEqual(res.ingests, ["stale"]);
    assert.deepEqual((await store.ingests()).map((i) => i.ref).sort(), ["fresh", "live"]);
    await live.abort();
  });
});
