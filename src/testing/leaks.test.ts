import assert from "node:assert/strict";
import { test } from "node:test";
import {
  HostLeakError,
  assertNoLeaks,
  diffSnapshots,
  formatCounts,
  isEmptyDiff,
  parseMountInfoLine,
  snapshotHost,
} from "./leaks.js";
import type { HostSnapshot } from "./leaks.js";

function snap(partial: Partial<HostSnapshot>): HostSnapshot {
  return { takenAt: "t", mountPrefixes: ["/tmp"], shims: [], mounts: [], netns: [], runcContainers: [], ...partial };
}

test("parseMountInfoLine reads ids, escaped paths and the fields after the separator", () => {
  const m = parseMountInfoLine(
    "412 30 0:52 / /tmp/a\\040b/rootfs rw,relatime shared:1 master:2 - overlay overlay rw,lowerdir=/x",
  );
  assert.deepEqual(m, { id: 412, root: "/", mountPoint: "/tmp/a b/rootfs", fsType: "overlay", source: "overlay" });
  assert.equal(parseMountInfoLine(""), undefined);
});

test("diffSnapshots reports only what is new in the second snapshot", () => {
  const mount = { id: 7, root: "/", mountPoint: "/tmp/x", fsType: "overlay", source: "overlay" };
  const before = snap({
    shims: [{ pid: 10, args: ["containerd-shim-runc-v2"], cwd: "" }],
    mounts: [mount],
    netns: ["a"],
    runcContainers: [{ runcRoot: "/r", id: "c1", pid: 5, status: "running", bundle: "/b" }],
  });
  const after = snap({
    shims: [
      { pid: 10, args: ["containerd-shim-runc-v2"], cwd: "" },
      { pid: 11, args: ["/usr/bin/containerd-shim-runc-v2", "-id", "p1"], cwd: "/run/skiff/p1" },
    ],
    mounts: [mount, { ...mount, id: 8, mountPoint: "/tmp/y" }],
    netns: ["a", "b"],
    runcContainers: [
      { runcRoot: "/r", id: "c1", pid: 5, status: "running", bundle: "/b" },
      { runcRoot: "/r2", id: "c1", pid: 6, status: "stopped", bundle: "/b2" },
    ],
  });
  const diff = diffSnapshots(before, after);
  assert.deepEqual(diff.newShimPids, [11]);
  assert.deepEqual(diff.newMounts.map((m) => m.id), [8]);
  assert.deepEqual(diff.newNetns, ["b"]);
  assert.deepEqual(diff.newRuncContainers.map((c) => c.runcRoot), ["/r2"]);
  assert.ok(isEmptyDiff(diffSnapshots(after, before)), "what disappeared is not a leak");

  assert.throws(
    () => assertNoLeaks(before, after),
    (err: unknown) =>
      err instanceof HostLeakError &&
      err.message.includes("shim pid 11: /usr/bin/containerd-shim-runc-v2 -id p1 (cwd /run/skiff/p1)") &&
      err.message.includes("mount /tmp/y (overlay") &&
      err.message.includes("netns b") &&
      err.message.includes("runc container c1 in /r2"),
  );
  assert.doesNotThrow(() => assertNoLeaks(after, after));
  assert.equal(formatCounts(after), "shims=2 mounts=2 netns=2 runc=2 cni-rules=0");
});

test("snapshotHost returns JSON-serializable data", async () => {
  const s = await snapshotHost({ mountPrefixes: ["/nonexistent-prefix"], runcRoots: [] });
  assert.deepEqual(s.mounts, []);
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
});
