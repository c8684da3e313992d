/**
 * Lifecycle events of CRI containers and pod sandboxes, fanned out to every GetContainerEvents
 * subscriber (kubelet's evented PLEG).
 *
 * What is sent matches containerd's CRI plugin: each event carries the id it is about, its type,
 * the time, the status of the pod sandbox and the statuses of all the pod's containers as they
 * are right after the change. A pod sandbox's own events use the sandbox id as container id
 * (RunPodSandbox sends CREATED then STARTED, the pause process's exit or StopPodSandbox sends
 * STOPPED, RemovePodSandbox sends DELETED).
 *
 * Invariants:
 * - `emit` never blocks and never throws: it is called by the pod and container services right
 *   after a state change is stored, on their hot paths.
 * - Each subscriber has a bounded queue. A subscriber whose queue is full (it does not read, or
 *   reads slower than events come) is dropped at once: its queue is freed, it gets no further
 *   events, and its stream ends with ResourceExhausted (events-rpc.ts resets a stream stuck on
 *   a client that does not read, since no status can pass the unread data). containerd
 *   drops such a subscriber after a send timeout instead; a bound on memory rather than on time
 *   keeps the daemon's cost per stuck client fixed, and the client (kubelet) resubscribes and
 *   relists, as it does after any stream error.
 * - Per id, events go out in lifecycle order and at most once per type: a type not later than
 *   the last one sent for the id is dropped. Two paths may record the same change (the pause
 *   process's exit handler and StopPodSandbox both mark a pod NOTREADY); one STOPPED is sent.
 * - Single-threaded use only (the event loop); no locking.
 */
import { ErrorCode, SkiffError } from "../errors.js";
import type { Logger } from "../log.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

export type ContainerEventType = "created" | "started" | "stopped" | "deleted";

const ORDER: Record<ContainerEventType, number> = { created: 0, started: 1, stopped: 2, deleted: 3 };

/** One event, in domain terms (events-rpc.ts converts it to the CRI message). */
export interface ContainerEvent {
  /** The container's id, or the pod sandbox's id for events about the sandbox itself. */
  containerId: string;
  type: ContainerEventType;
  /** Nanoseconds since the epoch. */
  createdAtNs: bigint;
  /** The pod sandbox as it is now; undefined once its record is gone. */
  pod: SandboxRecord | undefined;
  /** Every (complete) container of the pod sandbox, as it is now. */
  containers: ContainerRecord[];
}

/** What an event reports about a pod sandbox: read when the event is emitted. */
export type PodSnapshot = (sandboxId: string) => { pod: SandboxRecord | undefined; containers: ContainerRecord[] };

/** Default per-subscriber queue bound (containerd's CRI plugin buffers 1000 events too). */
export const DEFAULT_EVENTS_QUEUE = 1000;

/**
 * One subscriber's queue. Created by `ContainerEvents.subscribe()`; the subscriber reads with
 * `next()` and must call `close()` when it stops reading (idempotent).
 */
export class Subscription {
  readonly #queue: ContainerEvent[] = [];
  #waiter: { resolve: (ev: ContainerEvent | undefined) => void; reject: (err: unknown) => void } | undefined;
  /** Set once the subscription ended: `null` for a normal end, else the error to report. */
  #end: Error | null | undefined;
  #onDrop: ((err: Error) => void) | undefined;

  constructor(
    private readonly capacity: number,
    private readonly onClose: (s: Subscription) => void,
  ) {}

  /** Events waiting to be read. */
  get queued(): number {
    return this.#queue.length;
  }

  get closed(): boolean {
    return this.#end !== undefined;
  }

