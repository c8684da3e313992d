/**
 * The runtime side of the streaming server: exec, attach and port-forward over the CRI pod and
 * container services (see types.ts for the contract the server relies on).
 *
 * Every request re-checks its target when the client connects, not only when the URL was
 * issued: the container may have exited, or the pod been stopped, in between. Unknown → NotFound,
 * not running/ready → FailedPrecondition, both naming the object.
 */
import * as path from "node:path";
import type { Duplex } from "node:stream";
import { failedPrecondition, invalidArgument, notFound } from "../errors.js";
import type { CriDeps } from "../cri/deps.js";
import type { ContainerService } from "../cri/ctrs.js";
import { runtimeRefused } from "../cri/ctrs.js";
import type { PodService } from "../cri/pods.js";
import { podVisible, type ContainerRecord, type SandboxRecord } from "../cri/records.js";
import { runExec } from "./exec-process.js";
import { runAttach } from "./attach.js";
import { relayPort } from "./port-relay.js";
import type { CommandIo, CommandResult, StreamingBackend } from "./types.js";

export interface RuntimeStreamingBackendOptions {
  /** The port-forward helper (config streaming.port_relay_binary). */
  portRelayBinary: string;
}

export class RuntimeStreamingBackend implements StreamingBackend {
  constructor(
    private readonly d: CriDeps,
    private readonly pods: PodService,
    private readonly ctrs: ContainerService,
    private readonly opts: RuntimeStreamingBackendOptions,
  ) {}

  /** The container, running; NotFound or FailedPrecondition naming it otherwise. */
  runningContainer(id: string): ContainerRecord {
    const c = this.ctrs.get(id);
    if (c.state !== "running") throw failedPrecondition(`container "${id}" is ${c.state.toUpperCase()}, not RUNNING`);
    return c;
  }

  /** The pod, ready; NotFound or FailedPrecondition naming it otherwise. */
  readyPod(id: string): SandboxRecord {
    const p = this.pods.docs.find(id);
    if (!p || !podVisible(p)) throw notFound(`pod sandbox "${id}" not found`);
    if (p.state !== "ready") throw failedPrecondition(`pod sandbox "${id}" is not ready (${p.state})`);
    return p;
  }

  async exec(containerId: string, cmd: string[], io: CommandIo, signal: AbortSignal): Promise<CommandResult> {
    this.runningContainer(containerId);
    if (cmd.length === 0 || cmd[0] === "") throw invalidArgument(`exec in container "${containerId}": cmd is empty`);
    const spec = JSON.parse(this.d.containers.get(containerId).spec) as { process: Record<string, unknown> };
    return runExec(
      this.d,
      {
        containerId,
        process: { ...spec.process, args: cmd, terminal: io.tty },
        dir: path.join(this.ctrs.ioDir, containerId),
      },
      io,
      signal,
    ).catch((err: unknown) => {
      throw runtimeRefused(err, `exec in container "${containerId}"`);
    });
  }

  async attach(containerId: string, io: CommandIo, signal: AbortSignal): Promise<CommandResult> {
    const c = this.runningContainer(containerId);
    if (io.stdin && !c.stdin) throw failedPrecondition(`container "${containerId}" was not created with stdin: cannot attach stdin`);
    const stdio = this.ctrs.stdio(containerId);
    if (!stdio) throw failedPrecondition(`container "${containerId}" has no live stdio to attach to`);
    return runAttach(
      this.d,
      {
        containerId,
        stdio,
        tty: c.tty,
        stdinOnce: c.stdinOnce ?? false,
        exitCode: async (s) => {
          await this.ctrs.waitExited(containerId, s);
          return this.ctrs.docs.find(containerId)?.exitCode;
        },
      },
      io,
      signal,
    );
  }

  async portForward(podId: string, port: number, conn: Duplex, signal: AbortSignal): Promise<void> {
    const p = this.readyPod(podId);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(`port-forward to pod sandbox "${podId}": invalid port ${port}`);
    await relayPort({ what: `pod sandbox "${podId}"`, netnsPath: p.netns?.path ?? null, port, relayBinary: this.opts.portRelayBinary }, conn, signal);
  }
}
