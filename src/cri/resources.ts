/**
 * CRI LinuxContainerResources: validation, the host facts they are checked against, merging for
 * UpdateContainerResources and the OCI `linux.resources` they become.
 *
 * Limits are the kernel's and runc's, so a bad value is refused before anything is created
 * instead of failing later inside runc (where it surfaces as an opaque start error):
 * - cpu_period: CFS period 1 ms .. 1 s (1000 .. 1000000 µs), the kernel's accepted range.
 * - cpu_quota: -1 or 0 (no limit) or at least 1000 µs (the kernel's minimum quota); a quota
 *   needs a period to be measured against (refused without one, never guessed).
 * - cpu_shares: 2 .. 262144, the kernel's range; runc reads the value back and fails otherwise.
 * - memory_limit_in_bytes: 0 (no limit) or at least 6 MiB, Docker's floor: below it runc's own
 *   init process cannot start in the cgroup.
 * - memory_swap_limit_in_bytes: -1 / 0, or at least the memory limit (runc's rule); needs swap
 *   accounting (memory.memsw.* on v1).
 * - oom_score_adj: -1000 .. 1000 (proc(5)).
 * - cpuset_cpus / cpuset_mems: Linux list format ("0-3,5"), CPUs/nodes online on this host.
 * - hugepage_limits: page sizes this host has (/sys/kernel/mm/hugepages) in the kernel's naming
 *   ("2MB", "1GB"), and a hugetlb controller where runc will look for it.
 * - unified: cgroup v2 only ("controller.file" keys).
 */
import { readdir, readFile, access } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import type { LinuxContainerResources } from "../gen/runtime/v1/api_pb.js";
import { hostCgroupLayout } from "../cgroups/index.js";
import type { Spec } from "./spec-util.js";

export interface HugepageLimitRecord {
  /** Kernel naming: "2MB", "1GB". */
  pageSize: string;
  limit: number;
}

/** The resources of a container as stored in its CRI record (0 / "" = not set). */
export interface ContainerResources {
  cpuPeriod: number;
  cpuQuota: number;
  cpuShares: number;
  memoryLimitInBytes: number;
  oomScoreAdj: number;
  cpusetCpus: string;
  cpusetMems: string;
  memorySwapLimitInBytes?: number;
  hugepageLimits?: HugepageLimitRecord[];
  unified?: Record<string, string>;
}

export const MIN_CPU_PERIOD_US = 1000;
export const MAX_CPU_PERIOD_US = 1_000_000;
export const MIN_CPU_QUOTA_US = 1000;
export const MIN_CPU_SHARES = 2;
export const MAX_CPU_SHARES = 262_144;
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

function int(v: bigint, what: string, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw invalidArgument(`${what}: ${field} ${v} is out of range`);
  return Number(v);
}

