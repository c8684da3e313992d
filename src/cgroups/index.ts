/**
 * The cgroups of containers on this host, v1 or v2: which directories hold a process's (or a
 * cgroup path's) counters, and reading them. Stateless apart from the layout, which is read once;
 * safe to use concurrently.
 */
import { hostCgroupLayout, cgroupDir, type CgroupLayout } from "./layout.js";
import { readProcCgroup } from "./proc-cgroup.js";
import { readCgroupStats, type CgroupDirs, type CgroupStats } from "./stats.js";

export { hostCgroupLayout, parseCgroupMounts, cgroupDir, type CgroupLayout, type CgroupVersion } from "./layout.js";
export { parseProcCgroup, readProcCgroup, type ProcCgroups } from "./proc-cgroup.js";
export { readCgroupStats, sumStats, type CgroupDirs, type CgroupStats, type MemoryStats } from "./stats.js";

/** The stats directories of cgroup path `cg` (same path in every hierarchy, as runc's cgroupfs driver makes it). */
export function dirsOfPath(layout: CgroupLayout, cg: string): CgroupDirs | undefined {
  if (layout.version === 2) return layout.v2 ? { version: 2, dir: cgroupDir(layout.v2, cg) } : undefined;
  const at = (c: string) => {
    const m = layout.v1.get(c);
    return m ? cgroupDir(m, cg) : undefined;
  };
  return { version: 1, ...opt("cpuacct", at("cpuacct")), ...opt("memory", at("memory")), ...opt("pids", at("pids")) };
}

/** The stats directories of a live process (undefined once it is gone). */
export async function dirsOfPid(layout: CgroupLayout, pid: number): Promise<CgroupDirs | undefined> {
  const pc = await readProcCgroup(pid);
  if (!pc) return undefined;
  if (layout.version === 2) return layout.v2 && pc.v2 !== undefined ? { version: 2, dir: cgroupDir(layout.v2, pc.v2) } : undefined;
  const at = (c: string) => {
    const m = layout.v1.get(c);
    const p = pc.v1.get(c);
    return m && p !== undefined ? cgroupDir(m, p) : undefined;
  };
  return { version: 1, ...opt("cpuacct", at("cpuacct")), ...opt("memory", at("memory")), ...opt("pids", at("pids")) };
}

function opt<K extends string>(k: K, v: string | undefined): { [P in K]?: string } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: string };
}

/** Counters of the cgroup a live process is in; empty when the process is gone. */
export async function statsOfPid(pid: number, layout?: CgroupLayout): Promise<CgroupStats> {
  const dirs = await dirsOfPid(layout ?? (await hostCgroupLayout()), pid);
  return dirs ? readCgroupStats(dirs) : {};
}
