import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { LinuxContainerResourcesSchema } from "../gen/runtime/v1/api_pb.js";
import { isInvalidArgument } from "../errors.js";
import {
  applyResources,
  checkHostResources,
  hostResources,
  hugepageName,
  mergeResources,
  parseCpuList,
  resourcesFromProto,
  type ContainerResources,
  type HostResources,
} from "./resources.js";

const what = 'container "web"';
const from = (init: Parameters<typeof create<typeof LinuxContainerResourcesSchema>>[1]) =>
  resourcesFromProto(create(LinuxContainerResourcesSchema, init), what);

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isInvalidArgument(err), `InvalidArgument, got ${String(err)}`);
    assert.match((err as Error).message, /container "web"/);
    assert.match((err as Error).message, re);
    return true;
  });
}

test("valid resources carried over, optional fields only when set", () => {
  const r = from({ cpuPeriod: 100000n, cpuQuota: 50000n, cpuShares: 512n, memoryLimitInBytes: 64n << 20n, cpusetCpus: " 0-1 ", cpusetMems: "0" });
  assert.deepEqual(r, { cpuPeriod: 100000, cpuQuota: 50000, cpuShares: 512, memoryLimitInBytes: 64 << 20, oomScoreAdj: 0, cpusetCpus: "0-1", cpusetMems: "0" });
  const h = from({ hugepageLimits: [{ pageSize: "2MB", limit: 4194304n }], unified: { "memory.high": "1000000" }, memorySwapLimitInBytes: -1n });
  assert.deepEqual(h.hugepageLimits, [{ pageSize: "2MB", limit: 4194304 }]);
  assert.deepEqual(h.unified, { "memory.high": "1000000" });
  assert.equal(h.memorySwapLimitInBytes, -1);
  assert.equal(from({ cpuQuota: -1n }).cpuQuota, -1, "-1 is no limit");
});

test("bad values refused naming the container and the field", () => {
  refused(() => from({ cpuShares: -2n }), /cpu_shares -2 is negative/);
  refused(() => from({ cpuShares: 1n }), /cpu_shares 1 is outside 2\.\.262144/);
  refused(() => from({ cpuShares: 262145n }), /cpu_shares 262145/);
  refused(() => from({ cpuQuota: 50000n }), /cpu_quota 50000 needs a cpu_period/);
  refused(() => from({ cpuQuota: -5n, cpuPeriod: 100000n }), /cpu_quota -5 is negative/);
  refused(() => from({ cpuQuota: 999n, cpuPeriod: 100000n }), /cpu_quota 999 is below 1000/);
  refused(() => from({ cpuPeriod: 999n }), /cpu_period 999 is outside 1000\.\.1000000/);
  refused(() => from({ cpuPeriod: 1000001n }), /cpu_period 1000001/);
  refused(() => from({ memoryLimitInBytes: -1n }), /memory_limit_in_bytes -1 is negative/);
  refused(() => from({ memoryLimitInBytes: 4096n }), /memory_limit_in_bytes 4096 is below the minimum/);
  refused(() => from({ memoryLimitInBytes: 64n << 20n, memorySwapLimitInBytes: 32n << 20n }), /memory_swap_limit_in_bytes .* at least memory_limit_in_bytes/);
  refused(() => from({ memorySwapLimitInBytes: -2n }), /memory_swap_limit_in_bytes -2/);
  refused(() => from({ oomScoreAdj: 1001n }), /oom_score_adj 1001/);
  refused(() => from({ memoryLimitInBytes: 1n << 60n }), /memory_limit_in_bytes .* out of range/);
  for (const bad of ["0-", "a", "1,,2", "-1", "3-1", "0 1"]) refused(() => from({ cpusetCpus: bad }), /cpuset_cpus/);
  refused(() => from({ cpusetMems: "x" }), /cpuset_mems "x"/);
  refused(() => from({ hugepageLimits: [{ pageSize: "2M", limit: 1n }] }), /hugepage_limits\[0\]: page_size "2M"/);
  refused(() => from({ unified: { "../memory.max": "1" } }), /unified key "\.\.\/memory\.max"/);
});

test("parseCpuList expands ranges", () => {
  assert.deepEqual(parseCpuList("0-2,5,7-8", what, "cpuset_cpus"), [0, 1, 2, 5, 7, 8]);
});

test("hugepageName follows the kernel's hugetlb file naming", () => {
  assert.equal(hugepageName(2048), "2MB");
  assert.equal(hugepageName(1048576), "1GB");
  assert.equal(hugepageName(64), "64KB");
});

const v1Host: HostResources = { cgroupVersion: 1, hugepageSizes: ["2MB", "1GB"], hugetlb: false, swap: true, cpus: new Set([0, 1]), mems: new Set([0]) };
const base: ContainerResources = { cpuPeriod: 0, cpuQuota: 0, cpuShares: 0, memoryLimitInBytes: 0, oomScoreAdj: 0, cpusetCpus: "", cpusetMems: "" };

