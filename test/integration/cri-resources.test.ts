/**
 * CRI resources and stats against a real daemon, runc and cgroups: resource limits land in the
 * container's cgroup, UpdateContainerResources changes them on a running container (and in the
 * stored spec of a created one) and survives a daemon restart in ContainerStatus; bad values are
 * InvalidArgument with nothing created; container and pod stats move when a container burns CPU,
 * fills memory and writes its layer, and pod network counters move with traffic; cpusets and the
 * OOM score adjustment are seen by the kernel for the container's process.
 * (OOM kill past a memory limit is covered by cri-oom.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients, rejectsWith, type Reply } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import type { Daemon } from "../../src/daemon/daemon.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The host's online CPUs, from the kernel's list ("0-3,8"). */
async function onlineCpus(): Promise<number[]> {
  const text = (await readFile("/sys/devices/system/cpu/online", "utf8")).trim();
  return text.split(",").flatMap((r) => {
    const [a, b = a] = r.split("-").map(Number);
    return Array.from({ length: b! - a! + 1 }, (_, i) => a! + i);
  });
}
const MiB = 1024 * 1024;

/** The host directory of a v1 controller's cgroup of `pid` (read independently of skiff's code). */
async function cgroupFile(pid: number, controller: string, file: string): Promise<string> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).split("\n");
  const line = lines.find((l) => l.split(":")[1]?.split(",").includes(controller));
  assert.ok(line, `pid ${pid} is in a ${controller} cgroup`);
  const rel = line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
  return (await readFile(path.join("/sys/fs/cgroup", controller, rel, file), "utf8")).trim();
}

async function pidOf(runtime: grpc.Client, id: string): Promise<number> {
  const r = await call(runtime, "ContainerStatus", { container_id: id, verbose: true });
  return (JSON.parse(r.info.info) as { pid: number }).pid;
}

/** Polls `fn` until it returns a truthy value (or fails with the last value). */
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

