/**
 * CRI containers: create (spec + snapshot, no task yet, as containerd), start (log FIFOs, task,
 * exit watch), stop (stop signal, then SIGKILL; returns once the exit is recorded), remove,
 * exec-sync, log reopen, and the exit handler that records EXITED before teardown.
 *
 * Invariants:
 * - A container document is written `incomplete` first (reserving its name) and completed when
 *   everything exists; start-up recovery removes incomplete ones with what they made.
 * - The exit handler is the only writer of `exited`; it runs in the exit monitor's backoff
 *   queue, so its teardown (tasks.delete) is retried until it succeeds.
 */
import { randomBytes } from "node:crypto";
import { rm, stat } from "node:fs/promises";
import * as path from "node:path";
import type { CriDocStore } from "../metadata/index.js";
import { ErrorCode, codeOf, failedPrecondition, invalidArgument, isNotFound, notFound } from "../errors.js";
import { prepareImageRootfs, SNAPSHOT_LABEL } from "../containers/from-image.js";
import { UndoStack } from "../util/undo.js";
import { linkedSignal } from "../util/signal.js";
import { Waiters } from "../util/waiters.js";
import { CriLogWriter } from "../logs/writer.js";
import { attachLogs, createLogFifos, type LogPump } from "../logs/pump.js";
import { ContainerStdio, TeeLogWriter, stdinFifoPath } from "./container-stdio.js";
import type { ExitStatus } from "../tasks/types.js";
import type { CriDeps } from "./deps.js";
import { CLEANUP_TIMEOUT_MS } from "./deps.js";
import type { ExitMonitor } from "./exit-monitor.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { CRI_KIND_LABEL, NS_NODE, containerNameKey, podVisible, nowNs, rfc3339ToNs, type ContainerRecord, type MountRecord, type SandboxRecord } from "./records.js";
import { podShmSource } from "./pod-files.js";
import { repoTagsAndDigests } from "./image-convert.js";
import { resolveUser } from "./image-user.js";
import { containerSpec, ownOomScoreAdj, type ContainerResources } from "./container-spec.js";
import { checkExecutable, signalNumber } from "./spec-util.js";
import { execSync, type ExecSyncResult } from "./exec-sync.js";
import { DEFAULT_CONTAINER_SECURITY, resolveContainerSecurity, type ContainerSecurity } from "./security.js";
import { checkHostResources, hostResources } from "./resources.js";
import { ContainerEvents } from "./container-events.js";

/** A container document still being created (hidden from status and lists). */
export type StoredContainer = ContainerRecord & { incomplete?: boolean };

export interface CreateContainerRequest {
  podId: string;
  name: string;
  attempt: number;
  image: string;
  command: string[];
  args: string[];
  workingDir: string;
  envs: [string, string][];
  mounts: MountRecord[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  stdin: boolean;
  /** Close the container's stdin when the first attacher's input ends. */
  stdinOnce?: boolean;
  tty: boolean;
  runAsUser?: number;
  runAsUsername: string;
  runAsGroup?: number;
  supplementalGroups: number[];
  readonlyRootfs: boolean;
  noNewPrivs: boolean;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Privileged, capabilities, seccomp; absent: the defaults (unprivileged, unconfined). */
  security?: ContainerSecurity;
  namespaces: { pid: 0 | 1 | 2 | 3; targetId: string };
  resources?: ContainerResources;
}

interface LiveIo {
  writer: CriLogWriter;
  pump: LogPump;
  /** Stdin FIFO and output fan-out for attachers. */
  stdio: ContainerStdio;
}

export const START_ERROR_EXIT_CODE = 128;
/** How late an OOM event may arrive after the SIGKILL exit it caused. */
const OOM_EVENT_GRACE_MS = 5000;

export class ContainerService {
  readonly docs: CriDocStore<StoredContainer>;
  readonly #io = new Map<string, LiveIo>();
  readonly #exited = new Waiters<void>();
  readonly #locks = new KeyedMutex();
  readonly ioDir: string;
  /** Lifecycle events of containers and pod sandboxes (GetContainerEvents); pods emit here too. */
  readonly events: ContainerEvents;

