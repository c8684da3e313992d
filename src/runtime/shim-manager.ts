/**
 * Shim manager (runtime v2): starts, connects, reloads and shuts down shims.
 *
 * One shim per group (the pod's sandbox id, or the task id when ungrouped). Each shim has a home
 * directory `<state>/shims/<namespace>/<group>/` where it was started: a config.json carrying the
 * grouping annotation, the `log` FIFO the shim writes its log to, and the `address` file the shim
 * writes. The home outlives every task bundle of the group and is removed when the shim is gone.
 *
 * Ownership: the manager owns every TtrpcClient and log reader it opens; `forget` and `close`
 * release them. It never decides that a task is finished: the tasks service does, and asks the
 * manager to shut a shim down once no task references it.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type * as net from "node:net";
import { toBinary, create } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { OptionsSchema } from "../gen/containerd/runc/options/oci_pb.js";
import { packAny } from "../proto/any.js";
import { socketPathOf, TtrpcClient } from "../ttrpc/index.js";
import { ShimTaskClient } from "./shim-client.js";
import { startShimProcess, cleanupShimTask, type ShimBinaryOptions, type CleanupResult } from "./shim-binary.js";
import { mkfifo, openFifoReader } from "./fifo.js";
import { shimsOfNamespace } from "../doctor/host-linux.js";
import { isAlive, waitForExit } from "../util/proc.js";
import type { MetadataStore } from "../metadata/index.js";
import type { Shim } from "../metadata/index.js";
import type { Config, RuntimeHandlerConfig } from "../config.js";
import type { Logger } from "../log.js";
import { failedPrecondition, invalidArgument, isNotFound, unavailable } from "../errors.js";
import { linkedSignal } from "../util/signal.js";

export const SANDBOX_ID_ANNOTATION = "io.kubernetes.cri.sandbox-id";

/** A live connection to one shim. Owned by the ShimManager. */
export interface ShimHandle {
  readonly id: string;
  readonly address: string;
  readonly pid: number;
  readonly runtime: string;
  readonly task: ShimTaskClient;
  readonly ttrpc: TtrpcClient;
}

export interface ShimManagerEvents {
  /** The connection to a shim closed unexpectedly (the process may or may not be alive). */
  onDisconnect?: (shimId: string) => void;
}

export class ShimManager {
  private readonly handles = new Map<string, ShimHandle>();
  private readonly logs = new Map<string, net.Socket>();
  /** Per-group start/connect lock: concurrent callers for one group share one promise. */
  private readonly pending = new Map<string, Promise<ShimHandle>>();
  /** Shims we asked to shut down: their connection closing is expected, not a death to handle. */
  private readonly stopping = new Set<string>();
  private closing = false;

  constructor(
    private readonly cfg: Config,
    private readonly meta: MetadataStore,
    private readonly log: Logger,
    private readonly events: ShimManagerEvents = {},
  ) {}

  homeDir(group: string): string {
    return path.join(this.cfg.state, "shims", this.cfg.namespace, group);
  }

  runtimeConfig(runtime: string): RuntimeHandlerConfig {
    const rc = this.cfg.runtimes[runtime];
    if (!rc) throw invalidArgument(`runtime handler "${runtime}" is not configured`);
    return rc;
  }

  binaryOptions(runtime: string): ShimBinaryOptions {
    return {
      binary: this.runtimeConfig(runtime).shim,
      namespace: this.cfg.namespace,
      daemonAddress: this.cfg.socket,
      ttrpcAddress: `${this.cfg.socket}.ttrpc`,
    };
  }

  /** The runc Options Any for a runtime handler, as a message (for CreateTaskRequest.options). */
  runtimeOptions(runtime: string) {
    const rc = this.runtimeConfig(runtime);
    return packAny(OptionsSchema, create(OptionsSchema, { binaryName: rc.binaryName, root: rc.runcRoot }));
  }

  /** The live handle for a shim, if connected. */
  peek(shimId: string): ShimHandle | undefined {
    return this.handles.get(shimId);
  }

  /**
   * Returns the shim of `group`, starting it if no live one exists. Records the shim in the
   * metadata store as 'starting' before anything is spawned, so a crash mid-start leaves a record
   * that recovery resolves.
   */
  async ensure(group: string, runtime: string, opts: { signal?: AbortSignal } = {}): Promise<ShimHandle> {
    if (this.closing) throw unavailable("shim manager is closing");
    const live = this.handles.get(group);
    if (live && !live.ttrpc.isClosed) return live;
    const inflight = this.pending.get(group);
    if (inflight) return inflight;
    const p = this.startOrConnect(group, runtime, opts).finally(() => this.pending.delete(group));
    this.pending.set(group, p);
    return p;
  }

