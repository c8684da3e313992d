/**
 * The RuntimeService handlers Exec, Attach and PortForward: they validate the request against
 * the container or pod as it is now, register it with the streaming server, and return the
 * single-use URL the client then connects to. No process starts here; that happens when the
 * client connects (src/streaming/backend.ts).
 *
 * Refusals (as kubelet's streaming server and containerd's CRI plugin): empty cmd, none of
 * stdin/stdout/stderr, tty with stderr → InvalidArgument; unknown container or pod → NotFound;
 * container not running, pod not ready, stdin on a container created without it →
 * FailedPrecondition. Each message names the object.
 */
import { create } from "@bufbuild/protobuf";
import { AttachResponseSchema, ExecResponseSchema, PortForwardResponseSchema } from "../gen/runtime/v1/api_pb.js";
import { failedPrecondition, invalidArgument, notFound, unavailable } from "../errors.js";
import type { StreamingUrls } from "../streaming/types.js";
import type { RuntimeServiceImpl } from "./server.js";
import type { PodService } from "./pods.js";
import type { ContainerService } from "./ctrs.js";
import { podVisible, type ContainerRecord } from "./records.js";
import { checkExecutable } from "./spec-util.js";

/** Ids are 64 hex characters; longer ones can match nothing (and would bloat error trailers). */
const MAX_ID_CHARS = 128;

export interface StdioFlags {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** kubelet's checks on the requested streams (pkg/kubelet/cri/streaming validation). */
export function checkStreams(f: StdioFlags, what: string): void {
  if (!f.stdin && !f.stdout && !f.stderr) throw invalidArgument(`${what}: one of stdin, stdout and stderr must be requested`);
  if (f.tty && f.stderr) throw invalidArgument(`${what}: tty and stderr cannot both be requested (a terminal merges them)`);
}

function checkId(id: string, what: string): void {
  if (!id) throw invalidArgument(`${what}: id is empty`);
  if (id.length > MAX_ID_CHARS) throw invalidArgument(`${what}: id "${id.slice(0, 64)}…" (${id.length} characters) is too long`);
}

/** A full id, or a unique prefix of at least 3 characters (as crictl and the other RPCs accept). */
function byIdOrPrefix<T extends { id: string }>(id: string, exact: T | undefined, all: () => T[], what: string): T | undefined {
  if (exact) return exact;
  if (id.length < 3) return undefined;
  const hits = all().filter((x) => x.id.startsWith(id));
  if (hits.length > 1) throw invalidArgument(`${what}: id prefix "${id}" is ambiguous`);
  return hits[0];
}

/**
 * The three handlers. `urls()` gives the streaming server, or undefined when none runs (the
 * RPCs are then Unavailable rather than handing out URLs nobody serves).
 */
export function streamingServiceImpl(pods: PodService, ctrs: ContainerService, urls: () => StreamingUrls | undefined): Partial<RuntimeServiceImpl> {
  const server = (): StreamingUrls => {
    const u = urls();
    if (!u) throw unavailable("the streaming server is not running");
    return u;
  };
  const running = (id: string, what: string): ContainerRecord => {
    checkId(id, what);
    const found = ctrs.docs.find(id);
    const c = byIdOrPrefix(id, found && !found.incomplete ? found : undefined, () => ctrs.list(), what);
    if (!c) throw notFound(`${what}: container "${id}" not found`);
    if (c.state !== "running") throw failedPrecondition(`${what}: container "${id}" is ${c.state.toUpperCase()}, not RUNNING`);
    return c;
  };
  return {
    exec(req) {
      const what = `exec in container "${req.containerId}"`;
      const c = running(req.containerId, "exec");
      if (req.cmd.length === 0 || req.cmd[0] === "") throw invalidArgument(`${what}: cmd is empty`);
      checkExecutable(req.cmd[0]!, what);
      checkStreams(req, what);
      const url = server().register({ kind: "exec", containerId: c.id, cmd: [...req.cmd], tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
      return create(ExecResponseSchema, { url });
    },
    attach(req) {
      const what = `attach to container "${req.containerId}"`;
      const c = running(req.containerId, "attach");
      checkStreams(req, what);
      if (req.stdin && !c.stdin) throw failedPrecondition(`${what}: the container was not created with stdin`);
      if (req.tty && !c.tty) throw failedPrecondition(`${what}: tty requested but the container has no terminal`);
      const url = server().register({ kind: "attach", containerId: c.id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
      return create(AttachResponseSchema, { url });
    },
    portForward(req) {
      checkId(req.podSandboxId, "port-forward");
      const what = `port-forward to pod sandbox "${req.podSandboxId}"`;
      const found = pods.docs.find(req.podSandboxId);
      const p = byIdOrPrefix(req.podSandboxId, found && podVisible(found) ? found : undefined, () => pods.docs.list().filter(podVisible), what);
      if (!p) throw notFound(`${what}: pod sandbox "${req.podSandboxId}" not found`);
      if (p.state !== "ready") throw failedPrecondition(`${what}: pod sandbox "${req.podSandboxId}" is not ready (${p.state})`);
      for (const port of req.port) {
        if (!(port >= 1 && port <= 65535)) throw invalidArgument(`${what}: port ${port} is not in 1..65535`);
      }
      const url = server().register({ kind: "portforward", podId: p.id, ports: [...req.port] });
      return create(PortForwardResponseSchema, { url });
    },
  };
}
