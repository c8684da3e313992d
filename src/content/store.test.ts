import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, mkdir, writeFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { ErrorCode, codeOf, isAlreadyExists, isInvalidArgument, isNotFound } from "../errors.js";
import { sha256Digest } from "./digest.js";
import { ContentStore } from "./store.js";
import { ingestDirName } from "./writer.js";

async function tempStore(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(path.join(tmpdir(), "skiff-content-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  return { root, store: new ContentStore(root) };
}

const blobsOf = async (root: string) => readdir(path.join(root, "content/blobs/sha256")).catch(() => []);

describe("ContentStore basics", () => {
  test("writeBlob, info, has, readAll, readStream, list, delete", async (t) => {
    const { store } = await tempStore(t);
    const data = Buffer.from("hello content");
    const d = sha256Digest(data);
    const info = await store.writeBlob(data, { digest: d, size: data.length });
    assert.equal(info.digest, d);
    assert.equal(info.size, data.length);
    assert.ok(info.createdAt instanceof Date);
    assert.equal(await store.has(d), true);
    assert.deepEqual(await store.readAll(d), data);
    const chunks: Buffer[] = [];
    for await (const c of await store.readStream(d)) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data);
    assert.deepEqual((await store.list()).map((i) => i.digest), [d]);
    const st = await stat(store.blobPath(d));
    assert.equal(st.mode & 0o777, 0o444, "blobs are read-only");
    await store.delete(d);
    assert.equal(await store.has(d), false);
    await assert.rejects(store.delete(d), isNotFound);
  });

  test("missing blobs are NotFound; bad digests InvalidArgument", async (t) => {
    const { store } = await tempStore(t);
    const d = sha256Digest("nope");
    await assert.rejects(store.info(d), isNotFound);
    await assert.rejects(store.readAll(d), isNotFound);
    await assert.rejects(store.readStream(d), isNotFound);
    await assert.rejects(store.info("sha256:xyz"), isInvalidArgument);
    await assert.rejects(store.info("md5:abcd"), (e) => codeOf(e) === ErrorCode.Unimplemented);
  });

  test("writeBlob of an existing blob returns it; from an async iterable", async (t) => {
    const { store } = await tempStore(t);
    async function* gen() {
      yield Buffer.from("ab");
      yield Buffer.from("cd");
    }
    const a = await store.writeBlob(gen(), {});
    assert.equal(a.digest, sha256Digest("abcd"));
    const b = await store.writeBlob("abcd", { digest: a.digest });
    assert.equal(b.digest, a.digest);
    const c = await store.writeBlob("abcd", {}); // no expected digest: commit finds it exists
    assert.equal(c.digest, a.digest);
  });
});

describe("Writer", () => {
  test("commit verifies the digest; a mismatch names both digests and discards the ingest", async (t) => {
    const { root, store } = await tempStore(t);
    const want = sha256Digest("expected bytes");
    const w = await store.writer("ref-bad", { digest: want });
    await w.write(Buffer.from("other bytes"));
    const actual = sha256Digest("other bytes");
    await assert.rejects(w.commit(), (e: Error) => isInvalidArgument(e) && e.message.includes(want) && e.message.includes(actual));
    assert.deepEqual(await blobsOf(root), []);
    assert.deepEqual(await readdir(path.join(root, "content/ingest")), []);
    // the lock is released: the ref can be opened again, from zero
    const again = await store.writer("ref-bad");
    assert.equal(again.offset, 0);
    await again.abort();
  });

  test("size mismatch is InvalidArgument; writing past the expected size fails early", async (t) => {
    const { store } = await tempStore(t);
    const w = await store.writer("ref-size", { size: 10 });
    await w.write(Buffer.from("12345"));
    await assert.rejects(w.commit(), isInvalidArgument);
    const w2 = await store.writer("ref-size2", { size: 3 });
    await assert.rejects(w2.write(Buffer.from("12345")), isInvalidArgument);
    await w2.abort();
  });

  test("committing existing content is AlreadyExists and cleans the ingest", async (t) => {
    const { root, store } = await tempStore(t);
    await store.writeBlob("dup", {});
    const w = await store.writer("ref-dup");
    await w.write(Buffer.from("dup"));
    await assert.rejects(w.commit(), isAlreadyExists);
    assert.deepEqual(await readdir(path.join(root, "content/ingest")), []);
    // with an expected digest it is reported when opening, before any download
    await assert.rejects(store.writer("ref-dup2", { digest: sha256Digest("dup") }), isAlreadyExists);
  });

  test("a second writer on the same ref is Unavailable (locked)", async (t) => {
    const { store } = await tempStore(t);
    const w = await store.writer("ref-lock");
    await assert.rejects(store.writer("ref-lock"), (e: Error) => codeOf(e) === ErrorCode.Unavailable && /locked/.test(e.message));
    await w.abort();
    const w2 = await store.writer("ref-lock");
    await w2.abort();
  });

  test("nothing is visible under blobs/ before commit", async (t) => {
    const { root, store } = await tempStore(t);
    const w = await store.writer("ref-vis");
    await w.write(Buffer.alloc(100_000, 7));
    assert.deepEqual(await blobsOf(root), []);
    const d = await w.commit();
    assert.deepEqual(await blobsOf(root), [d.slice(7)]);
  });

  test("resumes after close(), continuing the digest", async (t) => {
    const { store } = await tempStore(t);
    const full = Buffer.concat([Buffer.alloc(70_000, 1), Buffer.alloc(50_000, 2)]);
    const w = await store.writer("ref-resume", { digest: sha256Digest(full), size: full.length });
    await w.write(full.subarray(0, 70_000));
    await w.close();
    const w2 = await store.writer("ref-resume", { digest: sha256Digest(full), size: full.length });
    assert.equal(w2.offset, 70_000);
    await w2.write(full.subarray(70_000));
    assert.equal(await w2.commit(), sha256Digest(full));
    assert.deepEqual(await store.readAll(sha256Digest(full)), full);
  });

  test("resumes an ingest left by a crashed process (bytes on disk, no writer)", async (t) => {
    const { root, store } = await tempStore(t);
    const full = Buffer.from("0123456789abcdefghij");
    const dir = path.join(root, "content/ingest", ingestDirName("ref-crash"));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "data"), full.subarray(0, 8));
    await writeFile(path.join(dir, "ref"), JSON.stringify({ ref: "ref-crash", startedAt: new Date().toISOString() }));
    const [st] = await store.ingests();
    assert.equal(st?.ref, "ref-crash");
    assert.equal(st?.offset, 8);
    const info = await store.writeBlob(full, { digest: sha256Digest(full) }, { ref: "ref-crash" });
    assert.equal(info.size, full.length);
  });

  test("overlapping write() calls keep their order", async (t) => {
    const { store } = await tempStore(t);
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000 + i, i));
    const w = await store.writer("ref-par");
    await Promise.all(parts.map((p) => w.write(p)));
    const d = await w.commit();
    assert.equal(d, `sha256:${createHash("sha256").update(Buffer.concat(parts)).digest("hex")}`);
  });

  test("commit honours an aborted signal and leaves the ingest resumable", async (t) => {
    const { store } = await tempStore(t);
    const w = await store.writer("ref-sig");
    await w.write(Buffer.from("abc"));
    await assert.rejects(w.commit({ signal: AbortSignal.abort() }), (e) => codeOf(e) === ErrorCode.Canceled);
    await w.close();
    const w2 = await store.writer("ref-sig");
    assert.equal(w2.offset, 3);
    await w2.abort();
  });
});
