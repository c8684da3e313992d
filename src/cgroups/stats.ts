/**
 * Usage counters of one cgroup, read straight from its files (no process spawn, no shim call):
 * cumulative CPU time, memory usage and working set, process count. Values are bigint because
 * v1 reports "no limit" as 2^63 rounded down to a page, beyond Number's exact range.
 *
 * Working set follows cadvisor and containerd: usage minus inactive file pages (page cache the
 * kernel can drop at once), never below zero.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";

export interface MemoryStats {
  usageBytes: bigint;
  workingSetBytes: bigint;
  /** undefined: no limit. */
  limitBytes?: bigint;
  rssBytes: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
}

export interface CgroupStats {
  /** Cumulative CPU time of all tasks, all cores, ns; undefined if the controller is absent. */
  cpuUsageNs?: bigint;
  memory?: MemoryStats;
  pids?: bigint;
}

/** The directories to read: one per v1 controller, or the single v2 directory. */
export type CgroupDirs = { version: 1; cpuacct?: string; memory?: string; pids?: string } | { version: 2; dir: string };

/** v1 writes a page-rounded 2^63-1 for "no limit"; anything this large is no limit. */
const V1_NO_LIMIT = 1n << 62n;

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    // The cgroup vanishes when its last task exits and runc removes it: no stats, not an error.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENODEV" || code === "ESRCH") return undefined;
    throw err;
  }
}

async function readBig(file: string): Promise<bigint | undefined> {
  const t = (await readText(file))?.trim();
  if (t === undefined || !/^\d+$/.test(t)) return undefined;
  return BigInt(t);
}

/** "key value" lines (memory.stat, cpu.stat) → map. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}

function workingSet(usage: bigint, inactiveFile: bigint): bigint {
  return usage > inactiveFile ? usage - inactiveFile : 0n;
}

async function readV1Memory(dir: string): Promise<MemoryStats | undefined> {
  const [usage, limit, statText] = await Promise.all([
    readBig(path.join(dir, "memory.usage_in_bytes")),
    readBig(path.join(dir, "memory.limit_in_bytes")),
    readText(path.join(dir, "memory.stat")),
  ]);
  if (usage === undefined || statText === undefined) return undefined;
  const st = parseFlatKeyed(statText);
  // total_* include descendants (a pod cgroup holds its containers); plain keys are the fallback.
  const get = (k: string) => st.get(`total_${k}`) ?? st.get(k) ?? 0n;
  return {
    usageBytes: usage,
    workingSetBytes: workingSet(usage, get("inactive_file")),
    ...(limit !== undefined && limit < V1_NO_LIMIT ? { limitBytes: limit } : {}),
    rssBytes: get("rss"),
    pageFaults: get("pgfault"),
    majorPageFaults: get("pgmajfault"),
  };
}

async function readV2Memory(dir: string): Promise<MemoryStats | undefined> {
  const [usage, maxText, statText] = await Promise.all([
    readBig(path.join(dir, "memory.current")),
    readText(path.join(dir, "memory.max")),
    readText(path.join(dir, "memory.stat")),
  ]);
  if (usage === undefined || statText === undefined) return undefined;
  const st = parseFlatKeyed(statText);
  const max = maxText?.trim();
  return {
    usageBytes: usage,
    workingSetBytes: workingSet(usage, st.get("inactive_file") ?? 0n),
    ...(max && /^\d+$/.test(max) ? { limitBytes: BigInt(max) } : {}),
    rssBytes: st.get("anon") ?? 0n,
    pageFaults: st.get("pgfault") ?? 0n,
    majorPageFaults: st.get("pgmajfault") ?? 0n,
  };
}

/** Reads what exists of the cgroup's counters; a vanished cgroup gives an empty result. */
export async function readCgroupStats(dirs: CgroupDirs): Promise<CgroupStats> {
  if (dirs.version === 1) {
    const [cpu, memory, pids] = await Promise.all([
      dirs.cpuacct ? readBig(path.join(dirs.cpuacct, "cpuacct.usage")) : undefined,
      dirs.memory ? readV1Memory(dirs.memory) : undefined,
      dirs.pids ? readBig(path.join(dirs.pids, "pids.current")) : undefined,
    ]);
    return { ...(cpu !== undefined ? { cpuUsageNs: cpu } : {}), ...(memory ? { memory } : {}), ...(pids !== undefined ? { pids } : {}) };
  }
  const [cpuText, memory, pids] = await Promise.all([
    readText(path.join(dirs.dir, "cpu.stat")),
    readV2Memory(dirs.dir),
    readBig(path.join(dirs.dir, "pids.current")),
  ]);
  const usec = cpuText === undefined ? undefined : parseFlatKeyed(cpuText).get("usage_usec");
  return {
    ...(usec !== undefined ? { cpuUsageNs: usec * 1000n } : {}),
    ...(memory ? { memory } : {}),
    ...(pids !== undefined ? { pids } : {}),
  };
}

/** Adds counters of several cgroups (a pod without a cgroup parent: its containers and pause). */
export function sumStats(all: CgroupStats[]): CgroupStats {
  const out: CgroupStats = {};
  for (const s of all) {
    if (s.cpuUsageNs !== undefined) out.cpuUsageNs = (out.cpuUsageNs ?? 0n) + s.cpuUsageNs;
    if (s.pids !== undefined) out.pids = (out.pids ?? 0n) + s.pids;
    if (s.memory) {
      const m = out.memory;
      out.memory = m
        ? {
            usageBytes: m.usageBytes + s.memory.usageBytes,
            workingSetBytes: m.workingSetBytes + s.memory.workingSetBytes,
            rssBytes: m.rssBytes + s.memory.rssBytes,
            pageFaults: m.pageFaults + s.memory.pageFaults,
            majorPageFaults: m.majorPageFaults + s.memory.majorPageFaults,
          }
        : { ...s.memory, limitBytes: undefined };
      if (out.memory.limitBytes === undefined) delete out.memory.limitBytes;
    }
  }
  return out;
}
