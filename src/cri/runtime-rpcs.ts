/**
 * The RuntimeService handlers for pods and containers: thin transport functions that convert
 * the request, call the pod or container service with the call's signal, and convert back.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ContainerStatusResponseSchema,
  CreateContainerResponseSchema,
  ExecSyncResponseSchema,
  ListContainersResponseSchema,
  ListPodSandboxResponseSchema,
  PodSandboxStatusResponseSchema,
  RunPodSandboxResponseSchema,
  type ContainerFilter,
  type PodSandboxFilter,
} from "../gen/runtime/v1/api_pb.js";
import { invalidArgument, notFound } from "../errors.js";
import type { RuntimeServiceImpl } from "./server.js";
import type { PodService } from "./pods.js";
import type { ContainerService } from "./ctrs.js";
import { CONTAINER_STATE, containerStatusToProto, containerToProto, createContainerRequest, podStateOf, podStatusToProto, podToProto, runPodRequest } from "./convert.js";
import { statusHandler } from "./status.js";
import { version } from "./version.js";
import { podVisible, type ContainerRecord, type SandboxRecord } from "./records.js";

const labelsMatch = (labels: Record<string, string>, sel: Record<string, string>) =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

/** Ids may be given in full or as a unique prefix (as crictl and containerd allow). */
const idMatches = (id: string, want: string) => want === "" || id.startsWith(want);

function nonNegativeSeconds(v: bigint, what: string): number {
  if (v < 0n) throw invalidArgument(`${what}: timeout ${v} is negative`);
  return Number(v > 86_400n * 365n ? 86_400n * 365n : v);
}

/** Ids are 64 hex characters; anything much longer can match nothing. */
const MAX_ID_CHARS = 128;

function needId(id: string, what: string): string {
  if (!id) throw invalidArgument(`${what}: id is empty`);
  // Refused here, with the id clipped: echoing a multi-KiB id in NotFound messages made the
  // grpc-message trailer too large for the HTTP/2 frame (the client saw RST_STREAM, not a status).
  if (id.length > MAX_ID_CHARS) throw invalidArgument(`${what}: id "${id.slice(0, 64)}…" (${id.length} characters) is too long`);
  return id;
}

export function filterPods(pods: SandboxRecord[], f: PodSandboxFilter | undefined): SandboxRecord[] {
  return pods.filter(
    (p) =>
      podVisible(p) &&
      (!f ||
        (idMatches(p.id, f.id) && (f.state === undefined || podStateOf(p) === f.state.state) && labelsMatch(p.labels, f.labelSelector))),
  );
}

export function filterContainers(cs: ContainerRecord[], f: ContainerFilter | undefined): ContainerRecord[] {
  return cs.filter(
    (c) =>
      !f ||
      (idMatches(c.id, f.id) &&
        idMatches(c.sandboxId, f.podSandboxId) &&
        (f.state === undefined || CONTAINER_STATE[c.state] === f.state.state) &&
        labelsMatch(c.labels, f.labelSelector)),
  );
}

/** A pod or container by full id or unique prefix; NotFound names what was asked for. */
function resolve<T extends { id: string }>(all: T[], id: string, what: string): T | undefined {
  const exact = all.find((x) => x.id === id);
  if (exact) return exact;
  const hits = id.length >= 3 ? all.filter((x) => x.id.startsWith(id)) : [];
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw invalidArgument(`${what} id prefix "${id}" is ambiguous`);
  return undefined;
}

export function runtimeServiceImpl(pods: PodService, ctrs: ContainerService): Partial<RuntimeServiceImpl> {
  // A full id is one indexed lookup; only a prefix lists everything.
  const pod = (id: string) => {
    const exact = pods.docs.find(needId(id, "pod sandbox"));
    if (exact) return podVisible(exact) ? exact : undefined;
    return resolve(pods.docs.list().filter(podVisible), id, "pod sandbox");
  };
  const ctr = (id: string) => {
    const exact = ctrs.docs.find(needId(id, "container"));
    if (exact) return exact.incomplete ? undefined : exact;
    return resolve(ctrs.list(), id, "container");
  };
  const podId = (id: string) => pod(id)?.id ?? id;
  const ctrId = (id: string) => ctr(id)?.id ?? id;
  return {
    version,
    status: statusHandler(() => pods.networkReady()),

    async runPodSandbox(req, ctx: HandlerContext) {
      const id = await pods.run(runPodRequest(req.config, req.runtimeHandler), { signal: ctx.signal });
      return create(RunPodSandboxResponseSchema, { podSandboxId: id });
    },
    async stopPodSandbox(req, ctx: HandlerContext) {
      await pods.stop(podId(req.podSandboxId), { signal: ctx.signal });
      return {};
    },
    async removePodSandbox(req, ctx: HandlerContext) {
      await pods.remove(podId(req.podSandboxId), { signal: ctx.signal });
      return {};
    },
    podSandboxStatus(req) {
      const p = pod(req.podSandboxId);
      if (!p) throw notFound(`pod sandbox "${req.podSandboxId}" not found`);
      const info: Record<string, string> = req.verbose
        ? { info: JSON.stringify({ pid: p.pid, netns: p.netns?.path ?? "", runtimeHandler: p.runtimeHandler, podDir: p.podDir }) }
        : {};
      return create(PodSandboxStatusResponseSchema, { status: podStatusToProto(p), info });
    },
    listPodSandbox(req) {
      return create(ListPodSandboxResponseSchema, { items: filterPods(pods.docs.list(), req.filter).map(podToProto) });
    },

    async createContainer(req, ctx: HandlerContext) {
      const id = await ctrs.create(createContainerRequest(podId(req.podSandboxId), req.config), { signal: ctx.signal });
      return create(CreateContainerResponseSchema, { containerId: id });
    },
    async startContainer(req, ctx: HandlerContext) {
      const c = ctr(req.containerId);
      await ctrs.start(c ? c.id : req.containerId, { signal: ctx.signal });
      return {};
    },
    async stopContainer(req, ctx: HandlerContext) {
      await ctrs.stop(ctrId(req.containerId), nonNegativeSeconds(req.timeout, `container "${req.containerId}"`), { signal: ctx.signal });
      return {};
    },
    async removeContainer(req, ctx: HandlerContext) {
      await ctrs.remove(ctrId(req.containerId), { signal: ctx.signal });
      return {};
    },
    containerStatus(req) {
      const c = ctr(req.containerId) ?? ctrs.get(req.containerId);
      const info: Record<string, string> = req.verbose
        ? { info: JSON.stringify({ pid: c.pid, sandboxID: c.sandboxId, oomKilled: c.oomKilled, tty: c.tty }) }
        : {};
      const status = containerStatusToProto(c);
      status.imageRef = ctrs.repoDigestOf(c.imageRef) ?? c.imageRef;
      return create(ContainerStatusResponseSchema, { status, info });
    },
    listContainers(req) {
      return create(ListContainersResponseSchema, { containers: filterContainers(ctrs.list(), req.filter).map(containerToProto) });
    },
    async reopenContainerLog(req) {
      await ctrs.reopenLog(ctr(req.containerId)?.id ?? req.containerId);
      return {};
    },
    async execSync(req, ctx: HandlerContext) {
      const c = ctr(req.containerId) ?? ctrs.get(req.containerId);
      const r = await ctrs.execSync(c.id, req.cmd, nonNegativeSeconds(req.timeout, `exec in container "${c.id}"`), { signal: ctx.signal });
      return create(ExecSyncResponseSchema, { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode });
    },
  };
}
