/**
 * RuntimeService handlers for statistics and resource updates: ContainerStats, ListContainerStats,
 * PodSandboxStats, ListPodSandboxStats and UpdateContainerResources. Thin: look the object up
 * (full id or unique prefix), call the stats collector or the update, convert to runtime.v1.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ContainerStatsResponseSchema,
  ContainerStatsSchema,
  ListContainerStatsResponseSchema,
  ListPodSandboxStatsResponseSchema,
  PodSandboxStatsResponseSchema,
  PodSandboxStatsSchema,
  UpdateContainerResourcesResponseSchema,
  type ContainerStats as PbContainerStats,
  type MemoryUsageSchema,
  type NetworkInterfaceUsageSchema,
  type PodSandboxStats as PbPodSandboxStats,
} from "../gen/runtime/v1/api_pb.js";
import { invalidArgument, notFound } from "../errors.js";
import type { CriDeps } from "./deps.js";
import type { PodService } from "./pods.js";
import type { ContainerService } from "./ctrs.js";
import type { RuntimeServiceImpl } from "./server.js";
import { podVisible, type ContainerRecord, type SandboxRecord } from "./records.js";
import { resourcesFromProto } from "./resources.js";
import { updateContainerResources } from "./resources-update.js";
import { StatsCollector, type ContainerSample, type CpuSample, type MemorySample, type PodSample } from "./stats.js";
import type { InterfaceCounters } from "./stats-net.js";

type StatsRpcs = Pick<RuntimeServiceImpl, "containerStats" | "listContainerStats" | "podSandboxStats" | "listPodSandboxStats" | "updateContainerResources">;

const u64 = (v: bigint) => ({ value: v });
const MAX_ID_CHARS = 128;

function cpuToProto(c: CpuSample) {
  return {
    timestamp: c.timestampNs,
    usageCoreNanoSeconds: u64(c.usageCoreNs),
    ...(c.usageNanoCores !== undefined ? { usageNanoCores: u64(c.usageNanoCores) } : {}),
  };
}

function memoryToProto(m: MemorySample): MessageInitShape<typeof MemoryUsageSchema> {
  return {
    timestamp: m.timestampNs,
    workingSetBytes: u64(m.workingSetBytes),
    ...(m.availableBytes !== undefined ? { availableBytes: u64(m.availableBytes) } : {}),
    usageBytes: u64(m.usageBytes),
    rssBytes: u64(m.rssBytes),
    pageFaults: u64(m.pageFaults),
    majorPageFaults: u64(m.majorPageFaults),
  };
}

function ifaceToProto(i: InterfaceCounters): MessageInitShape<typeof NetworkInterfaceUsageSchema> {
  return { name: i.name, rxBytes: u64(i.rxBytes), rxErrors: u64(i.rxErrors), txBytes: u64(i.txBytes), txErrors: u64(i.txErrors) };
}

export function containerStatsToProto(s: ContainerSample): PbContainerStats {
  const c = s.container;
  return create(ContainerStatsSchema, {
    attributes: { id: c.id, metadata: { name: c.name, attempt: c.attempt }, labels: c.labels, annotations: c.annotations },
    ...(s.cpu ? { cpu: cpuToProto(s.cpu) } : {}),
    ...(s.memory ? { memory: memoryToProto(s.memory) } : {}),
    ...(s.writableLayer
      ? {
          writableLayer: {
            timestamp: s.writableLayer.timestampNs,
            fsId: { mountpoint: s.writableLayer.mountpoint },
            usedBytes: u64(s.writableLayer.usedBytes),
            inodesUsed: u64(s.writableLayer.inodesUsed),
          },
        }
      : {}),
  });
}

export function podStatsToProto(s: PodSample): PbPodSandboxStats {
  const p = s.pod;
  return create(PodSandboxStatsSchema, {
    attributes: { id: p.id, metadata: { name: p.name, uid: p.uid, namespace: p.namespace, attempt: p.attempt }, labels: p.labels, annotations: p.annotations },
    linux: {
      ...(s.cpu ? { cpu: cpuToProto(s.cpu) } : {}),
      ...(s.memory ? { memory: memoryToProto(s.memory) } : {}),
      ...(s.network
        ? {
            network: {
              timestamp: s.network.timestampNs,
              ...(s.network.defaultInterface ? { defaultInterface: ifaceToProto(s.network.defaultInterface) } : {}),
              interfaces: s.network.interfaces.map(ifaceToProto),
            },
          }
        : {}),
      ...(s.processCount ? { process: { timestamp: s.processCount.timestampNs, processCount: u64(s.processCount.count) } } : {}),
      containers: s.containers.map(containerStatsToProto),
    },
  });
}

const labelsMatch = (labels: Record<string, string>, sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
const idMatches = (id: string, want: string) => want === "" || id.startsWith(want);

/** A full id or a unique prefix (≥ 3 characters) among `all`; NotFound / InvalidArgument naming it. */
function lookup<T extends { id: string }>(all: () => T[], exact: (id: string) => T | undefined, id: string, what: string): T {
  if (!id) throw invalidArgument(`${what}: id is empty`);
  if (id.length > MAX_ID_CHARS) throw invalidArgument(`${what}: id "${id.slice(0, 64)}…" (${id.length} characters) is too long`);
  const hit = exact(id);
  if (hit) return hit;
  const hits = id.length >= 3 ? all().filter((x) => x.id.startsWith(id)) : [];
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw invalidArgument(`${what} id prefix "${id}" is ambiguous`);
  throw notFound(`${what} "${id}" not found`);
}

