import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { isInvalidArgument } from "../errors.js";
import { OverlaySnapshotter, overlaySupported } from "./overlay.js";
import { snapshotterContract } from "./snapshotter.contract.js";
import { upperDir } from "./mount.js";

snapshotterContract("overlayfs", (root) => new OverlaySnapshotter(root));

describe("OverlaySnapshotter mounts", () => {
  test("mount specs follow containerd's overlay snapshotter", async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), "skiff-ovl-"));
    t.after(() => rm(root, { recursive: true, force: true }));
    const sn = new OverlaySnapshotter(root);
    const dir = path.join(root, "snapshots/overlayfs/snapshots");
    assert.deepEqual(await sn.prepare("a"), [{ type: "bind", source: `${dir}/1/fs`, options: ["rw", "rbind"] }]);
    await sn.commit("A", "a");
    assert.deepEqual(await sn.view("va", "A"), [{ type: "bind", source: `${dir}/1/fs`, options: ["ro", "rbind"] }]);
    assert.deepEqual(await sn.prepare("b", "A"), [
      {
        type: "overlay",
        source: "overlay",
        options: ["index=off", `workdir=${dir}/3/work`, `upperdir=${dir}/3/fs`, `lowerdir=${dir}/1/fs`],
      },
    ]);
    assert.equal(upperDir(await sn.mounts("b")), `${dir}/3/fs`);
    await sn.commit("B", "b");
    assert.deepEqual(await sn.view("vb", "B"), [
      { type: "overlay", source: "overlay", options: ["index=off", `lowerdir=${dir}/3/fs:${dir}/1/fs`] },
    ]);
    assert.throws(() => upperDir([{ type: "bind", source: "/x", options: ["ro", "rbind"] }]), isInvalidArgument);
    assert.throws(() => new OverlaySnapshotter("/var/lib/a:b"), isInvalidArgument);
  });

  test("orphan directories from a crash are removed on load", async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), "skiff-ovl-"));
    t.after(() => rm(root, { recursive: true, force: true }));
    const sn = new OverlaySnapshotter(root);
    await sn.prepare("keep");
    const dir = path.join(root, "snapshots/overlayfs/snapshots");
    await mkdir(path.join(dir, "99/fs"), { recursive: true });
    const again = new OverlaySnapshotter(root);
    await again.list();
    assert.deepEqual(await readdir(dir), ["1"]);
  });

  test("overlaySupported is true here and leaves nothing behind", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "skiff-ovl-check-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    assert.equal(await overlaySupported(dir), true);
    assert.deepEqual(await readdir(dir), []);
  });
});