  constructor(
    private readonly d: CriDeps,
    private readonly sandboxes: CriDocStore<SandboxRecord>,
    private readonly monitor: ExitMonitor,
  ) {
    this.docs = d.meta.criDocs<StoredContainer>("cri_containers", "container", (c) => c.sandboxId);
    this.ioDir = path.join(d.cfg.state, "cri", "io");
    this.events = new ContainerEvents(
      (sid) => ({ pod: this.sandboxes.find(sid), containers: this.listByPod(sid).filter((c) => !c.incomplete) }),
      { capacity: d.cfg.cri.containerEventsQueue, log: d.log },
    );
  }

  /** The container, complete; NotFound naming it otherwise. */
  get(id: string): ContainerRecord {
    const c = this.docs.find(id);
    if (!c || c.incomplete) throw notFound(`container "${id}" not found`);
    return c;
  }

  list(): ContainerRecord[] {
    return this.docs.list().filter((c) => !c.incomplete);
  }

  listByPod(podId: string): StoredContainer[] {
    return this.docs.listByParent(podId);
  }

  async create(req: CreateContainerRequest, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const pod = this.sandboxes.find(req.podId);
    if (!pod || !podVisible(pod)) throw notFound(`pod sandbox "${req.podId}" not found`);
    if (pod.state !== "ready") throw failedPrecondition(`pod sandbox "${req.podId}" is not ready (${pod.state})`);
    const what = `container "${req.name}" in pod sandbox "${req.podId}"`;
    for (const m of req.mounts) await checkMount(m, what);
    if (req.resources) checkHostResources(req.resources, what, await hostResources());
    const image = this.d.images.find(req.image);
    if (!image) throw notFound(`image "${req.image}" not found (pull it first)`);
    let targetPid: number | undefined;
    if (req.namespaces.pid === 3) {
      const t = this.docs.find(req.namespaces.targetId);
      if (!t || t.sandboxId !== pod.id || t.state !== "running") {
        throw invalidArgument(`${what}: pid namespace target "${req.namespaces.targetId}" is not a running container of the pod`);
      }
      targetPid = t.pid;
    }
    const stopSignal = signalNumber(image.config.stopSignal, `image "${image.name}"`);
    const security = await resolveContainerSecurity(req.security ?? DEFAULT_CONTAINER_SECURITY, pod, what, opts.signal);
    const id = randomBytes(32).toString("hex");
    const logPath = req.logPath && pod.logDirectory ? confinedLogPath(pod.logDirectory, req.logPath, what) : "";
    const doc: StoredContainer = {
      id,
      nameKey: containerNameKey(req.name, req.attempt, pod),
      sandboxId: pod.id,
      name: req.name,
      attempt: req.attempt,
      image: req.image,
      imageId: image.configDigest,
      // containerd reports the image id unless the image has a repo digest (a pulled image's);
      // the image store keeps names only, so the id it is.
      imageRef: image.configDigest,
      labels: req.labels,
      annotations: req.annotations,
      mounts: req.mounts,
      logPath,
      tty: req.tty,
      stdin: req.stdin,
      stdinOnce: req.stdinOnce ?? false,
      state: "created",
      createdAtNs: nowNs(),
      startedAtNs: "0",
      finishedAtNs: "0",
      exitCode: 0,
      reason: "",
      message: "",
      pid: 0,
      stopSignal,
      oomKilled: false,
      resources: req.resources ?? null,
      incomplete: true,
    };
    this.docs.create(doc);
    const undo = new UndoStack(this.d.log);
    undo.push("release name", () => this.docs.delete(id));
    try {
      const { mounts, key } = await prepareImageRootfs(this.d.images, this.d.snapshotter, image.name, id, opts);
      undo.push("remove snapshot", () => this.d.snapshotter.remove(key));
      const user = await resolveUser(
        mounts,
        {
          ...(req.runAsUser !== undefined ? { uid: req.runAsUser } : {}),
          ...(req.runAsGroup !== undefined ? { gid: req.runAsGroup } : {}),
          username: req.runAsUsername,
          supplementalGroups: req.supplementalGroups,
          imageUser: image.config.user,
        },
        what,
      );
      const hostIpc = pod.namespaces.ipc === NS_NODE;
      const shm = podShmSource(pod.podDir, hostIpc);
      // A pod made by an older skiffd has no shared /dev/shm: its containers keep private ones.
      const devShm = hostIpc || (await stat(shm).then((st) => st.isDirectory(), () => false)) ? shm : undefined;
      const spec = containerSpec(
        image,
        pod,
        {
          ...(devShm ? { devShm } : {}),
          id,
          name: req.name,
          command: req.command,
          args: req.args,
          workingDir: req.workingDir,
          envs: req.envs,
          mounts: req.mounts,
          tty: req.tty,
          stdin: req.stdin,
          user,
          readonlyRootfs: req.readonlyRootfs,
          noNewPrivs: req.noNewPrivs,
          maskedPaths: req.maskedPaths,
          readonlyPaths: req.readonlyPaths,
          namespaces: { pid: req.namespaces.pid, ipc: pod.namespaces.ipc, network: pod.namespaces.network, targetPid },
          security,
          ...(req.resources ? { resources: req.resources } : {}),
        },
        await ownOomScoreAdj(),
      );
      this.d.containers.create({
        id,
        spec,
        rootfs: mounts,
        runtime: pod.runtimeHandler || this.d.cfg.defaultRuntime,
        sandboxId: pod.id,
        labels: { [SNAPSHOT_LABEL]: key, [CRI_KIND_LABEL]: "container" },
      });
      this.docs.update(id, { incomplete: false });
      this.events.emit("created", id, pod.id);
      undo.clear();
      return id;
    } catch (err) {
      await undo.unwind();
      throw err;
    }
  }

