import assert from "node:assert/strict";
import { chmod, link, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { NativeSnapshotter } from "./native.js";
import { upperDir } from "./mount.js";
import { snapshotterContract } from "./snapshotter.contract.js";

snapshotterContract("native", (root) => new NativeSnapshotter(root));

describe("NativeSnapshotter", () => {
  test("prepare copies the parent tree, keeping modes and hard links", async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), "skiff-native-"));
    t.after(() => rm(root, { recursive: true, force: true }));
    const sn = new NativeSnapshotter(root);
    const base = upperDir(await sn.prepare("a"));
    await mkdir(path.join(base, "bin"));
    await writeFile(path.join(base, "bin/tool"), "#!/bin/sh\n");
    await chmod(path.join(base, "bin/tool"), 0o4755);
    await link(path.join(base, "bin/tool"), path.join(base, "bin/alias"));
    await sn.commit("A", "a");
    const child = upperDir(await sn.prepare("b", "A"));
    assert.notEqual(child, base);
    const st = await stat(path.join(child, "bin/tool"));
    assert.equal(st.mode & 0o7777, 0o4755);
    assert.equal(st.nlink, 2);
    assert.equal((await stat(path.join(child, "bin/alias"))).ino, st.ino);
  });
});