test("host checks: hugepage sizes and controller, unified on v1, offline CPUs, swap", () => {
  refused(() => checkHostResources({ ...base, hugepageLimits: [{ pageSize: "16MB", limit: 0 }] }, what, v1Host), /page size 16MB is not available \(this host has 2MB, 1GB\)/);
  refused(() => checkHostResources({ ...base, hugepageLimits: [{ pageSize: "2MB", limit: 0 }] }, what, { ...v1Host, hugepageSizes: [] }), /no hugepages/);
  refused(() => checkHostResources({ ...base, hugepageLimits: [{ pageSize: "2MB", limit: 0 }] }, what, v1Host), /no hugetlb cgroup controller/);
  checkHostResources({ ...base, hugepageLimits: [{ pageSize: "2MB", limit: 0 }] }, what, { ...v1Host, hugetlb: true });
  refused(() => checkHostResources({ ...base, unified: { "memory.high": "1" } }, what, v1Host), /unified resources \(memory\.high\) need cgroup v2/);
  checkHostResources({ ...base, unified: { "memory.high": "1" } }, what, { ...v1Host, cgroupVersion: 2 });
  refused(() => checkHostResources({ ...base, cpusetCpus: "0-3" }, what, v1Host), /cpuset_cpus "0-3" names 2, 3 \(not online/);
  refused(() => checkHostResources({ ...base, cpusetMems: "1" }, what, v1Host), /cpuset_mems "1"/);
  refused(() => checkHostResources({ ...base, memoryLimitInBytes: 8 << 20, memorySwapLimitInBytes: 16 << 20 }, what, { ...v1Host, swap: false }), /swap accounting/);
});

test("this host's facts: cgroup v1 here, hugepage sizes from sysfs", async () => {
  const h = await hostResources();
  assert.ok(h.cgroupVersion === 1 || h.cgroupVersion === 2);
  assert.ok(h.cpus.has(0));
  for (const s of h.hugepageSizes) assert.match(s, /^\d+(KB|MB|GB)$/);
});

test("merge: set fields replace, unset keep; hugepages by size; unified merged", () => {
  const cur: ContainerResources = { ...base, cpuPeriod: 100000, cpuQuota: 20000, memoryLimitInBytes: 64 << 20, cpusetCpus: "0", hugepageLimits: [{ pageSize: "2MB", limit: 1 }], unified: { a: "1" } };
  const m = mergeResources(cur, { ...base, cpuQuota: 50000, cpuShares: 300, hugepageLimits: [{ pageSize: "2MB", limit: 2 }, { pageSize: "1GB", limit: 3 }], unified: { b: "2" } });
  assert.deepEqual(m, {
    ...base,
    cpuPeriod: 100000,
    cpuQuota: 50000,
    cpuShares: 300,
    memoryLimitInBytes: 64 << 20,
    cpusetCpus: "0",
    hugepageLimits: [{ pageSize: "2MB", limit: 2 }, { pageSize: "1GB", limit: 3 }],
    unified: { a: "1", b: "2" },
  });
  assert.deepEqual(mergeResources(null, { ...base, cpuShares: 4 }), { ...base, cpuShares: 4 });
});

test("applyResources writes OCI linux.resources, keeps devices, clamps oom_score_adj", () => {
  const spec = { linux: { resources: { devices: [{ allow: false, access: "rwm" }] } }, process: {} } as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  applyResources(
    spec,
    { ...base, cpuShares: 2, cpuQuota: 1000, cpuPeriod: 1000, cpusetCpus: "1", memoryLimitInBytes: 8 << 20, memorySwapLimitInBytes: -1, oomScoreAdj: -900, hugepageLimits: [{ pageSize: "2MB", limit: 0 }], unified: { "pids.max": "10" } },
    -500,
  );
  assert.deepEqual(spec.linux.resources, {
    devices: [{ allow: false, access: "rwm" }],
    cpu: { shares: 2, quota: 1000, period: 1000, cpus: "1" },
    memory: { limit: 8 << 20, swap: -1 },
    hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
    unified: { "pids.max": "10" },
  });
  assert.equal(spec.process.oomScoreAdj, -500);
});

test("an update is parsed without range checks; they run on the merged result", () => {
  const upd = resourcesFromProto(create(LinuxContainerResourcesSchema, { cpuQuota: 20000n }), what, { update: true });
  assert.equal(upd.cpuQuota, 20000);
  refused(() => resourcesFromProto(create(LinuxContainerResourcesSchema, { cpusetCpus: "a" }), what, { update: true }), /cpuset_cpus "a"/);
});