/** Parses a Linux CPU/node list ("0-3,8,10-11") into its members; InvalidArgument when malformed. */
export function parseCpuList(s: string, what: string, field: string): number[] {
  const out: number[] = [];
  for (const part of s.split(",")) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part.trim());
    if (!m) throw invalidArgument(`${what}: ${field} "${s.slice(0, 64)}" is not a list like "0-3,5"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw invalidArgument(`${what}: ${field} "${s.slice(0, 64)}": range ${part} runs backwards`);
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

const PAGE_SIZE_RE = /^(\d+)(KB|MB|GB|TB|PB)$/;
const UNIFIED_KEY_RE = /^[a-z_]+\.[a-z0-9_.]+$/;

/**
 * The request's resources, syntax and ranges checked (host-independent; ranges are left to the
 * caller for an `update`). `what` names the container; every error names it and the field.
 */
export function resourcesFromProto(r: LinuxContainerResources, what: string, opts: { update?: boolean } = {}): ContainerResources {
  const out: ContainerResources = {
    cpuPeriod: int(r.cpuPeriod, what, "cpu_period"),
    cpuQuota: int(r.cpuQuota, what, "cpu_quota"),
    cpuShares: int(r.cpuShares, what, "cpu_shares"),
    memoryLimitInBytes: int(r.memoryLimitInBytes, what, "memory_limit_in_bytes"),
    oomScoreAdj: int(r.oomScoreAdj, what, "oom_score_adj"),
    cpusetCpus: r.cpusetCpus.trim(),
    cpusetMems: r.cpusetMems.trim(),
  };
  if (out.cpusetCpus) parseCpuList(out.cpusetCpus, what, "cpuset_cpus");
  if (out.cpusetMems) parseCpuList(out.cpusetMems, what, "cpuset_mems");
  const swap = int(r.memorySwapLimitInBytes, what, "memory_swap_limit_in_bytes");
  if (swap !== 0) out.memorySwapLimitInBytes = swap;
  if (r.hugepageLimits.length) {
    out.hugepageLimits = r.hugepageLimits.map((h, i) => {
      if (!PAGE_SIZE_RE.test(h.pageSize)) throw invalidArgument(`${what}: hugepage_limits[${i}]: page_size "${h.pageSize.slice(0, 32)}" is not like "2MB" or "1GB"`);
      return { pageSize: h.pageSize, limit: int(BigInt(h.limit), what, `hugepage_limits[${i}].limit`) };
    });
  }
  const unified = Object.entries(r.unified);
  if (unified.length) {
    for (const [k] of unified) {
      if (!UNIFIED_KEY_RE.test(k)) throw invalidArgument(`${what}: unified key "${k.slice(0, 64)}" is not a cgroup v2 file name like "memory.high"`);
    }
    out.unified = Object.fromEntries(unified);
  }
  // An update is checked once merged with the current values (a new quota may rely on the
  // period set at create).
  if (!opts.update) checkRanges(out, what);
  return out;
}

/** Range and consistency rules (see the file comment); run again after merging an update. */
export function checkRanges(r: ContainerResources, what: string): void {
  if (r.cpuPeriod !== 0 && (r.cpuPeriod < MIN_CPU_PERIOD_US || r.cpuPeriod > MAX_CPU_PERIOD_US)) {
    throw invalidArgument(`${what}: cpu_period ${r.cpuPeriod} is outside ${MIN_CPU_PERIOD_US}..${MAX_CPU_PERIOD_US} µs`);
  }
  if (r.cpuQuota < -1) throw invalidArgument(`${what}: cpu_quota ${r.cpuQuota} is negative (only -1, no limit, is allowed)`);
  if (r.cpuQuota > 0 && r.cpuQuota < MIN_CPU_QUOTA_US) throw invalidArgument(`${what}: cpu_quota ${r.cpuQuota} is below ${MIN_CPU_QUOTA_US} µs`);
  if (r.cpuQuota > 0 && r.cpuPeriod === 0) throw invalidArgument(`${what}: cpu_quota ${r.cpuQuota} needs a cpu_period`);
  if (r.cpuShares < 0) throw invalidArgument(`${what}: cpu_shares ${r.cpuShares} is negative`);
  if (r.cpuShares !== 0 && (r.cpuShares < MIN_CPU_SHARES || r.cpuShares > MAX_CPU_SHARES)) {
    throw invalidArgument(`${what}: cpu_shares ${r.cpuShares} is outside ${MIN_CPU_SHARES}..${MAX_CPU_SHARES}`);
  }
  if (r.memoryLimitInBytes < 0) throw invalidArgument(`${what}: memory_limit_in_bytes ${r.memoryLimitInBytes} is negative`);
  if (r.memoryLimitInBytes !== 0 && r.memoryLimitInBytes < MIN_MEMORY_BYTES) {
    throw invalidArgument(`${what}: memory_limit_in_bytes ${r.memoryLimitInBytes} is below the minimum of ${MIN_MEMORY_BYTES} (6 MiB)`);
  }
  const swap = r.memorySwapLimitInBytes ?? 0;
  if (swap < -1) throw invalidArgument(`${what}: memory_swap_limit_in_bytes ${swap} is negative (only -1, no limit, is allowed)`);
  if (swap > 0 && (r.memoryLimitInBytes === 0 || swap < r.memoryLimitInBytes)) {
    throw invalidArgument(`${what}: memory_swap_limit_in_bytes ${swap} must be at least memory_limit_in_bytes (${r.memoryLimitInBytes}, which must be set)`);
  }
  if (r.oomScoreAdj < -1000 || r.oomScoreAdj > 1000) throw invalidArgument(`${what}: oom_score_adj ${r.oomScoreAdj} is outside -1000..1000`);
  if (r.cpusetCpus) parseCpuList(r.cpusetCpus, what, "cpuset_cpus");
  if (r.cpusetMems) parseCpuList(r.cpusetMems, what, "cpuset_mems");
  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    if (h.limit < 0) throw invalidArgument(`${what}: hugepage_limits[${i}].limit ${h.limit} is negative`);
  }
}

/** What of this host resources are checked against. */
export interface HostResources {
  cgroupVersion: 1 | 2;
  /** Kernel-named hugepage sizes present ("2MB", "1GB"). */
  hugepageSizes: string[];
  /** A hugetlb controller in the hierarchy runc uses (v1 mount, or enabled in v2's root). */
  hugetlb: boolean;
  /** Swap limits can be set (memory.memsw.* on v1; memory.swap.max on v2). */
  swap: boolean;
  cpus: Set<number>;
  mems: Set<number>;
}

/** Kernel's name of a hugepage size given in kB (hugetlb.<name>.limit_in_bytes). */
export function hugepageName(kb: number): string {
  if (kb >= 1024 * 1024) return `${kb / (1024 * 1024)}GB`;
  if (kb >= 1024) return `${kb / 1024}MB`;
  return `${kb}KB`;
}

const exists = (p: string) => access(p).then(() => true, () => false);

async function onlineList(file: string): Promise<Set<number>> {
  try {
    return new Set(parseCpuList((await readFile(file, "utf8")).trim(), "host", file));
  } catch {
    return new Set([0]);
  }
}

let cachedHost: Promise<HostResources> | undefined;

/** This host's facts, read once (hugepage pools, CPUs and cgroup mounts do not change under a daemon). */
export function hostResources(): Promise<HostResources> {
  cachedHost ??= (async (): Promise<HostResources> => {
    const layout = await hostCgroupLayout();
    const sizes = await readdir("/sys/kernel/mm/hugepages").catch(() => [] as string[]);
    const hugepageSizes = sizes.flatMap((d) => {
      const m = /^hugepages-(\d+)kB$/.exec(d);
      return m ? [hugepageName(Number(m[1]))] : [];
    });
    let hugetlb: boolean;
    let swap: boolean;
    if (layout.version === 1) {
      hugetlb = layout.v1.has("hugetlb");
      const mem = layout.v1.get("memory");
      swap = mem ? await exists(path.join(mem.mountpoint, "memory.memsw.limit_in_bytes")) : false;
    } else {
      const root = layout.v2?.mountpoint ?? "/sys/fs/cgroup";
      const controllers = await readFile(path.join(root, "cgroup.controllers"), "utf8").catch(() => "");
      hugetlb = controllers.split(/\s+/).includes("hugetlb");
      swap = (await readFile("/proc/swaps", "utf8").catch(() => "")).trim().split("\n").length > 1;
    }
    return {
      cgroupVersion: layout.version,
      hugepageSizes,
      hugetlb,
      swap,
      cpus: await onlineList("/sys/devices/system/cpu/online"),
      mems: await onlineList("/sys/devices/system/node/online"),
    };
  })();
  return cachedHost;
}

/** Host-dependent rules: hugepage sizes and controller, unified on v2 only, swap, online CPUs/nodes. */
export function checkHostResources(r: ContainerResources, what: string, host: HostResources): void {
  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    if (!host.hugepageSizes.includes(h.pageSize)) {
      const have = host.hugepageSizes.length ? `this host has ${host.hugepageSizes.join(", ")}` : "this host has no hugepages";
      throw invalidArgument(`${what}: hugepage_limits[${i}]: page size ${h.pageSize} is not available (${have})`);
    }
    if (!host.hugetlb) {
      throw invalidArgument(`${what}: hugepage_limits[${i}] (${h.pageSize}): no hugetlb cgroup controller on this host's cgroup v${host.cgroupVersion} hierarchy`);
    }
  }
  if (r.unified && host.cgroupVersion !== 2) {
    throw invalidArgument(`${what}: unified resources (${Object.keys(r.unified).slice(0, 3).join(", ")}) need cgroup v2; this host uses cgroup v1`);
  }
  if ((r.memorySwapLimitInBytes ?? 0) > 0 && !host.swap) {
    throw invalidArgument(`${what}: memory_swap_limit_in_bytes is set but swap accounting is not available on this host`);
  }
  const within = (list: string, set: Set<number>, field: string) => {
    if (!list) return;
    const bad = parseCpuList(list, what, field).filter((n) => !set.has(n));
    if (bad.length) {
      const shown = `${bad.slice(0, 4).join(", ")}${bad.length > 4 ? ", …" : ""}`;
      throw invalidArgument(`${what}: ${field} "${list.slice(0, 64)}" names ${shown} (not online on this host)`);
    }
  };
  within(r.cpusetCpus, host.cpus, "cpuset_cpus");
  within(r.cpusetMems, host.mems, "cpuset_mems");
}

