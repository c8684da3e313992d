/**
 * A retry queue keyed by id: jobs of one id run one at a time, in order (FIFO); a failing job is
 * retried after a delay that doubles from `initialMs` up to `maxMs`, and is never dropped. Jobs of
 * different ids run independently. `close()` stops scheduling (pending jobs are abandoned: they
 * are daemon work that start-up recovery redoes).
 */
import type { Logger } from "../log.js";

export type Job = () => Promise<void>;

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  log: Logger;
}

interface Lane {
  jobs: { what: string; fn: Job; resolve: () => void }[];
  attempt: number;
  timer?: NodeJS.Timeout;
  running: boolean;
}

export class BackoffQueue {
  readonly #lanes = new Map<string, Lane>();
  #closed = false;

  constructor(private readonly opts: BackoffOptions) {}

  /** Queues `fn` behind the id's earlier jobs; resolves when it has succeeded. */
  push(id: string, what: string, fn: Job): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) return;
      let lane = this.#lanes.get(id);
      if (!lane) {
        lane = { jobs: [], attempt: 0, running: false };
        this.#lanes.set(id, lane);
      }
      lane.jobs.push({ what, fn, resolve });
      if (!lane.running && !lane.timer) void this.#run(id, lane);
    });
  }

  /** Jobs waiting or running for `id`. */
  pending(id: string): number {
    return this.#lanes.get(id)?.jobs.length ?? 0;
  }

  async #run(id: string, lane: Lane): Promise<void> {
    lane.timer = undefined;
    while (!this.#closed && lane.jobs.length > 0) {
      const job = lane.jobs[0]!;
      lane.running = true;
      try {
        await job.fn();
      } catch (err) {
        lane.running = false;
        if (this.#closed) return;
        const delay = Math.min(this.opts.initialMs * 2 ** lane.attempt, this.opts.maxMs);
        lane.attempt++;
        this.opts.log.warn({ id, job: job.what, attempt: lane.attempt, retryInMs: delay, err: (err as Error).message }, "job failed, will retry");
        lane.timer = setTimeout(() => void this.#run(id, lane), delay);
        return;
      }
      lane.running = false;
      lane.attempt = 0;
      lane.jobs.shift();
      job.resolve();
    }
    if (lane.jobs.length === 0 && this.#lanes.get(id) === lane) this.#lanes.delete(id);
  }

  /** Resolves once no job is queued or running, or after `timeoutMs` (false then). */
  async drain(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.#lanes.size > 0) {
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  close(): void {
    this.#closed = true;
    for (const lane of this.#lanes.values()) if (lane.timer) clearTimeout(lane.timer);
    this.#lanes.clear();
  }
}
