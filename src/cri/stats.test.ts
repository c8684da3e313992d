import { test } from "node:test";
import assert from "node:assert/strict";
import { SNAPSHOT_LABEL } from "../containers/from-image.js";
import { StatsCollector } from "./stats.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

function deps(usage: () => Promise<{ size: number; inodes: number }>) {
  const calls = { usage: 0 };
  const d = {
    cfg: { root: "/var/lib/skiff" },
    log: { debug() {} },
    containers: { get: (id: string) => ({ id, labels: id === "nosnap" ? {} : { [SNAPSHOT_LABEL]: `snap-${id}` } }) },
    snapshotter: {
      usage: (_key: string) => {
        calls.usage++;
        return usage();
      },
    },
  };
  return { d: d as unknown as ConstructorParameters<typeof StatsCollector>[0], calls };
}

const ctr = (over: Partial<ContainerRecord> = {}): ContainerRecord =>
  ({ id: "c1", name: "web", attempt: 0, labels: {}, annotations: {}, state: "running", pid: process.pid, sandboxId: "p1", ...over }) as ContainerRecord;

const pod = (over: Partial<SandboxRecord> = {}): SandboxRecord =>
  ({ id: "p1", name: "p", uid: "u", namespace: "n", attempt: 0, labels: {}, annotations: {}, state: "ready", pid: process.pid, cgroupParent: "", netns: { name: "x", path: "/x" }, ...over }) as SandboxRecord;

test("a running container: CPU and memory from its process's cgroup; nano cores from the second sample", async () => {
  const { d } = deps(async () => ({ size: 8192, inodes: 3 }));
  const s = new StatsCollector(d);
  const first = await s.container(ctr());
  assert.ok(first.cpu && first.cpu.usageCoreNs > 0n);
  assert.equal(first.cpu.usageNanoCores, undefined);
  assert.ok(first.memory && first.memory.workingSetBytes > 0n);
  assert.deepEqual(
    { bytes: first.writableLayer?.usedBytes, inodes: first.writableLayer?.inodesUsed, at: first.writableLayer?.mountpoint },
    { bytes: 8192n, inodes: 3n, at: "/var/lib/skiff/snapshots" },
  );
  const t0 = Date.now();
  while (Date.now() - t0 < 30); // burn a little CPU between samples
  await new Promise((r) => setTimeout(r, 5));
  const second = await s.container(ctr());
  assert.ok(second.cpu!.usageCoreNs >= first.cpu.usageCoreNs);
  assert.notEqual(second.cpu!.usageNanoCores, undefined);
});

test("a created or exited container has no cgroup sample, only its writable layer", async () => {
  const { d } = deps(async () => ({ size: 0, inodes: 1 }));
  const s = new StatsCollector(d);
  const r = await s.container(ctr({ state: "created", pid: 0 }));
  assert.equal(r.cpu, undefined);
  assert.equal(r.memory, undefined);
  assert.equal(r.writableLayer?.inodesUsed, 1n);
  assert.equal((await s.container(ctr({ id: "nosnap", state: "exited", pid: 0 }))).writableLayer, undefined);
});

test("writable layer usage is cached and shared; failures are not cached", async () => {
  let fail = true;
  const { d, calls } = deps(async () => {
    if (fail) throw new Error("walk failed");
    return { size: 1, inodes: 1 };
  });
  const s = new StatsCollector(d);
  assert.equal((await s.container(ctr({ state: "created" }))).writableLayer, undefined);
  fail = false;
  await Promise.all([s.container(ctr({ state: "created" })), s.container(ctr({ state: "created" }))]);
  await s.container(ctr({ state: "created" }));
  assert.equal(calls.usage, 2, "one failed walk, then one shared cached walk");
  s.retain(new Set());
  await s.container(ctr({ state: "created" }));
  assert.equal(calls.usage, 3, "retain drops state of ids no longer listed");
});

test("pod: sum of pause and containers without a cgroup parent; network from the pause's namespace", async () => {
  const { d } = deps(async () => ({ size: 0, inodes: 0 }));
  const s = new StatsCollector(d);
  const one = await s.container(ctr());
  const p = await s.pod(pod(), [ctr()]);
  // Same process stands in for pause and container here: the pod sums both.
  assert.ok(p.cpu!.usageCoreNs >= 2n * one.cpu!.usageCoreNs);
  assert.ok(p.memory!.usageBytes > 0n);
  assert.ok(p.network, "network counters of the pod's namespace");
  assert.equal(p.containers.length, 1);
  const stopped = await s.pod(pod({ state: "notready", pid: 0 }), []);
  assert.equal(stopped.cpu, undefined);
  assert.equal(stopped.network, undefined);
  const hostNet = await s.pod(pod({ netns: null }), []);
  assert.equal(hostNet.network, undefined, "host-network pods report no pod network");
});

test("pod with a cgroup parent: that cgroup's counters (here the root cgroup, which holds everything)", async () => {
  const { d } = deps(async () => ({ size: 0, inodes: 0 }));
  const s = new StatsCollector(d);
  const own = await s.container(ctr());
  const p = await s.pod(pod({ cgroupParent: "/" }), []);
  assert.ok(p.cpu!.usageCoreNs >= own.cpu!.usageCoreNs, "the root cgroup has at least this process's CPU time");
  assert.ok(p.memory!.usageBytes > 0n);
  assert.ok(p.processCount === undefined || p.processCount.count > 0n);
});