/**
 * UpdateContainerResources as containerd applies it: every field the update sets (non-zero,
 * non-empty) replaces the current one; unset fields keep their value.
 */
export function mergeResources(cur: ContainerResources | null, upd: ContainerResources): ContainerResources {
  const base: ContainerResources = cur ?? { cpuPeriod: 0, cpuQuota: 0, cpuShares: 0, memoryLimitInBytes: 0, oomScoreAdj: 0, cpusetCpus: "", cpusetMems: "" };
  const out: ContainerResources = { ...base };
  for (const k of ["cpuPeriod", "cpuQuota", "cpuShares", "memoryLimitInBytes", "oomScoreAdj"] as const) if (upd[k] !== 0) out[k] = upd[k];
  if (upd.cpusetCpus) out.cpusetCpus = upd.cpusetCpus;
  if (upd.cpusetMems) out.cpusetMems = upd.cpusetMems;
  if (upd.memorySwapLimitInBytes !== undefined) out.memorySwapLimitInBytes = upd.memorySwapLimitInBytes;
  if (upd.hugepageLimits) {
    const byPage = new Map((base.hugepageLimits ?? []).map((h) => [h.pageSize, h]));
    for (const h of upd.hugepageLimits) byPage.set(h.pageSize, h);
    out.hugepageLimits = [...byPage.values()];
  }
  if (upd.unified) out.unified = { ...(base.unified ?? {}), ...upd.unified };
  return out;
}

/** The OCI LinuxResources fields for `r` (devices untouched; the caller keeps its own). */
export function ociResources(r: ContainerResources): Record<string, unknown> {
  const res: Record<string, unknown> = {};
  const cpu: Record<string, unknown> = {};
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.cpuQuota) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) res.cpu = cpu;
  const memory: Record<string, unknown> = {};
  if (r.memoryLimitInBytes) memory.limit = r.memoryLimitInBytes;
  if (r.memorySwapLimitInBytes) memory.swap = r.memorySwapLimitInBytes;
  if (Object.keys(memory).length) res.memory = memory;
  if (r.hugepageLimits?.length) res.hugepageLimits = r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: h.limit }));
  if (r.unified && Object.keys(r.unified).length) res.unified = { ...r.unified };
  return res;
}

/** Writes `r` into a spec's `linux.resources` and `process.oomScoreAdj` (clamped to `minOomScoreAdj`). */
export function applyResources(spec: Spec, r: ContainerResources, minOomScoreAdj: number): void {
  const res = (spec.linux.resources ??= {}) as Record<string, unknown>;
  Object.assign(res, ociResources(r));
  if (r.oomScoreAdj) spec.process.oomScoreAdj = Math.max(r.oomScoreAdj, minOomScoreAdj);
}