test("resources: limits in the cgroup, updates, restart, stats, bad input", { timeout: 180_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  let d: Daemon = await startDaemon(env);
  let clients = criClients(env.cfg.socket);
  t.after(async () => {
    clients.close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const rt = () => clients.runtime;
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const pod = (await call(rt(), "RunPodSandbox", { config: podConfig("res", logDir) })).pod_sandbox_id as string;
  const podCfg = podConfig("res", logDir);
  const create = (name: string, cmd: string[], resources?: object) =>
    call(rt(), "CreateContainer", { pod_sandbox_id: pod, sandbox_config: podCfg, config: ctrConfig(name, cmd, resources ? { linux: { resources } } : {}) });

  const online = await onlineCpus();
  const offline = Array.from({ length: 1000 }, (_, i) => i).filter((c) => !online.includes(c));
  const [firstCpu, lastCpu] = [online[0]!, online.at(-1)!];
  // Bad input: InvalidArgument naming the container and the field; nothing created.
  const bad: [object, RegExp][] = [
    [{ cpu_shares: -1 }, /container "bad"[^:]*: cpu_shares -1 is negative/],
    [{ cpu_quota: 50000 }, /container "bad"[^:]*: cpu_quota 50000 needs a cpu_period/],
    [{ cpu_period: 500, cpu_quota: 1000 }, /container "bad"[^:]*: cpu_period 500 is outside/],
    [{ cpuset_cpus: "0-" }, /container "bad"[^:]*: cpuset_cpus "0-"/],
    [{ cpuset_cpus: "0-999" }, new RegExp(`container "bad"[^:]*: cpuset_cpus "0-999" names ${offline.slice(0, 4).join(", ")}, … \\(not online`)],
    [{ memory_limit_in_bytes: 4096 }, /container "bad"[^:]*: memory_limit_in_bytes 4096 is below/],
    [{ hugepage_limits: [{ page_size: "3MB", limit: 0 }] }, /container "bad"[^:]*: hugepage_limits\[0\]: page size 3MB is not available/],
    [{ unified: { "memory.high": "100000000" } }, /container "bad"[^:]*: unified resources .* need cgroup v2; this host uses cgroup v1/],
  ];
  for (const [resources, re] of bad) await rejectsWith(create("bad", ["true"], resources), grpc.status.INVALID_ARGUMENT, re);
  assert.equal((await call(rt(), "ListContainers", {})).containers.length, 0, "nothing created by refused requests");

  // Limits at create land in the cgroup.
  const burn = (
    await create("burn", ["sh", "-c", "while :; do :; done"], { cpu_period: 100000, cpu_quota: 50000, memory_limit_in_bytes: 64 * MiB, cpu_shares: 512 })
  ).container_id as string;
  await call(rt(), "StartContainer", { container_id: burn });
  await waitState(rt(), burn, "CONTAINER_RUNNING");
  const burnPid = await pidOf(rt(), burn);
  assert.equal(await cgroupFile(burnPid, "cpu", "cpu.cfs_quota_us"), "50000");
  assert.equal(await cgroupFile(burnPid, "cpu", "cpu.cfs_period_us"), "100000");
  assert.equal(await cgroupFile(burnPid, "cpu", "cpu.shares"), "512");
  assert.equal(await cgroupFile(burnPid, "memory", "memory.limit_in_bytes"), String(64 * MiB));

  // UpdateContainerResources on the running container: set fields change, unset ones stay.
  await call(rt(), "UpdateContainerResources", { container_id: burn, linux: { cpu_quota: 20000, memory_limit_in_bytes: 128 * MiB } });
  assert.equal(await cgroupFile(burnPid, "cpu", "cpu.cfs_quota_us"), "20000");
  assert.equal(await cgroupFile(burnPid, "cpu", "cpu.cfs_period_us"), "100000");
  assert.equal(await cgroupFile(burnPid, "memory", "memory.limit_in_bytes"), String(128 * MiB));
  // A refused update changes nothing.
  await rejectsWith(call(rt(), "UpdateContainerResources", { container_id: burn, linux: { cpu_shares: -5 } }), grpc.status.INVALID_ARGUMENT, /cpu_shares -5 is negative/);
  await rejectsWith(call(rt(), "UpdateContainerResources", { container_id: burn, linux: { cpuset_cpus: "a" } }), grpc.status.INVALID_ARGUMENT, /container "[0-9a-f]+": cpuset_cpus "a"/);
  await rejectsWith(call(rt(), "UpdateContainerResources", { container_id: "nope", linux: {} }), grpc.status.NOT_FOUND, /container "nope" not found/);
  assert.equal(await cgroupFile(burnPid, "cpu", "cpu.shares"), "512");
  const res = (await call(rt(), "ContainerStatus", { container_id: burn })).status.resources.linux as Reply;
  assert.deepEqual(
    [res.cpu_period, res.cpu_quota, res.cpu_shares, res.memory_limit_in_bytes],
    ["100000", "20000", "512", String(128 * MiB)],
    "ContainerStatus shows the updated resources",
  );

  // A created container: the update goes to its stored spec, applied when it starts.
  const later = (await create("later", ["sleep", "1000"])).container_id as string;
  await call(rt(), "UpdateContainerResources", { container_id: later, linux: { cpu_shares: 300, memory_limit_in_bytes: 48 * MiB, cpuset_cpus: String(lastCpu), cpuset_mems: "0", oom_score_adj: 500 } });
  await call(rt(), "StartContainer", { container_id: later });
  const laterPid = await pidOf(rt(), later);
  assert.equal(await cgroupFile(laterPid, "cpu", "cpu.shares"), "300");
  assert.equal(await cgroupFile(laterPid, "memory", "memory.limit_in_bytes"), String(48 * MiB));
  // cpuset and OOM score, seen by the kernel for the container's process.
  assert.equal(await cgroupFile(laterPid, "cpuset", "cpuset.cpus"), String(lastCpu));
  assert.equal(await cgroupFile(laterPid, "cpuset", "cpuset.mems"), "0");
  assert.match(await readFile(`/proc/${laterPid}/status`, "utf8"), new RegExp(`^Cpus_allowed_list:\\s+${lastCpu}$`, "m"));
  assert.equal((await readFile(`/proc/${laterPid}/oom_score_adj`, "utf8")).trim(), "500");
  // And a cpuset update on the running container moves it (to another CPU where the host has two).
  await call(rt(), "UpdateContainerResources", { container_id: later, linux: { cpuset_cpus: String(firstCpu) } });
  assert.equal(await cgroupFile(laterPid, "cpuset", "cpuset.cpus"), String(firstCpu));
  assert.match(await readFile(`/proc/${laterPid}/status`, "utf8"), new RegExp(`^Cpus_allowed_list:\\s+${firstCpu}$`, "m"));

  // CPU stats move while the container burns (20% of a core allowed).
  const cpuOf = async () => BigInt((await call(rt(), "ContainerStats", { container_id: burn })).stats.cpu.usage_core_nano_seconds.value as string);
  const c0 = await cpuOf();
  await sleep(1500);
  const c1Stats = (await call(rt(), "ContainerStats", { container_id: burn })).stats;
  const used = BigInt(c1Stats.cpu.usage_core_nano_seconds.value as string) - c0;
  assert.ok(used > 100_000_000n, `burned ${used} ns in 1.5 s`);
  assert.ok(used < 1_000_000_000n, `quota of 20% holds (${used} ns in 1.5 s)`);
  assert.ok(BigInt(c1Stats.cpu.usage_nano_cores.value as string) > 0n, "usage_nano_cores from the second sample");
  assert.equal(c1Stats.attributes.id, burn);
  assert.equal(c1Stats.attributes.metadata.name, "burn");

  // Memory and writable layer: 40 MiB in /dev/shm (tmpfs, charged to the container and never
  // inactive file cache) and 4 MiB written into the container's own layer.
  const mem = (
    await create("mem", ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; dd if=/dev/zero of=/layer bs=1M count=4 2>/dev/null; sleep 1000"])
  ).container_id as string;
  await call(rt(), "StartContainer", { container_id: mem });
  const memStats = await until("memory working set ≥ 40 MiB and writable layer ≥ 4 MiB", async () => {
    const s = (await call(rt(), "ContainerStats", { container_id: mem })).stats;
    const ws = BigInt(s.memory?.working_set_bytes?.value ?? "0");
    const layer = BigInt(s.writable_layer?.used_bytes?.value ?? "0");
    return ws >= 40n * BigInt(MiB) && layer >= 4n * BigInt(MiB) && s;
  });
  assert.ok(BigInt(memStats.memory.usage_bytes.value as string) >= BigInt(memStats.memory.working_set_bytes.value as string));
  assert.ok(BigInt(memStats.writable_layer.inodes_used.value as string) > 0n);

  // List filters: by id prefix, pod and labels.
  const byLabel = (await call(rt(), "ListContainerStats", { filter: { label_selector: { c: "mem" } } })).stats as Reply[];
  assert.deepEqual(byLabel.map((s) => s.attributes.id), [mem]);
  const byId = (await call(rt(), "ListContainerStats", { filter: { id: burn.slice(0, 12) } })).stats as Reply[];
  assert.deepEqual(byId.map((s) => s.attributes.id), [burn]);
  const byPod = (await call(rt(), "ListContainerStats", { filter: { pod_sandbox_id: pod } })).stats as Reply[];
  assert.deepEqual(byPod.map((s) => s.attributes.id).sort(), [burn, later, mem].sort());
  assert.equal((await call(rt(), "ListContainerStats", { filter: { pod_sandbox_id: "ffff" } })).stats.length, 0);

  // Pod stats: the pod's containers summed, and network bytes moving with traffic.
  const podStats = async () => (await call(rt(), "PodSandboxStats", { pod_sandbox_id: pod })).stats as Reply;
  const p0 = await podStats();
  assert.equal(p0.attributes.id, pod);
  assert.equal(p0.linux.containers.length, 3);
  assert.ok(BigInt(p0.linux.memory.working_set_bytes.value as string) >= 40n * BigInt(MiB), "pod memory includes its containers");
  assert.ok(BigInt(p0.linux.cpu.usage_core_nano_seconds.value as string) >= BigInt(c1Stats.cpu.usage_core_nano_seconds.value as string));
  assert.ok(BigInt(p0.linux.process.process_count.value as string) >= 4n, "pause + 3 containers");
  assert.equal(p0.linux.network.default_interface.name, "eth0");
  const rx0 = BigInt(p0.linux.network.default_interface.rx_bytes.value as string);
  const tx0 = BigInt(p0.linux.network.default_interface.tx_bytes.value as string);
  const gateway = env.cfg.cni.defaultSubnet.split(".").slice(0, 3).join(".") + ".1";
  const ping = await call(rt(), "ExecSync", { container_id: mem, cmd: ["ping", "-c", "3", "-s", "1000", "-W", "2", gateway], timeout: 15 });
  assert.equal(ping.exit_code, 0, `ping ${gateway}: ${String(ping.stdout)}${String(ping.stderr)}`);
  const p1 = await podStats();
  assert.ok(BigInt(p1.linux.network.default_interface.tx_bytes.value as string) >= tx0 + 3000n, "3 pings of 1000 bytes sent");
  assert.ok(BigInt(p1.linux.network.default_interface.rx_bytes.value as string) >= rx0 + 3000n, "3 replies received");
  const listed = (await call(rt(), "ListPodSandboxStats", { filter: { label_selector: { app: "res" } } })).stats as Reply[];
  assert.deepEqual(listed.map((s) => s.attributes.id), [pod]);
  assert.equal((await call(rt(), "ListPodSandboxStats", { filter: { id: "ffff" } })).stats.length, 0);
  await rejectsWith(call(rt(), "PodSandboxStats", { pod_sandbox_id: "nope" }), grpc.status.NOT_FOUND, /pod sandbox "nope" not found/);
  await rejectsWith(call(rt(), "ContainerStats", { container_id: "nope" }), grpc.status.NOT_FOUND, /container "nope" not found/);

  // A daemon restart keeps the updated resources (the containers keep running in their shims).
  clients.close();
  await d.close();
  d = await startDaemon(env);
  clients = criClients(env.cfg.socket);
  const after = (await call(rt(), "ContainerStatus", { container_id: burn })).status as Reply;
  assert.equal(after.state, "CONTAINER_RUNNING");
  assert.deepEqual([after.resources.linux.cpu_quota, after.resources.linux.memory_limit_in_bytes], ["20000", String(128 * MiB)]);
  assert.equal((await call(rt(), "ContainerStatus", { container_id: later })).status.resources.linux.cpu_shares, "300");

  // Not running any more: an update is refused as a precondition.
  await call(rt(), "StopContainer", { container_id: later, timeout: 0 });
  await rejectsWith(call(rt(), "UpdateContainerResources", { container_id: later, linux: { cpu_shares: 400 } }), grpc.status.FAILED_PRECONDITION, /EXITED/);

  await call(rt(), "StopPodSandbox", { pod_sandbox_id: pod });
  await call(rt(), "RemovePodSandbox", { pod_sandbox_id: pod });
});
