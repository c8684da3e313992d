/**
 * Contract suite every Snapshotter implementation runs (from its own `*.test.ts`). Needs root:
 * the returned mounts are mounted for real in temp dirs and unmounted in `t.after`.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, test, type TestContext } from "node:test";
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { mountAll } from "./mount.js";
import type { Mount, Snapshotter } from "./snapshotter.js";

export type SnapshotterFactory = (root: string) => Snapshotter | Promise<Snapshotter>;

async function setup(t: TestContext, factory: SnapshotterFactory) {
  const root = await mkdtemp(path.join(tmpdir(), "skiff-snap-"));
  const sn = await factory(root);
  t.after(async () => {
    await sn.close();
    await unmountAll(root); // a failed test may leave a mount: never rm through it
    await rm(root, { recursive: true, force: true });
  });
  /** Mounts `mounts` at a fresh target, runs `fn` on it, always unmounts. */
  const withMount = async <T>(mounts: Mount[], fn: (dir: string) => Promise<T>): Promise<T> => {
    const target = await mkdtemp(path.join(root, "mnt-"));
    t.after(() => unmountAll(target));
    await mountAll(mounts, target);
    try {
      return await fn(target);
    } finally {
      await unmountAll(target);
    }
  };
  return { root, sn, withMount };
}

/** Builds committed chain base ← mid: base has a, d/x; mid adds b. */
async function chain(sn: Snapshotter, withMount: Awaited<ReturnType<typeof setup>>["withMount"]) {
  await withMount(await sn.prepare("base-active"), async (d) => {
    await writeFile(path.join(d, "a"), "a from base");
    await mkdir(path.join(d, "d"));
    await writeFile(path.join(d, "d/x"), "x");
  });
  await sn.commit("base", "base-active");
  await withMount(await sn.prepare("mid-active", "base"), async (d) => {
    assert.equal(await readFile(path.join(d, "a"), "utf8"), "a from base");
    await writeFile(path.join(d, "b"), "b from mid");
  });
  await sn.commit("mid", "mid-active");
}

