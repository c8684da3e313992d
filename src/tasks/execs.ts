/**
 * Exec processes of a task: added, started, waited on, killed and deleted through the task's
 * shim, with their exits recorded (first wins) in the `execs` table like a task's.
 *
 * An exec lives inside its task: deleting the task's record cascades to its execs, and the
 * shim forgets them with the container.
 */
import type { MetadataStore } from "../metadata/index.js";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { TasksService, CallOpts } from "./service.js";
import { normalizeStdio, type ExecRequest, type ExitStatus } from "./types.js";
import { OCI_PROCESS_TYPE_URL, packJsonAny } from "../proto/any.js";
import { invalidArgument, isNotFound, notFound } from "../errors.js";
import { validateId } from "../runtime/bundle.js";
import { Waiters } from "../util/waiters.js";
import { exitTimeOf, nowRfc3339 } from "../util/time.js";

const key = (taskId: string, execId: string) => `${taskId}\u0000${execId}`;

export class ExecService {
  private readonly waiters = new Waiters<ExitStatus>();

  constructor(
    private readonly cfg: Config,
    private readonly meta: MetadataStore,
    private readonly tasks: TasksService,
    private readonly log: Logger,
  ) {}

  /** Adds an exec process to a running task (not started yet). */
  async add(req: ExecRequest, opts: CallOpts = {}): Promise<void> {
    validateId(req.execId, "exec id");
    if (!Array.isArray((req.process as { args?: unknown }).args)) {
      throw invalidArgument(`exec "${req.execId}": process.args must be a list`);
    }
    const { shim } = await this.tasks.live(req.taskId, opts);
    const io = normalizeStdio(req);
    this.meta.execs.create({ taskId: req.taskId, execId: req.execId, ...io });
    try {
      await shim.task.exec(
        {
          id: req.taskId,
          execId: req.execId,
          ...io,
          spec: packJsonAny(OCI_PROCESS_TYPE_URL, req.process),
        },
        { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs },
      );
    } catch (err) {
      this.meta.execs.delete(req.taskId, req.execId);
      throw err;
    }
  }

  /** Starts an added exec; its Wait is registered first so the exit is never missed. */
  async start(taskId: string, execId: string, opts: CallOpts = {}): Promise<number> {
    const { shim } = await this.tasks.live(taskId, opts);
    this.meta.execs.get(taskId, execId);
    const res = await shim.task.start(taskId, execId, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
    this.meta.execs.update(taskId, execId, { pid: res.pid, status: "running" });
    shim.task
      .wait(taskId, execId)
      .then((w) =>
        this.record(taskId, execId, {
          exitStatus: w.exitStatus,
          exitedAt: exitTimeOf(w.exitedAt),
        }),
      )
      .catch((err: unknown) => this.log.debug({ task: taskId, exec: execId, err: (err as Error).message }, "exec wait ended"));
    return res.pid;
  }

  private record(taskId: string, execId: string, exit: ExitStatus): void {
    if (!this.meta.execs.find(taskId, execId)) return;
    const res = this.meta.execs.recordExit(taskId, execId, { ...exit, reason: exit.reason ?? null });
    const stands = { exitStatus: res.exit.exitStatus, exitedAt: res.exit.exitedAt };
    this.waiters.resolve(key(taskId, execId), stands);
  }

  wait(taskId: string, execId: string, opts: CallOpts = {}): Promise<ExitStatus> {
    const e = this.meta.execs.get(taskId, execId);
    if (e.exitStatus !== null) return Promise.resolve({ exitStatus: e.exitStatus, exitedAt: e.exitedAt! });
    return this.waiters.wait(key(taskId, execId), opts.signal, `wait for exec "${execId}" of "${taskId}"`);
  }

  async kill(taskId: string, execId: string, signal: number, opts: CallOpts = {}): Promise<void> {
    this.meta.execs.get(taskId, execId);
    await this.tasks.kill(taskId, signal, { execId, signal: opts.signal });
  }

  async resize(taskId: string, execId: string, width: number, height: number, opts: CallOpts = {}): Promise<void> {
    const { shim } = await this.tasks.live(taskId, opts);
    await shim.task.resizePty(taskId, execId, width, height, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
  }

  /** Deletes an exited exec in the shim and its record; returns its exit. */
  async delete(taskId: string, execId: string, opts: CallOpts = {}): Promise<ExitStatus> {
    const e = this.meta.execs.find(taskId, execId);
    if (!e) throw notFound(`exec "${execId}" of task "${taskId}" not found`);
    const { shim } = await this.tasks.live(taskId, opts);
    try {
      const res = await shim.task.delete(taskId, execId, { signal: opts.signal, timeoutMs: this.cfg.timeouts.shimCallMs });
      this.record(taskId, execId, {
        exitStatus: res.exitStatus,
        exitedAt: exitTimeOf(res.exitedAt),
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const done = this.meta.execs.find(taskId, execId);
    this.meta.execs.delete(taskId, execId);
    return { exitStatus: done?.exitStatus ?? 255, exitedAt: done?.exitedAt ?? nowRfc3339() };
  }
}
