/**
 * In-process event exchange: shims' forwarded events (and the daemon's own) are published here
 * and fanned out to subscribers.
 *
 * Guarantees:
 * - `publish` is synchronous and never waits for a subscriber. Each subscriber has a bounded
 *   buffer; when it is full the oldest event is dropped and the subscriber's `dropped` counter
 *   grows. One slow subscriber never delays the publisher or other subscribers.
 * - Events reach a given subscriber in publish order (minus drops).
 * - No deduplication. Shims may publish the same event twice (e.g. a /tasks/exit re-sent after a
 *   reconnect) and delivery is at-most-once per subscriber, so subscribers must be idempotent and
 *   must not treat events as the only source of truth (exits come from Wait first; events are a
 *   second, duplicate-tolerant signal).
 * - Unsubscribing (abort, `close()`, `return` from `for await`, the function returned by `on`)
 *   always detaches the subscriber from the exchange and removes its abort listener.
 *
 * Safe to use from any number of publishers and subscribers (single-threaded event loop).
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors.js";
import { abortError } from "../util/signal.js";

/** An event as it travels through the exchange; `event` keeps the shim's Any untouched. */
export interface Envelope {
  timestamp: Date;
  namespace: string;
  topic: string;
  event: Any;
}

/**
 * Selects events. `topics` entries match exactly, or as a prefix when they end in `/`
 * (`/tasks/` matches `/tasks/exit`). Absent or empty `topics` matches every topic; absent
 * `namespace` matches every namespace.
 */
export interface EventFilter {
  topics?: readonly string[];
  namespace?: string;
}

export interface SubscribeOptions {
  /** Aborting ends the subscription; a pending or later `next()` rejects with Canceled/DeadlineExceeded. */
  signal?: AbortSignal;
  /** Events buffered before the oldest is dropped. Default: the exchange's `bufferSize`. */
  bufferSize?: number;
}

/** A live subscription. Iterate it once (single consumer). */
export interface Subscription extends AsyncIterableIterator<Envelope> {
  /** Events dropped because the buffer was full. */
  readonly dropped: number;
  /** Detaches and ends iteration (quietly); buffered events are discarded. Idempotent. */
  close(): void;
}

export interface OnOptions extends SubscribeOptions {
  /** Called when the callback throws or rejects. Default: the exchange's `onListenerError`. */
  onError?: (err: unknown, envelope: Envelope) => void;
}

export interface EventExchangeOptions {
  /** Default per-subscriber buffer size (default 1024). */
  bufferSize?: number;
  /** Called when an `on` callback fails. Default: `process.emitWarning`. */
  onListenerError?: (err: unknown, envelope: Envelope) => void;
}

const DEFAULT_BUFFER_SIZE = 1024;

export function topicMatches(filter: EventFilter, env: Pick<Envelope, "topic" | "namespace">): boolean {
  if (filter.namespace !== undefined && filter.namespace !== env.namespace) return false;
  const topics = filter.topics;
  if (!topics || topics.length === 0) return true;
  return topics.some((t) => (t.endsWith("/") ? env.topic.startsWith(t) : env.topic === t));
}

export class EventExchange {
  readonly #subscribers = new Set<Subscriber>();
  readonly #bufferSize: number;
  readonly #onListenerError: (err: unknown, envelope: Envelope) => void;
  #closed = false;

  constructor(opts: EventExchangeOptions = {}) {
    this.#bufferSize = checkBufferSize(opts.bufferSize ?? DEFAULT_BUFFER_SIZE);
    this.#onListenerError =
      opts.onListenerError ??
      ((err, env) => process.emitWarning(`event listener for ${env.topic} failed: ${String(err)}`, "SkiffEventWarning"));
  }