  /** Queues an event; false (and nothing queued) when the queue is full. */
  push(ev: ContainerEvent): boolean {
    if (this.#end !== undefined) return true;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve(ev);
      return true;
    }
    if (this.#queue.length >= this.capacity) return false;
    this.#queue.push(ev);
    return true;
  }

  /**
   * The next event; undefined once the subscription ended normally. Rejects with the drop error
   * if the subscriber was dropped, or with the signal's reason when it aborts (the subscription
   * stays usable then). One `next()` at a time.
   */
  next(signal?: AbortSignal): Promise<ContainerEvent | undefined> {
    const ev = this.#queue.shift();
    if (ev) return Promise.resolve(ev);
    if (this.#end !== undefined) return this.#end ? Promise.reject(this.#end) : Promise.resolve(undefined);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#waiter = undefined;
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const detach = () => signal?.removeEventListener("abort", onAbort);
      this.#waiter = {
        resolve: (v) => {
          detach();
          resolve(v);
        },
        reject: (err) => {
          detach();
          reject(err);
        },
      };
    });
  }

  /**
   * Called (once) if the subscription ends with an error, i.e. it is dropped. The reader may be
   * stuck outside `next()` (in a write the client does not drain); this lets it end the transport.
   */
  onDrop(fn: (err: Error) => void): void {
    this.#onDrop = fn;
  }

  /** Ends the subscription: queued events are discarded; a pending `next()` gets `err` (or undefined). */
  end(err?: Error): void {
    if (this.#end !== undefined) return;
    this.#end = err ?? null;
    if (err) {
      try {
        this.#onDrop?.(err);
      } catch {
        // The hook only hurries the transport's end; emit must not fail because of it.
      }
    }
    this.#queue.length = 0;
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w) {
      if (err) w.reject(err);
      else w.resolve(undefined);
    }
    this.onClose(this);
  }

  /** The subscriber stops reading (idempotent). */
  close(): void {
    this.end();
  }
}

export interface ContainerEventsOptions {
  /** Per-subscriber queue bound. */
  capacity?: number;
  log?: Logger;
}

/** The broadcaster. Owned by the container service; lives as long as the daemon. */
export class ContainerEvents {
  readonly #subs = new Set<Subscription>();
  /** Last type sent per id (entries go with DELETED). */
  readonly #last = new Map<string, number>();
  readonly #capacity: number;
  readonly #log: Logger | undefined;
  #closed = false;

  constructor(
    private readonly snapshot: PodSnapshot,
    opts: ContainerEventsOptions = {},
  ) {
    this.#capacity = Math.max(1, opts.capacity ?? DEFAULT_EVENTS_QUEUE);
    this.#log = opts.log;
  }

  get subscribers(): number {
    return this.#subs.size;
  }

  /** A new subscriber; after `close()` its subscription has already ended. */
  subscribe(): Subscription {
    const sub = new Subscription(this.#capacity, (s) => this.#subs.delete(s));
    this.#subs.add(sub);
    if (this.#closed) sub.end();
    return sub;
  }

  /**
   * Sends an event about `id` (a container of pod `sandboxId`, or the pod itself when both are
   * equal) to every subscriber. Never throws: a failure to read the statuses is logged and the
   * event goes out without them, as containerd does.
   */
  emit(type: ContainerEventType, id: string, sandboxId: string): void {
    const last = this.#last.get(id);
    if (last !== undefined && ORDER[type] <= last) return;
    if (type === "deleted") this.#last.delete(id);
    else this.#last.set(id, ORDER[type]);
    if (this.#subs.size === 0) return;
    let snap: ReturnType<PodSnapshot> = { pod: undefined, containers: [] };
    try {
      snap = this.snapshot(sandboxId);
    } catch (err) {
      this.#log?.warn({ id, sandboxId, err: (err as Error).message }, "container event sent without statuses");
    }
    const ev: ContainerEvent = { containerId: id, type, createdAtNs: nowNs(), pod: snap.pod, containers: snap.containers };
    for (const sub of [...this.#subs]) {
      if (sub.push(ev)) continue;
      this.#log?.warn({ queued: sub.queued }, "container events subscriber too slow, dropped");
      sub.end(new SkiffError(ErrorCode.ResourceExhausted, `container events subscriber dropped: ${this.#capacity} events queued unread`));
    }
  }

  /**
   * Ends every subscription normally, now and for later subscribers (daemon shutdown: the CRI
   * server's drain would otherwise wait its full timeout on these endless streams). Idempotent.
   */
  close(): void {
    this.#closed = true;
    for (const sub of [...this.#subs]) sub.end();
  }
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
