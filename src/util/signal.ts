/**
 * AbortSignal helpers. Every helper that adds a listener removes it again, so long-lived
 * signals (the daemon's shutdown signal) never accumulate listeners.
 */
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
