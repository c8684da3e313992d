/**
 * Container and pod statistics for the CRI stats RPCs, read from the host: cgroup files (CPU,
 * memory, process count), the snapshotter's usage of each container's writable layer, and the
 * pod network namespace's interface counters. No process is spawned per call.
 *
 * Invariants:
 * - A container's cgroup is the one its init process is in (/proc/<pid>/cgroup): exactly where
 *   runc put it, with or without a cgroups path in the spec. Not running → no CPU/memory sample.
 * - A pod's cgroup is its cgroup parent when it has one (it holds the pause process and every
 *   container); without one the pod's numbers are the sum of its pause process and containers.
 * - Writable-layer usage walks the upper directory, so it is cached per container for
 *   WRITABLE_CACHE_MS and concurrent callers share one walk.
 * - usage_nano_cores needs two samples: it is reported from the second call on, over the time
 *   between them (per-id state, dropped when the id disappears).
 */
import * as path from "node:path";
import { SNAPSHOT_LABEL } from "../containers/from-image.js";
import { dirsOfPath, dirsOfPid, hostCgroupLayout, readCgroupStats, sumStats, type CgroupStats, type MemoryStats } from "../cgroups/index.js";
import type { CriDeps } from "./deps.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";
import { DEFAULT_INTERFACE, readNetDev, type InterfaceCounters } from "./stats-net.js";

export const WRITABLE_CACHE_MS = 5000;
const WALK_TIMEOUT_MS = 60_000;

export interface CpuSample {
  timestampNs: bigint;
  usageCoreNs: bigint;
  /** Average over the time since the previous sample of the same id; undefined on the first. */
  usageNanoCores?: bigint;
}

export interface MemorySample extends MemoryStats {
  timestampNs: bigint;
  /** limit - working set (0 when over); undefined without a limit. */
  availableBytes?: bigint;
}

export interface WritableLayerSample {
  timestampNs: bigint;
  mountpoint: string;
  usedBytes: bigint;
  inodesUsed: bigint;
}

export interface ContainerSample {
  container: ContainerRecord;
  cpu?: CpuSample;
  memory?: MemorySample;
  writableLayer?: WritableLayerSample;
}

export interface PodSample {
  pod: SandboxRecord;
  cpu?: CpuSample;
  memory?: MemorySample;
  processCount?: { timestampNs: bigint; count: bigint };
  network?: { timestampNs: bigint; defaultInterface?: InterfaceCounters; interfaces: InterfaceCounters[] };
  containers: ContainerSample[];
}

const nowNs = () => BigInt(Date.now()) * 1_000_000n;

export class StatsCollector {
  readonly #lastCpu = new Map<string, { at: bigint; usage: bigint }>();
  readonly #writable = new Map<string, { at: number; value: Promise<WritableLayerSample | undefined> }>();

  constructor(private readonly d: Pick<CriDeps, "containers" | "snapshotter" | "cfg" | "log">) {}