  start(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#locks.run(id, async () => {
      const c = this.get(id);
      if (c.state !== "created") throw failedPrecondition(`container "${id}" is ${c.state.toUpperCase()}, not CREATED`);
      const pod = this.sandboxes.find(c.sandboxId);
      if (!pod || pod.state !== "ready") throw failedPrecondition(`pod sandbox "${c.sandboxId}" of container "${id}" is not ready`);
      let taskMade = false;
      try {
        await this.#clearEarlierTask(id, opts.signal);
        const fifos = await this.#attachIo(c);
        await this.d.tasks.create(id, { stdin: fifos.stdin, stdout: fifos.stdout, stderr: c.tty ? "" : fifos.stderr, terminal: c.tty }, opts);
        taskMade = true;
        this.monitor.watch(id);
        const info = await this.d.tasks.start(id, opts);
        const cur = this.docs.get(id);
        this.docs.update(id, cur.state === "created" ? { state: "running", startedAtNs: nowNs(), pid: info.pid } : { startedAtNs: nowNs() });
        this.events.emit("started", id, c.sandboxId);
      } catch (err) {
        const cur = this.docs.find(id);
        if (cur && cur.state !== "exited") {
          this.docs.update(id, {
            state: "exited",
            finishedAtNs: nowNs(),
            exitCode: START_ERROR_EXIT_CODE,
            reason: "StartError",
            message: (err as Error).message,
          });
          this.events.emit("stopped", id, c.sandboxId);
          this.#exited.resolve(id);
        }
        if (taskMade) void this.monitor.queue.push(id, "delete failed task", () => this.#deleteTask(id, true));
        else await this.#closeIo(id);
        throw runtimeRefused(err, `start container "${id}"`);
      }
    });
  }

