/**
 * skiffd: wires metadata → images → events → shims/tasks → CRI → debug API with explicit
 * start-up and shutdown order. Shims and containers keep running across a daemon restart.
 */
import { access, mkdir, mkdtemp, rm } from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { MetadataStore } from "../metadata/index.js";
import { EventExchange } from "../events/exchange.js";
import { registerEventsService } from "../events/forward-service.js";
import { TtrpcServer } from "../ttrpc/index.js";
import { ShimManager } from "../runtime/shim-manager.js";
import { TasksService } from "../tasks/service.js";
import { handleShimDisconnect, recover } from "../tasks/recovery.js";
import { ContainersService } from "../containers/service.js";
import { registerDebugService } from "./debug-service.js";
import { Lifecycle } from "./lifecycle.js";
import type { TeardownHooks } from "../tasks/teardown.js";
import { decodeTaskEvent } from "../events/task-events.js";
import { nowRfc3339 } from "../util/time.js";
import { ContentStore } from "../content/store.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";
import { ImageService } from "../images/service.js";
import { type Progress, pullImage } from "../images/pull.js";
import type { ImageRecord } from "../metadata/images.js";
import { RegistryHosts } from "../registry/hosts.js";
import { buildBuiltinImages } from "../images/builtin.js";
import { openSnapshotter } from "./snapshotter.js";
import { CriServer } from "../cri/server.js";
import { CriRuntime } from "../cri/runtime.js";
import { activeSpawner, Spawner, useSpawner } from "../util/spawner.js";
import { imageServiceImpl } from "../cri/image-service.js";
import type { Credentials } from "../registry/hosts.js";
import { installDefaultConflist } from "../cni/config.js";
import type { CriDeps } from "../cri/deps.js";
import { RuntimeStreamingBackend } from "../streaming/backend.js";
import { StreamingServer } from "../streaming/server.js";
import { Doctor } from "../doctor/doctor.js";
import { daemonDoctorDeps } from "../doctor/daemon-deps.js";

export interface DaemonOptions {
  hooks?: TeardownHooks;
}

export class Daemon {
  meta!: MetadataStore;
  readonly events = new EventExchange();
  shims!: ShimManager;
  tasks!: TasksService;
  containers!: ContainersService;
  content!: ContentStore;
  snapshotter!: Snapshotter;
  images!: ImageService;
  registryHosts!: RegistryHosts;
  private readonly lifecycle: Lifecycle;
  private eventsServer: TtrpcServer | undefined;
  private debugServer: TtrpcServer | undefined;
  private criServer: CriServer | undefined;
  private unsubscribeExits: (() => void) | undefined;
  private unsubscribeOom: (() => void) | undefined;
  private spawner: Spawner | undefined;
  cri!: CriRuntime;
  /** Runs exec/attach/port-forward for the streaming server; set with the CRI component. */
  streamingBackend: RuntimeStreamingBackend | undefined;
  /** The exec/attach/port-forward server the CRI URLs point at; started with the CRI component. */
  streamingServer: StreamingServer | undefined;
  /** The drift check (`skiff doctor`) and its periodic reconciler; set once started. */
  doctor: Doctor | undefined;

  constructor(
    readonly cfg: Config,
    readonly log: Logger,
    private readonly opts: DaemonOptions = {},
  ) {
    this.lifecycle = new Lifecycle(log);
  }

