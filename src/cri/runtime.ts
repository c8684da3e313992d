/**
 * The CRI runtime: pod and container services, their exit monitor and recovery, assembled over
 * the core services. Owned by the daemon: `start()` once (recovers), `close()` when stopping
 * (pods and containers keep running; their log output waits in the shims' FIFOs).
 */
import type { ExitStatus } from "../tasks/types.js";
import type { CriDeps } from "./deps.js";
import { ExitMonitor } from "./exit-monitor.js";
import { PodService } from "./pods.js";
import { ContainerService } from "./ctrs.js";
import { recoverCri } from "./recover.js";
import { runtimeServiceImpl } from "./runtime-rpcs.js";
import type { RuntimeServiceImpl } from "./server.js";
import { statsRpcs } from "./stats-rpcs.js";
import { runtimeConfigRpcs } from "./runtime-config.js";
import { streamingServiceImpl } from "./streaming-rpcs.js";
import type { StreamingUrls } from "../streaming/types.js";

const DRAIN_MS = 10_000;

export class CriRuntime {
  readonly monitor: ExitMonitor;
  readonly pods: PodService;
  readonly ctrs: ContainerService;
  /** The streaming server the Exec/Attach/PortForward RPCs register with (set by the daemon). */
  streamingUrls: StreamingUrls | undefined;

  constructor(private readonly d: CriDeps) {
    this.monitor = new ExitMonitor(d.tasks, d.log, { initialMs: d.cfg.teardown.initialBackoffMs, maxMs: d.cfg.teardown.maxBackoffMs });
    this.pods = new PodService(d, this.monitor);
    this.ctrs = new ContainerService(d, this.pods.docs, this.monitor);
    this.pods.ctrs = this.ctrs;
    this.monitor.setHandler((id, exit) => this.#onExit(id, exit));
  }

  #onExit(id: string, exit: ExitStatus): Promise<void> {
    if (this.pods.docs.find(id)) return this.pods.handleExit(id);
    return this.ctrs.handleExit(id, exit);
  }

  async start(): Promise<void> {
    await recoverCri(this.d, this.pods, this.ctrs, this.monitor);
  }

  /** Handler of `/tasks/oom` events for a container. */
  onOom(containerId: string): void {
    this.ctrs.markOom(containerId);
  }

  service(): Partial<RuntimeServiceImpl> {
    return {
      ...runtimeServiceImpl(this.pods, this.ctrs),
      ...streamingServiceImpl(this.pods, this.ctrs, () => this.streamingUrls),
      ...statsRpcs(this.d, this.pods, this.ctrs),
      ...runtimeConfigRpcs({ cfg: this.d.cfg, log: this.d.log, network: () => this.pods.networkReady(), events: this.ctrs.events }),
    };
  }

  async close(): Promise<void> {
    // Removals and exit handling already accepted finish first (bounded; recovery redoes the rest).
    await this.monitor.queue.drain(DRAIN_MS);
    this.monitor.close();
    await this.ctrs.close();
  }
}