  /**
   * A start cut short by a daemon crash can leave a task record that never ran (recovery queues
   * its teardown and keeps the container CREATED). The new start joins that teardown first.
   */
  async #clearEarlierTask(id: string, signal?: AbortSignal): Promise<void> {
    let earlier;
    try {
      earlier = this.d.tasks.info(id);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (earlier.status !== "deleted") await this.d.tasks.delete(id, { force: true, ...(signal ? { signal } : {}) });
  }

  async #attachIo(c: ContainerRecord): Promise<{ stdout: string; stderr: string; stdin: string }> {
    const fifos = await createLogFifos(path.join(this.ioDir, c.id), c.id);
    await this.#closeIo(c.id);
    const stdin = c.stdin ? stdinFifoPath(path.join(this.ioDir, c.id), c.id) : "";
    const stdio = await ContainerStdio.open(stdin ? { stdinFifo: stdin } : {});
    const writer = new TeeLogWriter(c.logPath || "/dev/null", stdio);
    await writer.open().catch(async (err: unknown) => {
      await stdio.close();
      // The log path comes from the request (e.g. a directory, or a name too long): the caller's
      // error, not the daemon's. It was Internal without naming the container (cri-bad-input).
      const shown = c.logPath.length > 256 ? `${c.logPath.slice(0, 256)}…` : c.logPath;
      throw failedPrecondition(`container "${c.id}": cannot open its log "${shown}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    });
    try {
      const pump = await attachLogs({
        stdoutFifo: fifos.stdout,
        ...(c.tty ? {} : { stderrFifo: fifos.stderr }),
        writer,
        logger: this.d.log,
      });
      this.#io.set(c.id, { writer, pump, stdio });
      void pump.done.then(async () => {
        if (this.#io.get(c.id)?.pump !== pump) return;
        this.#io.delete(c.id);
        await stdio.close();
        await writer.close().catch(() => {});
      });
    } catch (err) {
      await stdio.close();
      await writer.close().catch(() => {});
      throw err;
    }
    return { ...fifos, stdin };
  }

  /** The live stdio of a running container (undefined when its output is not being read). */
  stdio(id: string): ContainerStdio | undefined {
    return this.#io.get(id)?.stdio;
  }

  async #closeIo(id: string): Promise<void> {
    const io = this.#io.get(id);
    if (!io) return;
    this.#io.delete(id);
    await io.pump.close();
    await io.stdio.close();
    await io.writer.close().catch(() => {});
  }

  /** Re-attaches the log pump of a container whose shim kept running across a daemon restart. */
  async reattachIo(c: ContainerRecord): Promise<void> {
    await this.#attachIo(c);
  }

  /**
   * Stops a running container: its stop signal, then SIGKILL after `timeoutS` (0: at once).
   * Resolves once the exit is recorded. Unknown ids succeed (CRI: idempotent).
   */
  async stop(id: string, timeoutS: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const c = this.docs.find(id);
    if (!c || c.incomplete) return;
    if (c.state !== "running" && c.state !== "unknown") return;
    if (timeoutS > 0) {
      await this.#kill(id, c.stopSignal, opts.signal);
      const grace = linkedSignal([opts.signal], timeoutS * 1000);
      try {
        await this.waitExited(id, grace.signal);
        return;
      } catch (err) {
        if (opts.signal?.aborted) throw err;
      } finally {
        grace.dispose();
      }
    }
    await this.#kill(id, 9, opts.signal);
    await this.waitExited(id, opts.signal);
  }

  async #kill(id: string, sig: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.d.tasks.kill(id, sig, { all: sig === 9, signal });
    } catch (err) {
      // Gone already: the exit is (or will be) recorded by the handler.
      if (!isNotFound(err) && this.docs.find(id)?.state !== "exited") throw err;
    }
  }

  /** Resolves once the container's exit is recorded in its CRI document. */
  waitExited(id: string, signal?: AbortSignal): Promise<void> {
    const w = this.#exited.wait(id, signal, `stop container "${id}"`);
    const c = this.docs.find(id);
    if (!c || c.state === "exited") this.#exited.resolve(id);
    return w;
  }

  /**
   * Removes a container (stopping it first if it runs). Unknown ids succeed. The CRI record goes
   * at once (the name is free, lists no longer show it); the task teardown, the core container and
   * its snapshot and FIFOs are removed by the daemon in the id's queue, retried until done.
   */
  async remove(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const c = this.docs.find(id);
    if (!c) return;
    if (c.state === "running" || c.state === "unknown") await this.stop(id, 0, opts);
    await this.#locks.run(id, async () => {
      if (!this.docs.delete(id)) return;
      this.events.emit("deleted", id, c.sandboxId);
      void this.monitor.queue.push(id, "remove container", () => this.purge(id));
    });
  }

  /** What remains of a removed container: task, IO, core container, snapshot, FIFO dir. Idempotent. */
  async purge(id: string): Promise<void> {
    await this.#deleteTask(id, true);
    await this.#closeIo(id);
    try {
      const { snapshotRemoved } = await this.d.containers.delete(id, { detachSnapshot: true });
      snapshotRemoved.catch((err: unknown) => this.d.log.warn({ container: id, err: (err as Error).message }, "snapshot not removed (start-up retries)"));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await rm(path.join(this.ioDir, id), { recursive: true, force: true });
  }

  /** Deletes the container's task (the daemon's teardown); a missing task is success. */
  async #deleteTask(id: string, force: boolean, signal?: AbortSignal): Promise<void> {
    const own = linkedSignal([signal], CLEANUP_TIMEOUT_MS);
    try {
      await this.d.tasks.delete(id, { force, signal: own.signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    } finally {
      own.dispose();
    }
  }

  /**
   * The repo digest (`repo@sha256:…`) of image `id`, if it has one (a pulled image; imported ones
   * have none): what ContainerStatus reports as image_ref, as containerd does, for kubelet's imageID.
   */
  repoDigestOf(id: string): string | undefined {
    return repoTagsAndDigests(this.d.images.list({ configDigest: id })).repoDigests[0];
  }

  /** Runs `fn` under the container's lock, serialized with start (UpdateContainerResources uses it). */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#locks.run(id, fn);
  }

  /** Exit handler (run by the exit monitor's queue; retried until it succeeds). */
  async handleExit(id: string, exit: ExitStatus): Promise<void> {
    const c = this.docs.find(id);
    if (c && c.state !== "exited") {
      const reason = c.oomKilled ? "OOMKilled" : exit.exitStatus === 0 ? "Completed" : "Error";
      this.docs.update(id, {
        state: "exited",
        finishedAtNs: rfc3339ToNs(exit.exitedAt),
        exitCode: exit.exitStatus,
        reason,
        message: exit.reason ?? "",
        pid: 0,
      });
      this.events.emit("stopped", id, c.sandboxId);
    }
    this.#exited.resolve(id);
    await this.#deleteTask(id, false);
  }

  /**
   * Marks an OOM kill (from a `/tasks/oom` event) so the exit reason becomes OOMKilled. The event
   * travels on another connection than the Wait reply, so it may land just after the exit was
   * recorded: a SIGKILL exit recorded moments ago is then amended.
   */
  markOom(id: string): void {
    const c = this.docs.find(id);
    if (!c || c.oomKilled) return;
    if (c.state !== "exited") {
      this.docs.update(id, { oomKilled: true });
      return;
    }
    const ageMs = Date.now() - Number(BigInt(c.finishedAtNs) / 1_000_000n);
    if (c.exitCode === 137 && ageMs < OOM_EVENT_GRACE_MS) this.docs.update(id, { oomKilled: true, reason: "OOMKilled" });
  }

  async reopenLog(id: string): Promise<void> {
    const c = this.get(id);
    if (c.state !== "running") throw failedPrecondition(`container "${id}" is ${c.state.toUpperCase()}, not RUNNING`);
    const io = this.#io.get(id);
    if (!io) throw failedPrecondition(`container "${id}" has no log being written`);
    await io.writer.reopen();
  }

  async execSync(id: string, cmd: string[], timeoutS: number, opts: { signal?: AbortSignal } = {}): Promise<ExecSyncResult> {
    const c = this.get(id);
    if (c.state !== "running") throw failedPrecondition(`container "${id}" is ${c.state.toUpperCase()}, not RUNNING`);
    if (cmd.length === 0 || cmd[0] === "") throw invalidArgument(`exec in container "${id}": cmd is empty`);
    checkExecutable(cmd[0]!, `exec in container "${id}"`);
    const process = (JSON.parse(this.d.containers.get(id).spec) as { process: Record<string, unknown> }).process;
    return execSync(this.d, {
      containerId: id,
      process: { ...process, args: cmd, terminal: false },
      timeoutMs: timeoutS > 0 ? timeoutS * 1000 : 0,
      maxOutputBytes: this.d.cfg.cri.execSyncMaxOutputBytes,
      dir: path.join(this.ioDir, id),
      signal: opts.signal,
    }).catch((err: unknown) => {
      throw runtimeRefused(err, `exec in container "${id}"`);
    });
  }

  /** Closes every log pump (data still in the FIFOs waits for the next daemon). */
  async close(): Promise<void> {
    await Promise.all([...this.#io.keys()].map((id) => this.#closeIo(id)));
  }
}

/**
 * The shim relays an OCI runtime refusal (runc: executable not found, container already in the
 * "deleted" state because it exited a moment ago, …) as code Unknown. For the CRI caller that is
 * the container's state or configuration, not a daemon fault: FailedPrecondition naming it,
 * keeping the runtime's message (found by cri-fuzz.test.ts). Other codes pass unchanged.
 */
export function runtimeRefused(err: unknown, what: string): unknown {
  if (codeOf(err) !== ErrorCode.Unknown) return err;
  return failedPrecondition(`${what}: ${(err as Error).message}`, err);
}

/**
 * The container's log file: inside the pod's log directory. The daemon runs as root and creates
 * what it writes to, so a log_path escaping the directory ("../", absolute) is refused.
 */
function confinedLogPath(dir: string, rel: string, what: string): string {
  const full = path.resolve(dir, rel);
  if (path.isAbsolute(rel) || !full.startsWith(path.resolve(dir) + path.sep)) {
    throw invalidArgument(`${what}: log_path "${rel.slice(0, 256)}" must stay inside the pod's log directory`);
  }
  return full;
}

/** A CRI mount must name absolute paths, and the host path must exist. */
async function checkMount(m: MountRecord, what: string): Promise<void> {
  if (!path.isAbsolute(m.containerPath)) throw invalidArgument(`${what}: mount container_path "${m.containerPath}" is not absolute`);
  if (!m.hostPath) throw invalidArgument(`${what}: mount for "${m.containerPath}" has no host_path`);
  if (!path.isAbsolute(m.hostPath)) throw invalidArgument(`${what}: mount host_path "${m.hostPath}" is not absolute`);
  try {
    await stat(m.hostPath);
  } catch {
    throw invalidArgument(`${what}: mount host_path "${m.hostPath}" does not exist`);
  }
}

/** `repo@sha256:…` for an image name `repo:tag` (or `repo@digest`). */
export function repoDigest(name: string, manifestDigest: string): string {
  const at = name.indexOf("@");
  if (at >= 0) return `${name.slice(0, at)}@${manifestDigest}`;
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  const repo = colon > slash ? name.slice(0, colon) : name;
  return `${repo}@${manifestDigest}`;
}