  private async startOrConnect(group: string, runtime: string, opts: { signal?: AbortSignal }): Promise<ShimHandle> {
    const existing = this.meta.shims.find(group);
    if (existing) {
      if (existing.runtime !== runtime) {
        throw failedPrecondition(`shim "${group}" runs runtime "${existing.runtime}", not "${runtime}"`);
      }
      if (existing.state !== "stopped" && existing.address && existing.pid && (await isAlive(existing.pid))) {
        return this.connect(existing, opts);
      }
    }
    return this.start(group, runtime, opts);
  }

  private async start(group: string, runtime: string, opts: { signal?: AbortSignal }): Promise<ShimHandle> {
    const home = this.homeDir(group);
    const bin = this.binaryOptions(runtime);
    const now = Date.now();
    const row = this.meta.shims.find(group);
    if (row) {
      this.meta.shims.update(group, { state: "starting", address: "", pid: null, bundle: home });
    } else {
      this.meta.shims.create({
        id: group,
        runtime,
        binary: bin.binary,
        address: "",
        bundle: home,
        pid: null,
        namespace: this.cfg.namespace,
        state: "starting",
        createdAt: now,
        updatedAt: now,
      });
    }
    let address: string;
    try {
      // Inside the try: a failure here (ENOSPC on a full state dir) must drop the record too.
      await rm(home, { recursive: true, force: true });
      await mkdir(home, { recursive: true, mode: 0o711 });
      await writeFile(path.join(home, "config.json"), JSON.stringify({ annotations: { [SANDBOX_ID_ANNOTATION]: group } }));
      const logPath = path.join(home, "log");
      await mkfifo(logPath);
      await this.attachLog(group, logPath);
      const options = toBinary(AnySchema, this.runtimeOptions(runtime));
      address = await startShimProcess(bin, {
        id: group,
        cwd: home,
        options,
        timeoutMs: this.cfg.timeouts.shimStartMs,
        signal: opts.signal,
      });
    } catch (err) {
      // Nothing was started (or it is unreachable and unrecorded): drop the home and the record
      // unless a task still points at this group's shim.
      this.detachLog(group);
      await rm(home, { recursive: true, force: true }).catch(() => {});
      this.meta.transaction(() => {
        if (this.meta.shims.find(group) && this.meta.shimIsUnused(group)) this.meta.shims.delete(group);
      });
      throw err;
    }
    const partial = { ...this.meta.shims.get(group), address };
    this.meta.shims.update(group, { address });
    const handle = await this.connect(partial, opts);
    this.log.info({ shim: group, pid: handle.pid, address }, "shim started");
    return handle;
  }

  /** Connects to a recorded shim, learns its pid (Connect RPC) and marks it running. */
  async connect(row: Shim, opts: { signal?: AbortSignal } = {}): Promise<ShimHandle> {
    // The log reader first: a shim daemon opens its log FIFO for writing before it serves, and
    // that open blocks until a reader exists. A daemon killed right after starting a shim leaves
    // it blocked there, so a Connect before this would never be answered.
    if (!this.logs.has(row.id)) {
      await this.attachLog(row.id, path.join(row.bundle, "log")).catch(() => {});
    }
    const bound = linkedSignal([opts.signal], this.cfg.timeouts.shimCallMs);
    let ttrpc: TtrpcClient;
    let pid: number;
    try {
      ttrpc = await TtrpcClient.connect(row.address, { namespace: this.cfg.namespace, signal: bound.signal });
      try {
        pid = (await new ShimTaskClient(ttrpc).connect(row.id, { signal: bound.signal })).shimPid;
      } catch (err) {
        ttrpc.destroy();
        throw err;
      }
    } finally {
      bound.dispose();
    }
    const task = new ShimTaskClient(ttrpc);
    const handle: ShimHandle = { id: row.id, address: row.address, pid, runtime: row.runtime, task, ttrpc };
    this.meta.shims.update(row.id, { pid, state: "running" });
    this.handles.set(row.id, handle);
    void ttrpc.closed.then((err) => {
      if (this.handles.get(row.id) !== handle) return; // forgotten or replaced on purpose
      this.handles.delete(row.id);
      if (!this.closing && !this.stopping.has(row.id)) {
        this.log.warn({ shim: row.id, err: err?.message }, "shim connection closed");
        this.events.onDisconnect?.(row.id);
      }
    });
    return handle;
  }