  async container(c: ContainerRecord): Promise<ContainerSample> {
    const [cg, writableLayer] = await Promise.all([
      c.state === "running" && c.pid > 0 ? this.#cgroupOfPid(c.pid) : Promise.resolve(undefined),
      this.#writableLayer(c.id),
    ]);
    return { container: c, ...this.#cpuMemory(`c:${c.id}`, cg), ...(writableLayer ? { writableLayer } : {}) };
  }

  /** `containers`: the pod's containers to report (the caller filters out incomplete ones). */
  async pod(p: SandboxRecord, containers: ContainerRecord[]): Promise<PodSample> {
    const samples = await Promise.all(containers.map((c) => this.container(c)));
    const ready = p.state === "ready" && p.pid > 0;
    let cg: CgroupStats | undefined;
    if (ready && p.cgroupParent) {
      const dirs = dirsOfPath(await hostCgroupLayout(), p.cgroupParent);
      cg = dirs ? await readCgroupStats(dirs) : undefined;
    } else if (ready) {
      const running = containers.filter((c) => c.state === "running" && c.pid > 0);
      cg = sumStats((await Promise.all([p.pid, ...running.map((c) => c.pid)].map((pid) => this.#cgroupOfPid(pid)))).flatMap((s) => (s ? [s] : [])));
    }
    const ts = nowNs();
    const out: PodSample = { pod: p, ...this.#cpuMemory(`p:${p.id}`, cg), containers: samples };
    if (cg?.pids !== undefined) out.processCount = { timestampNs: ts, count: cg.pids };
    if (ready && p.netns) {
      const ifaces = await readNetDev(p.pid);
      if (ifaces) {
        const def = ifaces.find((i) => i.name === DEFAULT_INTERFACE);
        out.network = { timestampNs: ts, ...(def ? { defaultInterface: def } : {}), interfaces: ifaces.filter((i) => i !== def) };
      }
    }
    return out;
  }

  /** Drops per-id state of ids no longer listed (called after list RPCs). */
  retain(ids: Set<string>): void {
    for (const k of this.#lastCpu.keys()) if (!ids.has(k.slice(2))) this.#lastCpu.delete(k);
    for (const k of this.#writable.keys()) if (!ids.has(k)) this.#writable.delete(k);
  }

  async #cgroupOfPid(pid: number): Promise<CgroupStats | undefined> {
    const dirs = await dirsOfPid(await hostCgroupLayout(), pid);
    return dirs ? readCgroupStats(dirs) : undefined;
  }

  #cpuMemory(key: string, cg: CgroupStats | undefined): { cpu?: CpuSample; memory?: MemorySample } {
    if (!cg) return {};
    const ts = nowNs();
    const out: { cpu?: CpuSample; memory?: MemorySample } = {};
    if (cg.cpuUsageNs !== undefined) {
      const prev = this.#lastCpu.get(key);
      const cpu: CpuSample = { timestampNs: ts, usageCoreNs: cg.cpuUsageNs };
      if (prev && ts > prev.at && cg.cpuUsageNs >= prev.usage) cpu.usageNanoCores = ((cg.cpuUsageNs - prev.usage) * 1_000_000_000n) / (ts - prev.at);
      this.#lastCpu.set(key, { at: ts, usage: cg.cpuUsageNs });
      out.cpu = cpu;
    }
    if (cg.memory) {
      const m = cg.memory;
      out.memory = {
        ...m,
        timestampNs: ts,
        ...(m.limitBytes !== undefined ? { availableBytes: m.limitBytes > m.workingSetBytes ? m.limitBytes - m.workingSetBytes : 0n } : {}),
      };
    }
    return out;
  }

  /** Usage of the container's own snapshot (its upper dir), cached; undefined if it has none. */
  #writableLayer(id: string): Promise<WritableLayerSample | undefined> {
    const hit = this.#writable.get(id);
    if (hit && Date.now() - hit.at < WRITABLE_CACHE_MS) return hit.value;
    const value = (async () => {
      const key = this.d.containers.get(id).labels[SNAPSHOT_LABEL];
      if (!key) return undefined;
      // Shared by concurrent callers, so bounded by its own timeout rather than one caller's signal.
      const u = await this.d.snapshotter.usage(key, { signal: AbortSignal.timeout(WALK_TIMEOUT_MS) });
      return { timestampNs: nowNs(), mountpoint: path.join(this.d.cfg.root, "snapshots"), usedBytes: BigInt(u.size), inodesUsed: BigInt(u.inodes) };
    })();
    // A failure (container removed meanwhile, caller cancelled) is not cached.
    const entry = { at: Date.now(), value };
    value.catch(() => {
      if (this.#writable.get(id) === entry) this.#writable.delete(id);
    });
    this.#writable.set(id, entry);
    return value.catch((err: unknown) => {
      this.d.log.debug({ container: id, err: (err as Error).message }, "writable layer usage not available");
      return undefined;
    });
  }
}