export function snapshotterContract(name: string, factory: SnapshotterFactory): void {
  describe(`Snapshotter contract: ${name}`, () => {
    test("prepare/commit chains; lower layers visible through mounts", async (t) => {
      const { sn, withMount } = await setup(t, factory);
      await chain(sn, withMount);
      const top = await sn.prepare("top", "mid", { labels: { role: "container" } });
      await withMount(top, async (d) => {
        assert.deepEqual((await readdir(d)).sort(), ["a", "b", "d"]);
        assert.equal(await readFile(path.join(d, "d/x"), "utf8"), "x");
        await writeFile(path.join(d, "a"), "changed on top");
      });
      // the committed layers are untouched by writes on top
      await withMount(await sn.view("check", "mid"), async (d) => {
        assert.equal(await readFile(path.join(d, "a"), "utf8"), "a from base");
      });
      const info = await sn.stat("top");
      assert.equal(info.kind, "active");
      assert.equal(info.parent, "mid");
      assert.deepEqual(info.labels, { role: "container" });
      assert.equal((await sn.stat("mid")).kind, "committed");
      await assert.rejects(sn.stat("mid-active"), isNotFound);
    });

    test("views are read-only, of one layer or many", async (t) => {
      const { sn, withMount } = await setup(t, factory);
      await chain(sn, withMount);
      for (const parent of ["base", "mid"]) {
        await withMount(await sn.view(`v-${parent}`, parent), async (d) => {
          assert.ok((await readdir(d)).includes("a"));
          await assert.rejects(writeFile(path.join(d, "new"), "x"), /EROFS|read-only/i);
        });
        assert.equal((await sn.stat(`v-${parent}`)).kind, "view");
      }
      await withMount(await sn.view("empty-view"), async (d) => assert.deepEqual(await readdir(d), []));
      await assert.rejects(sn.commit("nope", "v-mid"), isFailedPrecondition);
    });

    test("mounts() returns the same mounts; committed snapshots have none", async (t) => {
      const { sn, withMount } = await setup(t, factory);
      await chain(sn, withMount);
      const m = await sn.prepare("c", "mid");
      assert.deepEqual(await sn.mounts("c"), m);
      await assert.rejects(sn.mounts("mid"), isFailedPrecondition);
      await assert.rejects(sn.mounts("missing"), isNotFound);
    });

    test("argument and state errors", async (t) => {
      const { sn, withMount } = await setup(t, factory);
      await sn.prepare("k");
      await assert.rejects(sn.prepare("k"), isAlreadyExists);
      await assert.rejects(sn.prepare("k2", "missing"), isNotFound);
      await assert.rejects(sn.prepare("k3", "k"), isInvalidArgument, "parent must be committed");
      await assert.rejects(sn.prepare(""), isInvalidArgument);
      await chain(sn, withMount);
      await assert.rejects(sn.commit("base", "k"), isAlreadyExists);
      await assert.rejects(sn.commit("x", "base"), isFailedPrecondition);
      await assert.rejects(sn.commit("x", "missing"), isNotFound);
    });

    test("removal rules: parents with children cannot go; mounted snapshots cannot go", async (t) => {
      const { sn, withMount, root } = await setup(t, factory);
      await chain(sn, withMount);
      await sn.prepare("c", "mid");
      await sn.view("v", "base");
      await assert.rejects(sn.remove("mid"), isFailedPrecondition);
      await assert.rejects(sn.remove("base"), isFailedPrecondition);
      await sn.remove("c");
      await assert.rejects(sn.remove("c"), isNotFound);
      await sn.remove("mid");
      await assert.rejects(sn.remove("base"), isFailedPrecondition, "view v still uses base");
      await sn.remove("v");
      await sn.remove("base");
      assert.deepEqual(await sn.list(), []);
      // a snapshot whose directory has something mounted inside it is refused
      const m = await sn.prepare("busy");
      const src = m[0]!.source !== "overlay" ? m[0]!.source : "";
      assert.ok(src, "a parentless snapshot is a bind mount of its directory");
      const target = path.join(src, "mp");
      await mkdir(target);
      const other = await mkdtemp(path.join(root, "other-"));
      await mountAll([{ type: "bind", source: other, options: ["rbind"] }], target);
      t.after(() => unmountAll(target));
      await assert.rejects(sn.remove("busy"), isFailedPrecondition);
      await unmountAll(target);
      await sn.remove("busy");
    });

    test("usage grows when files are written", async (t) => {
      const { sn, withMount } = await setup(t, factory);
      await chain(sn, withMount);
      const m = await sn.prepare("u", "mid");
      const before = await sn.usage("u");
      await withMount(m, async (d) => {
        await writeFile(path.join(d, "big"), Buffer.alloc(256 * 1024, 1));
        await writeFile(path.join(d, "small"), "s");
      });
      const after = await sn.usage("u");
      assert.ok(after.size >= before.size + 256 * 1024, `${after.size} vs ${before.size}`);
      assert.equal(after.inodes, before.inodes + 2);
      const base = await sn.usage("base");
      assert.ok(base.inodes >= 4 && base.size > 0); // fs, a, d, d/x
      await assert.rejects(sn.usage("missing"), isNotFound);
    });

    test("list, walk, update; state survives a new instance", async (t) => {
      const { sn, withMount, root } = await setup(t, factory);
      await chain(sn, withMount);
      await sn.prepare("w", "mid");
      assert.deepEqual((await sn.list()).map((i) => i.name).sort(), ["base", "mid", "w"]);
      const seen: string[] = [];
      await sn.walk((i) => void seen.push(i.name), (i) => i.kind === "committed");
      assert.deepEqual(seen.sort(), ["base", "mid"]);
      await sn.update("w", { a: "1" });
      assert.deepEqual((await sn.stat("w")).labels, { a: "1" });
      const again = await factory(root);
      assert.deepEqual((await again.stat("w")).labels, { a: "1" });
      assert.deepEqual(await again.mounts("w"), await sn.mounts("w"));
      await again.close();
    });

    test("concurrent operations serialize", async (t) => {
      const { sn } = await setup(t, factory);
      await sn.prepare("p");
      await sn.commit("parent", "p");
      const keys = Array.from({ length: 12 }, (_, i) => `c${i}`);
      const mounts = await Promise.all(keys.map((k) => sn.prepare(k, "parent")));
      assert.equal(new Set(mounts.map((m) => JSON.stringify(m))).size, keys.length);
      const results = await Promise.allSettled([sn.prepare("dup"), sn.prepare("dup")]);
      assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
      await Promise.all(keys.map((k) => sn.remove(k)));
      assert.deepEqual((await sn.list()).map((i) => i.name).sort(), ["dup", "parent"]);
    });
  });
}