  private async attachLog(shimId: string, fifo: string): Promise<void> {
    this.detachLog(shimId);
    const sock = await openFifoReader(fifo, { keepOpen: true });
    const log = this.log.child({ shim: shimId });
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) log.debug({ src: "shim" }, line);
      }
      if (buf.length > 64 << 10) buf = "";
    });
    sock.on("error", () => {});
    this.logs.set(shimId, sock);
  }

  private detachLog(shimId: string): void {
    this.logs.get(shimId)?.destroy();
    this.logs.delete(shimId);
  }

  /**
   * Sends Shutdown and waits for the shim process to exit. A grouped shim that still serves
   * tasks ignores Shutdown; this resolves false then. Resolves true once the process is gone.
   * Throws (so the caller retries) if the shim is alive but did not answer.
   */
  async shutdown(shimId: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const row = this.meta.shims.find(shimId);
    if (!row) return true;
    let handle = this.handles.get(shimId);
    let pid = row.pid ?? handle?.pid ?? 0;
    if (!handle) {
      // A shim whose start a daemon kill cut short runs without a recorded pid (and maybe
      // without a recorded address): found by its command line, never left behind unseen.
      const own = (await shimsOfNamespace(this.cfg.namespace)).find((p) => p.group === shimId && (!pid || p.pid === pid));
      pid = own?.pid ?? (pid && (await isAlive(pid)) ? pid : 0);
      if (own) {
        let why: unknown = "no address recorded";
        if (row.address) handle = await this.connect(row, opts).catch((err: unknown) => ((why = err), undefined));
        if (!handle) {
          // Callers shut down only shims that no task needs: one that cannot be asked is killed.
          this.log.warn({ shim: shimId, pid: own.pid, err: why instanceof Error ? why.message : String(why) }, "shim not reachable; killing it");
          try {
            process.kill(own.pid, "SIGKILL");
          } catch {
            // gone meanwhile
          }
        }
      }
    }
    if (handle) {
      this.meta.shims.update(shimId, { state: "shutting_down" });
      this.stopping.add(shimId);
      try {
        await handle.task.shutdown(shimId, false, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
      } catch (err) {
        // A shim exiting during Shutdown closes the connection before answering.
        if (!handle.ttrpc.isClosed && !isNotFound(err)) {
          this.stopping.delete(shimId);
          throw err;
        }
      }
    }
    if (!pid) return true;
    return waitForExit(pid, this.cfg.timeouts.shimExitMs, opts.signal);
  }

  /** Runs the shim binary's `delete` action for a task whose shim cannot be reached. */
  cleanupTask(runtime: string, taskId: string, bundle: string, opts: { signal?: AbortSignal } = {}): Promise<CleanupResult> {
    return cleanupShimTask(this.binaryOptions(runtime), {
      id: taskId,
      bundle,
      timeoutMs: this.cfg.timeouts.shimCallMs * 3,
      signal: opts.signal,
    });
  }

  /**
   * Drops a shim that is gone: closes its connection and log, removes its home directory and
   * socket file. Its record is deleted when no live task references it; otherwise it is kept as
   * 'stopped' and the teardown that tombstones the last task deletes it. Idempotent.
   */
  async forget(shimId: string): Promise<void> {
    const handle = this.handles.get(shimId);
    this.handles.delete(shimId);
    handle?.ttrpc.destroy();
    this.detachLog(shimId);
    this.stopping.delete(shimId);
    const row = this.meta.shims.find(shimId);
    // The shim prints a `unix://` address; the file to remove is its path.
    if (row?.address) await rm(socketPathOf(row.address), { force: true }).catch(() => {});
    await rm(row?.bundle ?? this.homeDir(shimId), { recursive: true, force: true });
    this.meta.transaction(() => {
      if (!this.meta.shims.find(shimId)) return;
      if (this.meta.shimIsUnused(shimId)) this.meta.shims.delete(shimId);
      else this.meta.shims.update(shimId, { state: "stopped", address: "", pid: null });
    });
  }

  /** Deletes a 'stopped' record once no live task references it (inside the caller's transaction). */
  dropStoppedRecord(shimId: string): void {
    const row = this.meta.shims.find(shimId);
    if (row?.state === "stopped" && this.meta.shimIsUnused(shimId)) this.meta.shims.delete(shimId);
  }

  /** Closes every connection and log reader; shims keep running (they outlive the daemon). */
  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.handles.values()];
    this.handles.clear();
    for (const h of all) h.ttrpc.destroy(); // pending Wait calls never finish on their own
    for (const id of [...this.logs.keys()]) this.detachLog(id);
  }
}