  async start(): Promise<void> {
    const { cfg, log } = this;
    await this.lifecycle.startAll([
      {
        // First, while the daemon is small: every later command is forked by this helper.
        name: "spawner",
        start: async () => {
          if (!cfg.spawnerBinary) return;
          try {
            this.spawner = await Spawner.start(cfg.spawnerBinary);
            useSpawner(this.spawner);
          } catch (err) {
            log.warn({ spawner: cfg.spawnerBinary, err: (err as Error).message }, "skiff-spawner not started (run `make build`); using Node's spawn");
          }
        },
        close: async () => {
          if (activeSpawner() === this.spawner) useSpawner(undefined);
          await this.spawner?.close();
        },
      },
      {
        name: "metadata",
        start: async () => {
          await mkdir(cfg.root, { recursive: true, mode: 0o711 });
          await mkdir(cfg.state, { recursive: true, mode: 0o711 });
          this.meta = MetadataStore.open(path.join(cfg.root, "meta.db"));
        },
        close: async () => this.meta.close(),
      },
      {
        name: "images",
        start: async () => {
          this.content = new ContentStore(cfg.root);
          this.registryHosts = new RegistryHosts(cfg.registry.hosts);
          this.snapshotter = await openSnapshotter(cfg, log);
          this.images = new ImageService({
            content: this.content,
            images: this.meta.images,
            snapshotsDir: path.join(cfg.root, "snapshots"),
          });
          await this.removeOrphanSnapshots();
          if (cfg.builtinImages) await this.ensureBuiltinImages();
        },
        close: async () => this.snapshotter?.close(),
      },
      {
        name: "events",
        start: async () => {
          await mkdir(path.dirname(cfg.socket), { recursive: true, mode: 0o711 });
          this.eventsServer = new TtrpcServer();
          registerEventsService(this.eventsServer, this.events);
          await this.eventsServer.listen(`${cfg.socket}.ttrpc`, { mode: 0o600 });
        },
        close: async () => this.eventsServer?.close(),
      },
      {
        name: "tasks",
        start: async () => {
          this.shims = new ShimManager(cfg, this.meta, log.child({ c: "shims" }), {
            onDisconnect: (id) => void handleShimDisconnect(this.tasks, id).catch((err: unknown) => {
              log.error({ shim: id, err: (err as Error).message }, "shim disconnect handling failed");
            }),
          });
          this.tasks = new TasksService(cfg, this.meta, this.shims, log.child({ c: "tasks" }), this.opts.hooks);
          this.containers = new ContainersService(cfg, this.meta, this.snapshotter);
          this.unsubscribeExits = this.events.on({ topics: ["/tasks/exit"], namespace: cfg.namespace }, (env) => {
            let ev;
            try {
              ev = decodeTaskEvent(env);
            } catch (err) {
              log.warn({ topic: env.topic, err: (err as Error).message }, "undecodable task event");
              return;
            }
            if (ev?.kind !== "exit") return;
            const at = ev.exitedAtRfc3339 ?? nowRfc3339();
            this.tasks.handleExitEvent(ev.containerId, ev.id, ev.exitStatus, at);
          });
          await recover(this.tasks);
        },
        close: async () => {
          this.unsubscribeExits?.();
          await this.tasks.close();
          await this.shims.close();
        },
      },
      {
        name: "cri",
        start: async () => {
          const written = await installDefaultConflist(cfg.cni.confDir, { subnet: cfg.cni.defaultSubnet, bridge: cfg.cni.defaultBridge });
          if (written) log.info({ file: written }, "installed the default CNI config");
          const criDeps: CriDeps = {
            cfg,
            log: log.child({ c: "cri" }),
            meta: this.meta,
            tasks: this.tasks,
            containers: this.containers,
            images: this.images,
            snapshotter: this.snapshotter,
            pullImage: (ref, o) => this.pullImage(ref, o),
          };
          this.cri = new CriRuntime(criDeps);
          this.streamingBackend = new RuntimeStreamingBackend(criDeps, this.cri.pods, this.cri.ctrs, { portRelayBinary: cfg.streaming.portRelayBinary });
          this.unsubscribeOom = this.events.on({ topics: ["/tasks/oom"], namespace: cfg.namespace }, (env) => {
            try {
              const ev = decodeTaskEvent(env);
              if (ev?.kind === "oom") this.cri.onOom(ev.containerId);
            } catch (err) {
              log.warn({ topic: env.topic, err: (err as Error).message }, "undecodable task event");
            }
          });
          await this.cri.start();
          const st = cfg.streaming;
          this.streamingServer = new StreamingServer({
            backend: this.streamingBackend,
            address: st.address,
            port: st.port,
            ...(st.tlsCert ? { tls: { certPath: st.tlsCert, keyPath: st.tlsKey } } : {}),
            tokenTtlMs: st.tokenTtlMs,
            idleTimeoutMs: st.idleTimeoutMs,
            maxStreams: st.maxStreams,
            log: log.child({ c: "streaming" }),
          });
          await this.streamingServer.start();
          this.cri.streamingUrls = this.streamingServer;
          this.criServer = new CriServer({ socket: cfg.socket, runtime: this.cri.service(),
            image: imageServiceImpl({
              images: this.images,
              pull: (ref, o) => this.pullImage(ref, o),
              collectGarbage: () => this.collectGarbage(),
              log,
            }), log: log.child({ c: "cri" }) });
          await this.criServer.listen();
        },
        close: async () => {
          this.cri?.ctrs.events.close(); // ends GetContainerEvents streams, which would hold up the drain
          await this.criServer?.close();
          // Open streams end here (exec processes killed) while the tasks service still runs.
          await this.streamingServer?.close();
          this.unsubscribeOom?.();
          await this.cri?.close();
        },
      },
      {
        name: "doctor",
        start: async () => {
          this.doctor = new Doctor(daemonDoctorDeps({ cfg, log: log.child({ c: "doctor" }), meta: this.meta, tasks: this.tasks, cri: this.cri }));
          this.doctor.startPeriodic(cfg.doctor);
        },
        close: async () => this.doctor?.close(),
      },
      {
        name: "debug-api",
        start: async () => {
          this.debugServer = new TtrpcServer();
          registerDebugService(this.debugServer, this);
          await mkdir(path.dirname(cfg.debugSocket), { recursive: true, mode: 0o711 });
          await this.debugServer.listen(cfg.debugSocket, { mode: 0o600 });
        },
        close: async () => this.debugServer?.close(),
      },
    ]);
    log.info({ socket: cfg.socket, debugSocket: cfg.debugSocket, root: cfg.root, state: cfg.state }, "skiffd ready");
  }

