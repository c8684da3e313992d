/**
 * Tasks service — record #1. Owns the mapping task → shim and every state change of a task.
 *
 * Invariants (DESIGN.md):
 * - The exit is recorded in SQLite before teardown starts; the first recorded exit wins.
 * - Exit detection: a Wait call registered right after Create (before Start) is the primary
 *   signal; `/tasks/exit` events are a duplicate-tolerant second one (`handleExitEvent`).
 * - Delete hands the task to the TeardownQueue (daemon-owned, persisted, retried) and only
 *   waits for it within the caller's deadline. Delete is idempotent: a deleted task reports its
 *   recorded exit again.
 */
import type { MetadataStore, Task } from "../metadata/index.js";
import type { ShimManager, ShimHandle } from "../runtime/shim-manager.js";
import { bundlePath, createBundle, removeBundle, validateId } from "../runtime/bundle.js";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { ExitRecorder } from "./exits.js";
import { TeardownQueue, type TeardownHooks } from "./teardown.js";
import { normalizeStdio, type ExitStatus, type TaskInfo, type TaskStatus, type TaskStdio } from "./types.js";
import {
  alreadyExists,
  failedPrecondition,
  isNotFound,
  notFound,
  unavailable,
} from "../errors.js";
import { raceSignal } from "../util/signal.js";
import { exitTimeOf } from "../util/time.js";
import { Status } from "../gen/containerd/types/task/task_pb.js";
import { UndoStack } from "../util/undo.js";
import { ExecService } from "./execs.js";
import { isAlive } from "../util/proc.js";
import { OCI_LINUX_RESOURCES_TYPE_URL, packJsonAny } from "../proto/any.js";

const STATUS_NAMES: Record<number, TaskStatus> = {
  [Status.UNKNOWN]: "unknown",
  [Status.CREATED]: "created",
  [Status.RUNNING]: "running",
  [Status.STOPPED]: "stopped",
  [Status.PAUSED]: "paused",
  [Status.PAUSING]: "paused",
};

export interface CallOpts {
  signal?: AbortSignal;
}

export class TasksService {
  readonly exits: ExitRecorder;
  readonly teardown: TeardownQueue;
  readonly execs: ExecService;
  /** Tasks with a Wait call in flight (one per task, never two). */
  private readonly monitored = new Set<string>();

  constructor(
    readonly cfg: Config,
    readonly meta: MetadataStore,
    readonly shims: ShimManager,
    readonly log: Logger,
    hooks: TeardownHooks = {},
  ) {
    this.exits = new ExitRecorder(meta, log);
    this.teardown = new TeardownQueue(cfg, meta, shims, this.exits, log, hooks);
    this.execs = new ExecService(cfg, meta, this, log);
  }

  /**
   * Creates the task of an existing container: bundle, shim (started or shared by group),
   * shim Create, exit monitor. Everything made is undone on failure.
   */
  async create(containerId: string, stdio: TaskStdio = {}, opts: CallOpts = {}): Promise<TaskInfo> {
    validateId(containerId, "container id");
    const c = this.meta.containers.get(containerId);
    const prev = this.meta.tasks.find(containerId);
    if (prev && prev.deletedAt === null) throw alreadyExists(`task "${containerId}" already exists`);
    const group = c.sandboxId || containerId;
    const bundle = bundlePath(this.cfg.state, this.cfg.namespace, containerId);
    const undo = new UndoStack(this.log);
    try {
      await createBundle(bundle, JSON.parse(c.spec));
      undo.push("remove bundle", () => removeBundle(bundle));
      const shim = await this.shims.ensure(group, c.runtime, opts);
      undo.push("release shim", () => this.releaseShimIfUnused(shim.id));
      const io = normalizeStdio(stdio);
      const now = Date.now();
      const row: Task = {
        id: containerId,
        shimId: shim.id,
        bundle,
        pid: null,
        status: "unknown",
        stdin: io.stdin,
        stdout: io.stdout,
        stderr: io.stderr,
        terminal: io.terminal,
        exitStatus: null,
        exitedAt: null,
        exitReason: null,
        deletedAt: null,
        createdAt: now,
        updatedAt: now,
      };
      this.meta.transaction(() => {
        if (prev) this.meta.tasks.delete(containerId);
        this.meta.tasks.create(row);
      });
      undo.push("delete task row", () => this.meta.tasks.delete(containerId));
      const req = {
        id: containerId,
        bundle,
        rootfs: c.rootfs,
        terminal: row.terminal,
        stdin: row.stdin,
        stdout: row.stdout,
        stderr: row.stderr,
        options: this.shims.runtimeOptions(c.runtime),
      };
      const callOpts = { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs };
      let res;
      try {
        res = await shim.task.create(req, callOpts);
      } catch (err) {
        if (!/already exists/i.test((err as Error).message)) throw err;
        // No live record of this task exists (checked above), so what the shim or runc still
        // holds under its id is left from a Create cut by a daemon crash: remove it, try again.
        this.log.warn({ task: containerId, err: (err as Error).message }, "removing a task left by an interrupted create");
        await shim.task.delete(containerId, "", callOpts).catch(() => {});
        await this.shims.cleanupTask(c.runtime, containerId, bundle, opts);
        res = await shim.task.create(req, callOpts);
      }
      undo.push("delete in shim", () =>
        shim.task.delete(containerId, "", { timeoutMs: this.cfg.timeouts.shimCallMs }).then(() => undefined),
      );
      this.meta.tasks.update(containerId, { pid: res.pid, status: "created" });
      this.monitor(containerId, shim);
      undo.clear();
      return this.info(containerId);
    } catch (err) {
      await undo.unwind();
      throw err;
    }
  }

