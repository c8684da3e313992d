import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { isInvalidArgument } from "../errors.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { mountAll } from "../snapshots/mount.js";
import { OverlaySnapshotter } from "../snapshots/overlay.js";
import { applyLayer, chainIds } from "./apply.js";
import { makeTar } from "./tar-writer.js";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const lower = makeTar([
  { name: "a", data: "a" },
  { name: "b", data: "b" },
  { name: "d/", type: "dir" },
  { name: "d/x", data: "x" },
]);
const upper = makeTar([
  { name: ".wh.a", data: "" },
  { name: "d/", type: "dir" },
  { name: "d/.wh..wh..opq", data: "" },
  { name: "d/y", data: "y" },
]);

describe("layers on the overlay snapshotter", () => {
  test("chainIds follow the OCI definition", () => {
    const [l, u] = [sha(lower), sha(upper)];
    assert.deepEqual(chainIds([l, u]), [l, sha(`${l} ${u}`)]);
  });

  test("lower + upper (whiteout a, opaque d with d/y) merge to {b, d/y} on a real mount", async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), "skiff-apply-"));
    const target = path.join(root, "rootfs");
    t.after(async () => {
      await unmountAll(root);
      await rm(root, { recursive: true, force: true });
    });
    const sn = new OverlaySnapshotter(root);
    const [c1, c2] = chainIds([sha(lower), sha(upper)]) as [string, string];
    const r1 = await applyLayer(sn, c1, undefined, Readable.from([gzipSync(lower)]), { expectedDiffId: sha(lower) });
    assert.equal(r1?.diffId, sha(lower));
    const r2 = await applyLayer(sn, c2, c1, Readable.from([upper]), { expectedDiffId: sha(upper) });
    assert.equal(r2?.entries, 4);
    assert.equal(await applyLayer(sn, c2, c1, Readable.from([upper])), undefined, "already unpacked");
    assert.deepEqual((await sn.list()).map((i) => i.name).sort(), [c1, c2].sort());

    await mkdir(target);
    await mountAll(await sn.prepare("container", c2), target);
    t.after(() => unmountAll(target));
    assert.deepEqual((await readdir(target)).sort(), ["b", "d"]);
    assert.deepEqual(await readdir(path.join(target, "d")), ["y"]);
    assert.equal(await readFile(path.join(target, "d/y"), "utf8"), "y");
    await assert.rejects(lstat(path.join(target, "a")), /ENOENT/);
    await unmountAll(target);
  });

  test("a failed layer leaves no snapshot behind", async (t) => {
    const root = await mkdtemp(path.join(tmpdir(), "skiff-apply-"));
    t.after(() => rm(root, { recursive: true, force: true }));
    const sn = new OverlaySnapshotter(root);
    const bad = makeTar([{ name: "../x", data: "" }]);
    await assert.rejects(applyLayer(sn, sha(bad), undefined, Readable.from([bad])), isInvalidArgument);
    const wrong = applyLayer(sn, sha(lower), undefined, Readable.from([lower]), { expectedDiffId: sha("other") });
    await assert.rejects(wrong, isInvalidArgument);
    assert.deepEqual(await sn.list(), []);
    assert.deepEqual(await readdir(path.join(root, "snapshots/overlayfs/snapshots")), []);
  });
});