  close(): Promise<void> {
    return this.lifecycle.closeAll();
  }

  /** Pulls `ref` from its registry (settings from `[registry]`) and records it in the image store. */
  pullImage(ref: string, opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void; auth?: Credentials } = {}): Promise<ImageRecord> {
    const { auth, ...rest } = opts;
    return pullImage(ref, {
      content: this.content,
      images: this.meta.images,
      hosts: auth ? this.registryHosts.withCredentials(auth) : this.registryHosts,
      stallTimeoutMs: this.cfg.registry.stallTimeoutMs,
      concurrency: this.cfg.registry.concurrency,
      ...rest,
    });
  }

  /** Frees blobs and layer snapshots that no image (and no container) needs any more. */
  async collectGarbage(): Promise<{ blobs: number; snapshots: number }> {
    const snapshots = await this.images.gcSnapshots(this.snapshotter);
    const res = await this.images.gc();
    return { blobs: res.blobs.length, snapshots: snapshots.length };
  }

  /** Builds the pause and busybox images when missing; a missing pause binary only skips them. */
  private async ensureBuiltinImages(): Promise<void> {
    try {
      await access(this.cfg.pauseBinary);
    } catch {
      this.log.warn({ pauseBinary: this.cfg.pauseBinary }, "pause binary not found (run `make build`); built-in images skipped");
      return;
    }
    const workDir = await mkdtemp(path.join(this.cfg.state, "builtin-"));
    try {
      const made = await buildBuiltinImages({
        store: this.content,
        images: this.meta.images,
        workDir,
        pauseBinary: this.cfg.pauseBinary,
      });
      this.log.info({ images: made.map((i) => i.name) }, "built-in images ready");
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /** Active container snapshots whose container record is gone (crash between the two removals). */
  private async removeOrphanSnapshots(): Promise<void> {
    const orphans: string[] = [];
    await this.snapshotter.walk((info) => {
      const owner = info.labels["io.skiff.container"];
      if (owner && !this.meta.containers.find(owner)) orphans.push(info.name);
    });
    for (const key of orphans) {
      this.log.warn({ snapshot: key }, "removing orphan container snapshot");
      await this.snapshotter.remove(key).catch((err: unknown) => this.log.error({ snapshot: key, err }, "orphan snapshot not removed"));
    }
  }
}