  /** Number of attached subscribers (iterators and callbacks). */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /**
   * Delivers `envelope` to every matching subscriber's buffer and returns at once.
   * Throws InvalidArgument if the topic does not start with `/`, the namespace is empty or the
   * event is missing. Publishing on a closed exchange is a no-op.
   */
  publish(envelope: Envelope): void {
    validate(envelope);
    if (this.#closed) return;
    for (const sub of this.#subscribers) {
      if (topicMatches(sub.filter, envelope)) sub.push(envelope);
    }
  }

  /** Subscribes with an async iterator. See `Subscription` and `SubscribeOptions`. */
  subscribe(filter: EventFilter = {}, opts: SubscribeOptions = {}): Subscription {
    const sub = new Subscriber(filter, checkBufferSize(opts.bufferSize ?? this.#bufferSize), (s) =>
      this.#subscribers.delete(s),
    );
    if (this.#closed) {
      sub.end();
      return sub;
    }
    this.#subscribers.add(sub);
    sub.watch(opts.signal);
    return sub;
  }

  /**
   * Calls `cb` for each matching event, one call at a time in publish order (an async callback is
   * awaited before the next). Calls happen asynchronously, never inside `publish`. A failing
   * callback is reported to `onError` and does not stop the subscription.
   * Returns an idempotent unsubscribe function.
   */
  on(filter: EventFilter, cb: (envelope: Envelope) => void | Promise<void>, opts: OnOptions = {}): () => void {
    const sub = this.subscribe(filter, opts);
    const onError = opts.onError ?? this.#onListenerError;
    void (async () => {
      try {
        for await (const env of sub) {
          try {
            await cb(env);
          } catch (err) {
            onError(err, env);
          }
        }
      } catch {
        // Aborted through opts.signal: the subscription is already detached.
      }
    })();
    return () => sub.close();
  }

  /** Ends every subscription (after it has drained its buffer) and ignores later publishes. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const sub of this.#subscribers) sub.end();
    this.#subscribers.clear();
  }
}

function validate(env: Envelope): void {
  if (!env.topic.startsWith("/")) throw invalidArgument(`event topic ${JSON.stringify(env.topic)} must start with "/"`);
  if (env.namespace === "") throw invalidArgument(`event ${env.topic}: namespace required`);
  if (!env.event) throw invalidArgument(`event ${env.topic}: payload required`);
}

function checkBufferSize(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`event buffer size must be a positive integer, got ${n}`);
  return n;
}

type Waiter = { resolve: (r: IteratorResult<Envelope>) => void; reject: (e: unknown) => void };

/** One subscriber: a bounded FIFO plus pending `next()` calls. */
class Subscriber implements Subscription {
  readonly filter: EventFilter;
  #dropped = 0;
  #buffer: Envelope[] = [];
  #head = 0;
  #waiters: Waiter[] = [];
  /** "open" → "ended" (drain buffer, then done) | "failed" (throw once, then done) | "closed" (done). */
  #state: "open" | "ended" | "failed" | "closed" = "open";
  #error: unknown;
  readonly #size: number;
  readonly #detach: (s: Subscriber) => void;
  #unwatch: (() => void) | undefined;

  constructor(filter: EventFilter, size: number, detach: (s: Subscriber) => void) {
    this.filter = { ...filter, topics: filter.topics ? [...filter.topics] : undefined };
    this.#size = size;
    this.#detach = detach;
  }

  get dropped(): number {
    return this.#dropped;
  }

  watch(signal: AbortSignal | undefined): void {
    if (!signal) return;
    if (signal.aborted) {
      this.#fail(abortError(signal, "event subscription"));
      return;
    }
    const onAbort = () => this.#fail(abortError(signal, "event subscription"));
    signal.addEventListener("abort", onAbort, { once: true });
    this.#unwatch = () => signal.removeEventListener("abort", onAbort);
  }

  push(env: Envelope): void {
    if (this.#state !== "open") return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve({ value: env, done: false });
      return;
    }
    this.#buffer.push(env);
    if (this.#buffer.length - this.#head > this.#size) {
      this.#head++;
      this.#dropped++;
    }
    // Compact lazily so dropping stays O(1) amortised.
    if (this.#head > 64 && this.#head * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
  }

  next(): Promise<IteratorResult<Envelope>> {
    if (this.#head < this.#buffer.length && (this.#state === "open" || this.#state === "ended")) {
      const value = this.#buffer[this.#head]!;
      this.#buffer[this.#head++] = undefined as unknown as Envelope;
      return Promise.resolve({ value, done: false });
    }
    switch (this.#state) {
      case "open":
        return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
      case "failed": {
        const err = this.#error;
        this.#state = "closed";
        return Promise.reject(err);
      }
      case "ended":
      case "closed":
        return Promise.resolve({ value: undefined, done: true });
      default: {
        const never: never = this.#state;
        return never;
      }
    }
  }

  return(): Promise<IteratorResult<Envelope>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): Subscription {
    return this;
  }

  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#release();
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  /** Exchange closed: deliver what is buffered, then finish. */
  end(): void {
    if (this.#state !== "open") return;
    this.#state = "ended";
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#detach(this);
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  #fail(err: unknown): void {
    if (this.#state === "closed" || this.#state === "failed") return;
    this.#release();
    const waiters = this.#waiters.splice(0);
    if (waiters.length > 0) {
      this.#state = "closed";
      for (const w of waiters) w.reject(err);
    } else {
      this.#state = "failed";
      this.#error = err;
    }
  }

  #release(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#buffer = [];
    this.#head = 0;
    this.#detach(this);
  }
}