  async start(id: string, opts: CallOpts = {}): Promise<TaskInfo> {
    const { task, shim } = await this.live(id, opts);
    if (task.status !== "created") throw failedPrecondition(`task "${id}" is ${task.status}, not created`);
    const res = await shim.task.start(id, "", { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
    // The exit may already be recorded if the process was very short-lived.
    if (!this.exits.recorded(id)) this.meta.tasks.update(id, { pid: res.pid, status: "running" });
    return this.info(id);
  }

  async kill(id: string, signal: number, o: { all?: boolean; execId?: string } & CallOpts = {}): Promise<void> {
    const { shim } = await this.live(id, o);
    await shim.task.kill(id, signal, { all: o.all, execId: o.execId }, {
      signal: o.signal,
      timeoutMs: this.cfg.timeouts.shimCallMs,
    });
  }

  /** Resolves with the task's exit once it is recorded. */
  wait(id: string, opts: CallOpts = {}): Promise<ExitStatus> {
    this.meta.tasks.get(id);
    return this.exits.wait(id, opts.signal);
  }

  /**
   * Deletes a task. A running task needs `force` (it is killed first). The teardown runs in the
   * daemon; the caller waits for it within its own deadline, and a retry joins the same work.
   */
  async delete(id: string, opts: CallOpts & { force?: boolean } = {}): Promise<ExitStatus> {
    const task = this.meta.tasks.get(id);
    if (task.deletedAt === null && !this.exits.recorded(id) && !this.meta.teardowns.find(id)) {
      await this.settleExit(task, opts);
    }
    const done = this.meta.tasks.get(id).deletedAt !== null ? Promise.resolve() : this.teardown.enqueue(id);
    await raceSignal(done, opts.signal, `delete task "${id}"`);
    return this.exits.recorded(id)!;
  }

  /** Makes sure an exit is recorded before teardown: from the shim's state, or by killing. */
  private async settleExit(task: Task, opts: CallOpts & { force?: boolean }): Promise<void> {
    const shim = this.shims.peek(task.shimId);
    if (!shim) return; // unreachable shim: teardown's dead-shim path records the exit
    let st;
    try {
      st = await shim.task.state(task.id, "", { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
    } catch (err) {
      if (isNotFound(err)) return; // the teardown records "task lost" unless an exit arrives first
      throw err;
    }
    if (st.status === Status.STOPPED) {
      this.exits.record(task.id, {
        exitStatus: st.exitStatus,
        exitedAt: exitTimeOf(st.exitedAt),
      });
      return;
    }
    if (st.status === Status.RUNNING || st.status === Status.PAUSED || st.status === Status.PAUSING) {
      if (!opts.force) throw failedPrecondition(`task "${task.id}" is running: kill it first or use force`);
    }
    await shim.task.kill(task.id, 9, { all: true }, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
    await this.exits.wait(task.id, opts.signal);
  }

  info(id: string): TaskInfo {
    const t = this.meta.tasks.get(id);
    const exit = this.exits.recorded(id);
    return {
      id: t.id,
      shimId: t.shimId,
      pid: t.pid ?? 0,
      status: (t.deletedAt !== null ? "deleted" : t.status) as TaskStatus,
      bundle: t.bundle,
      ...(exit ? { exit } : {}),
    };
  }

  /** The task's live state as its shim reports it (status, pid, exit if stopped). */
  async state(id: string, opts: CallOpts = {}): Promise<{ status: TaskStatus; pid: number; exit?: ExitStatus }> {
    const { shim } = await this.live(id, opts);
    const st = await shim.task.state(id, "", { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
    const status = STATUS_NAMES[st.status] ?? "unknown";
    if (st.status !== Status.STOPPED) return { status, pid: st.pid };
    const exitedAt = exitTimeOf(st.exitedAt);
    return { status, pid: st.pid, exit: { exitStatus: st.exitStatus, exitedAt } };
  }

  list(): TaskInfo[] {
    return this.meta.tasks
      .list()
      .filter((t) => t.deletedAt === null)
      .map((t) => this.info(t.id));
  }

  async pids(id: string, opts: CallOpts = {}): Promise<number[]> {
    const { shim } = await this.live(id, opts);
    const res = await shim.task.pids(id, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
    return res.processes.map((p) => p.pid);
  }

  /** Raw cgroup statistics of the task (a cgroups v1 Metrics Any, decoded by the caller). */
  async stats(id: string, opts: CallOpts = {}) {
    const { shim } = await this.live(id, opts);
    return (await shim.task.stats(id, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs })).stats;
  }

  /** Applies OCI LinuxResources to a running task. */
  async update(id: string, resources: Record<string, unknown>, annotations: Record<string, string> = {}, opts: CallOpts = {}) {
    const { shim } = await this.live(id, opts);
    await shim.task.update(id, packJsonAny(OCI_LINUX_RESOURCES_TYPE_URL, resources), annotations, {
      signal: opts.signal,
      timeoutMs: this.cfg.timeouts.shimCallMs,
    });
  }

  async closeIO(id: string, execId = "", opts: CallOpts = {}): Promise<void> {
    const { shim } = await this.live(id, opts);
    await shim.task.closeIO(id, execId, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
  }

  async resizePty(id: string, width: number, height: number, opts: CallOpts = {}): Promise<void> {
    const { shim } = await this.live(id, opts);
    await shim.task.resizePty(id, "", width, height, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
  }

  /** Starts the Wait call that records the exit. One per task; re-armed after reconnects. */
  monitor(id: string, shim: ShimHandle): void {
    if (this.monitored.has(id)) return;
    this.monitored.add(id);
    shim.task
      .wait(id, "")
      .then((res) => {
        this.exits.record(id, {
          exitStatus: res.exitStatus,
          exitedAt: exitTimeOf(res.exitedAt),
        });
      })
      .catch((err: unknown) => {
        // Connection loss is handled by the shim-disconnect path; NotFound means the shim
        // deleted the task (teardown under way) and the exit came from elsewhere.
        this.log.debug({ task: id, err: (err as Error).message }, "wait ended without exit");
      })
      .finally(() => this.monitored.delete(id));
  }

  /** Records an exit reported by a `/tasks/exit` event (duplicates are harmless). */
  handleExitEvent(containerId: string, execId: string, exitStatus: number, exitedAt: string): void {
    if (execId && execId !== containerId) return; // exec exits are not the task's exit
    if (!this.meta.tasks.find(containerId)) return;
    this.exits.record(containerId, { exitStatus, exitedAt });
  }

  /** The task row and a live connection to its shim (FailedPrecondition if the task is gone). */
  async live(id: string, opts: CallOpts = {}): Promise<{ task: Task; shim: ShimHandle }> {
    const task = this.meta.tasks.get(id);
    if (task.deletedAt !== null) throw notFound(`task "${id}" not found (deleted)`);
    let shim = this.shims.peek(task.shimId);
    if (!shim) {
      const row = this.meta.shims.find(task.shimId);
      // A dead shim took the task with it: NotFound, like a task the shim no longer has (its
      // teardown records the exit). Only a live shim that does not answer is Unavailable.
      const dead = async () => !row?.address || (row.pid !== null && !(await isAlive(row.pid)));
      const gone = () => notFound(`task "${id}" not found: its shim "${task.shimId}" is gone`);
      if (await dead()) throw gone();
      try {
        shim = await this.shims.connect(row!, opts);
      } catch (err) {
        if (await dead()) throw gone();
        throw unavailable(`shim "${task.shimId}" of task "${id}" is not reachable`, err);
      }
    }
    return { task, shim };
  }

  /**
   * Starts (or reconnects) the shim of `group` ahead of its first task, so that its start can
   * overlap other work (CNI set-up, snapshots). Undo with `releaseGroup` if no task follows.
   */
  async prepareGroup(group: string, runtime: string, opts: CallOpts = {}): Promise<void> {
    validateId(group, "group");
    await this.shims.ensure(group, runtime, opts);
  }

  /** Shuts the group's shim down unless a task uses it (the undo of `prepareGroup`). */
  releaseGroup(group: string): Promise<void> {
    return this.releaseShimIfUnused(group);
  }

  private async releaseShimIfUnused(shimId: string): Promise<void> {
    const users = this.meta.tasks.list({ shimId }).filter((t) => t.deletedAt === null);
    if (users.length > 0) return;
    if (await this.shims.shutdown(shimId)) await this.shims.forget(shimId);
  }

  async close(): Promise<void> {
    await this.teardown.close();
  }
}
