/**
 * AbortSignal helpers. Every helper that adds a listener removes it again, so long-lived
 * signals (the daemon's shutdown signal) never accumulate listeners.
 */
import { setMaxListeners } from "node:events";
import { canceled, deadlineExceeded, SkiffError } from "../errors.js";

/** Throws a SkiffError (Canceled or DeadlineExceeded) if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = "operation"): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** Maps an aborted signal's reason to a SkiffError with the right code. */
export function abortError(signal: AbortSignal, what = "operation"): SkiffError {
  const reason: unknown = signal.reason;
  if (reason instanceof SkiffError) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return deadlineExceeded(`${what}: deadline exceeded`, reason);
  }
  return canceled(`${what}: canceled`, reason);
}

/** Resolves after `ms`, or rejects when `signal` aborts; the timer and listener are always cleared. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, "sleep"));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!, "sleep"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Races `promise` against `signal`. The underlying work is not stopped (it may be outside
 * our control, e.g. a ttrpc call running in a shim); only the wait is bounded.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, what = "operation"): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Combines optional signals; undefined entries are ignored. */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const list = signals.filter((s): s is AbortSignal => s !== undefined);
  if (list.length === 0) return undefined;
  if (list.length === 1) return list[0];
  return AbortSignal.any(list);
}

/** A signal owned by one operation; `dispose()` clears its timer and detaches from the parents. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * A signal that aborts when any parent aborts or after `timeoutMs` (reason: a TimeoutError).
 *
 * Use this instead of `AbortSignal.any([s, AbortSignal.timeout(ms)])`: on Node 20 the composite
 * holds its sources weakly, so a timeout signal nobody else references can be garbage-collected
 * and its timer never fires — an operation then waits far past its deadline. Here the timer
 * holds the controller strongly. Always call `dispose()` when the operation ends (it removes the
 * listeners from long-lived parents).
 */
export function linkedSignal(parents: (AbortSignal | undefined)[], timeoutMs?: number): LinkedSignal {
  const ac = new AbortController();
  const live = parents.filter((s): s is AbortSignal => s !== undefined);
  const detach: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const dispose = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    for (const d of detach.splice(0)) d();
  };
  const abort = (reason: unknown) => {
    dispose();
    if (!ac.signal.aborted) ac.abort(reason);
  };
  for (const p of live) {
    if (p.aborted) {
      abort(p.reason);
      return { signal: ac.signal, dispose };
    }
    const onAbort = () => abort(p.reason);
    p.addEventListener("abort", onAbort, { once: true });
    detach.push(() => p.removeEventListener("abort", onAbort));
  }
  // Node fires a timer of more than 2^31-1 ms (24.8 days) after 1 ms instead: a request's
  // "one year" would have been an immediate timeout. Longer bounds are no bound.
  if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
    timer = setTimeout(() => abort(new DOMException(`timed out after ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  }
  return { signal: ac.signal, dispose };
}

/** The longest delay a Node timer honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Marks a signal that is expected to carry many abort listeners at once (one per task watched,
 * per call in flight): Node's leak warning at 11 listeners is no leak there. Returns the signal.
 */
export function sharedSignal(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal);
  return signal;
}
