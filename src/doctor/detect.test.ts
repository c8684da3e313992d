import { test } from "node:test";
import assert from "node:assert/strict";
import { detectDrift } from "./detect.js";
import type { HostState, RecordState } from "./types.js";

const STATE = "/run/skiff";
const bundle = (id: string) => `${STATE}/tasks/ns/${id}`;

/** One pod (sandbox p1, container c1) that is fully consistent with the host. */
function consistent(): { host: HostState; records: RecordState } {
  return {
    host: {
      shims: [{ pid: 100, group: "p1", cwd: `${STATE}/shims/ns/p1` }],
      runc: [
        { root: "/run/containerd/runc/ns", id: "p1", pid: 101 },
        { root: "/run/containerd/runc/ns", id: "c1", pid: 102 },
      ],
      mounts: [
        { mountPoint: `${bundle("p1")}/rootfs`, fsType: "overlay", source: "overlay" },
        { mountPoint: `${bundle("c1")}/rootfs`, fsType: "overlay", source: "overlay" },
      ],
      netns: ["skiff-ns-p1"],
      bundles: [
        { id: "p1", path: bundle("p1"), ageMs: 1e6 },
        { id: "c1", path: bundle("c1"), ageMs: 1e6 },
      ],
      podDirs: [{ id: "p1", path: "/var/lib/skiff/pods/p1", ageMs: 1e6 }],
      shimHomes: [{ id: "p1", path: `${STATE}/shims/ns/p1`, ageMs: 1e6 }],
    },
    records: {
      tasks: [
        { id: "p1", shimId: "p1", bundle: bundle("p1"), live: true, teardownPending: false },
        { id: "c1", shimId: "p1", bundle: bundle("c1"), live: true, teardownPending: false },
      ],
      shims: [{ id: "p1", pid: 100, state: "running" }],
      pods: [{ id: "p1", state: "ready", netns: "skiff-ns-p1", dir: "/var/lib/skiff/pods/p1" }],
      containers: [{ id: "c1", state: "running" }],
      teardowns: [],
    },
  };
}

const kinds = (host: HostState, records: RecordState) => detectDrift(host, records, { bundleGraceMs: 1000 }).map((f) => `${f.kind} ${f.object}`);

test("a host that matches the records has no findings", () => {
  const { host, records } = consistent();
  assert.deepEqual(kinds(host, records), []);
});

test("host objects no record explains are orphans, each named", () => {
  const { host, records } = consistent();
  host.shims.push({ pid: 200, group: "lost", cwd: `${STATE}/shims/ns/lost` });
  host.runc.push({ root: "/run/containerd/runc/ns", id: "lost-c", pid: 201 });
  host.mounts.push({ mountPoint: `${STATE}/junk`, fsType: "tmpfs", source: "tmpfs" });
  host.netns.push("skiff-ns-gone");
  host.bundles.push({ id: "lost-c", path: bundle("lost-c"), ageMs: 5000 });
  host.podDirs.push({ id: "gone", path: "/var/lib/skiff/pods/gone", ageMs: 5000 });
  host.shimHomes.push({ id: "lost", path: `${STATE}/shims/ns/lost`, ageMs: 5000 });
  assert.deepEqual(kinds(host, records).sort(), [
    `orphan-bundle ${bundle("lost-c")}`,
    `orphan-mount ${STATE}/junk`,
    "orphan-netns skiff-ns-gone",
    "orphan-pod-dir /var/lib/skiff/pods/gone",
    "orphan-runc-container lost-c",
    "orphan-shim pid 200 (group lost)",
    `orphan-shim-home ${STATE}/shims/ns/lost`,
  ]);
  const shim = detectDrift(host, records).find((f) => f.kind === "orphan-shim");
  assert.match(shim!.message, /shim process 200 of group "lost" has no shim or task record/);
});

test("objects of a task whose teardown is pending are not orphans", () => {
  const { host, records } = consistent();
  records.tasks[1]!.live = false;
  records.tasks[1]!.teardownPending = true;
  records.containers[0]!.state = "exited";
  assert.deepEqual(kinds(host, records), []);
  // Once the teardown is done (tombstone, no work), the leftovers are orphans.
  records.tasks[1]!.teardownPending = false;
  assert.deepEqual(kinds(host, records).sort(), [
    `orphan-bundle ${bundle("c1")}`,
    `orphan-mount ${bundle("c1")}/rootfs`,
    "orphan-runc-container c1",
  ]);
});

test("a mount in a pod's directory belongs to the pod while its record exists", () => {
  const { host, records } = consistent();
  host.mounts.push({ mountPoint: "/var/lib/skiff/pods/p1/shm", fsType: "tmpfs", source: "shm" });
  assert.deepEqual(kinds(host, records), []);
  records.pods = [];
  records.containers = [];
  assert.ok(kinds(host, records).includes("orphan-mount /var/lib/skiff/pods/p1/shm"));
});

test("a fresh bundle is within its grace period (the task record may follow)", () => {
  const { host, records } = consistent();
  host.bundles.push({ id: "new", path: bundle("new"), ageMs: 10 });
  assert.deepEqual(kinds(host, records), []);
});

test("a shim recorded by group or by pid, or needed by a task, is not an orphan", () => {
  const { host, records } = consistent();
  host.shims.push({ pid: 300, group: "starting-one", cwd: "" });
  records.shims.push({ id: "starting-one", pid: null, state: "starting" });
  assert.deepEqual(kinds(host, records), []);
});

test("records pointing at nothing live: task without shim, running container and ready pod without task", () => {
  const { host, records } = consistent();
  host.shims = []; // the shim process died
  assert.deepEqual(kinds(host, records), ["task-without-shim p1", "task-without-shim c1"]);
  records.shims = [];
  const msg = detectDrift(host, records).find((f) => f.kind === "task-without-shim")!.message;
  assert.match(msg, /task "p1" is live but its shim "p1" has no shim record/);
  // Tasks tombstoned but CRI still says running/ready.
  records.tasks = records.tasks.map((t) => ({ ...t, live: false }));
  host.runc = [];
  host.mounts = [];
  host.bundles = [];
  host.shimHomes = [];
  assert.deepEqual(kinds(host, records), ["container-without-task c1", "pod-without-task p1"]);
});

test("a shim still starting does not make its tasks drift", () => {
  const { host, records } = consistent();
  host.shims = [];
  records.shims = [{ id: "p1", pid: null, state: "starting" }];
  assert.deepEqual(kinds(host, records), []);
});

test("netns: orphans by prefix list, and a ready pod whose netns is gone", () => {
  const { host, records } = consistent();
  host.netns = [];
  assert.deepEqual(kinds(host, records), ["missing-netns p1"]);
  records.pods[0]!.state = "notready"; // torn-down network: its netns may be gone
  assert.deepEqual(kinds(host, records), []);
});

test("a teardown failing again and again is reported with its last error", () => {
  const { host, records } = consistent();
  records.tasks[1]!.live = false;
  records.tasks[1]!.teardownPending = true;
  records.containers[0]!.state = "exited";
  records.teardowns.push({ taskId: "c1", phase: "delete_task", attempts: 2, lastError: "boom" });
  assert.deepEqual(kinds(host, records), [], "a few failures are the normal retry");
  records.teardowns[0]!.attempts = 7;
  const f = detectDrift(host, records);
  assert.deepEqual(f.map((x) => `${x.kind} ${x.object}`), ["stuck-teardown c1"]);
  assert.match(f[0]!.message, /teardown of task "c1" failed 7 times in phase delete_task: boom/);
});
