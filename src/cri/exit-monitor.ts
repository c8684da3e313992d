/**
 * The CRI exit monitor: one Wait per task (through the tasks service, which registers its own
 * shim Wait before Start and also takes `/tasks/exit` events), and a backoff queue that runs the
 * exit handler of each id in order, retrying failures (1 s doubling to 5 min by default) until
 * they succeed. The handler records the CRI state and hands the task to the daemon's teardown.
 */
import type { Logger } from "../log.js";
import type { TasksService } from "../tasks/service.js";
import type { ExitStatus } from "../tasks/types.js";
import { BackoffQueue } from "./backoff.js";
import { sharedSignal } from "../util/signal.js";

export type ExitHandler = (id: string, exit: ExitStatus) => Promise<void>;

export class ExitMonitor {
  readonly queue: BackoffQueue;
  readonly #watched = new Set<string>();
  readonly #stop = new AbortController();
  #handler: ExitHandler | undefined;

  constructor(
    private readonly tasks: TasksService,
    private readonly log: Logger,
    backoff: { initialMs: number; maxMs: number },
  ) {
    this.queue = new BackoffQueue({ ...backoff, log });
  }

  /** Set once, before the first `watch`. */
  setHandler(h: ExitHandler): void {
    this.#handler = h;
  }

  /** Starts watching the task `id` (no-op if already watched). */
  watch(id: string): void {
    if (this.#watched.has(id) || this.#stop.signal.aborted) return;
    this.#watched.add(id);
    this.tasks
      .wait(id, { signal: sharedSignal(this.#stop.signal) })
      .then((exit) => this.handle(id, exit))
      .catch((err: unknown) => {
        if (!this.#stop.signal.aborted) this.log.warn({ id, err: (err as Error).message }, "exit watch ended without an exit");
      })
      .finally(() => this.#watched.delete(id));
  }

  /** Queues the exit handler for `id` (also used by recovery for exits found at start-up). */
  handle(id: string, exit: ExitStatus): Promise<void> {
    const h = this.#handler;
    if (!h) throw new Error("exit monitor: no handler set");
    return this.queue.push(id, "handle exit", () => h(id, exit));
  }

  close(): void {
    this.#stop.abort();
    this.queue.close();
  }
}