export function statsRpcs(d: CriDeps, pods: PodService, ctrs: ContainerService, stats = new StatsCollector(d)): StatsRpcs {
  const visiblePods = () => pods.docs.list().filter(podVisible);
  const pod = (id: string) =>
    lookup(visiblePods, (x) => {
      const p = pods.docs.find(x);
      return p && podVisible(p) ? p : undefined;
    }, id, "pod sandbox");
  const ctr = (id: string) =>
    lookup(() => ctrs.list(), (x) => {
      const c = ctrs.docs.find(x);
      return c && !c.incomplete ? c : undefined;
    }, id, "container");
  const podContainers = (p: SandboxRecord): ContainerRecord[] => ctrs.listByPod(p.id).filter((c) => !c.incomplete);

  return {
    async containerStats(req) {
      return create(ContainerStatsResponseSchema, { stats: containerStatsToProto(await stats.container(ctr(req.containerId))) });
    },
    async listContainerStats(req) {
      const f = req.filter;
      const visible = new Set(visiblePods().map((p) => p.id));
      const list = ctrs
        .list()
        .filter((c) => visible.has(c.sandboxId) && (!f || (idMatches(c.id, f.id) && idMatches(c.sandboxId, f.podSandboxId) && labelsMatch(c.labels, f.labelSelector))));
      const samples = await Promise.all(list.map((c) => stats.container(c)));
      // A full listing (kubelet's periodic one) tells which ids still exist.
      if (!f || (!f.id && !f.podSandboxId && Object.keys(f.labelSelector).length === 0)) stats.retain(new Set([...ctrs.list().map((c) => c.id), ...visible]));
      return create(ListContainerStatsResponseSchema, { stats: samples.map(containerStatsToProto) });
    },
    async podSandboxStats(req) {
      const p = pod(req.podSandboxId);
      return create(PodSandboxStatsResponseSchema, { stats: podStatsToProto(await stats.pod(p, podContainers(p))) });
    },
    async listPodSandboxStats(req) {
      const f = req.filter;
      const list = visiblePods().filter((p) => !f || (idMatches(p.id, f.id) && labelsMatch(p.labels, f.labelSelector)));
      const samples = await Promise.all(list.map((p) => stats.pod(p, podContainers(p))));
      return create(ListPodSandboxStatsResponseSchema, { stats: samples.map(podStatsToProto) });
    },
    async updateContainerResources(req, ctx: HandlerContext) {
      const c = ctr(req.containerId);
      const what = `container "${c.id}"`;
      if (req.windows) throw invalidArgument(`${what}: Windows resources on a Linux runtime`);
      if (!req.linux) throw invalidArgument(`${what}: linux resources are required`);
      await updateContainerResources(d, ctrs, c.id, resourcesFromProto(req.linux, what, { update: true }), { ...req.annotations }, { signal: ctx.signal });
      return create(UpdateContainerResourcesResponseSchema, {});
    },
  };
}
