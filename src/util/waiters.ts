/**
 * One-shot waiters by key: `wait(key)` resolves when `resolve(key, value)` is called. All waiters
 * of a key share one promise; a caller's signal bounds only its own wait.
 */
import { raceSignal } from "./signal.js";

export class Waiters<V> {
  private readonly pending = new Map<string, { promise: Promise<V>; resolve: (v: V) => void }>();

  wait(key: string, signal: AbortSignal | undefined, what: string): Promise<V> {
    let w = this.pending.get(key);
    if (!w) {
      let resolve!: (v: V) => void;
      const promise = new Promise<V>((r) => (resolve = r));
      w = { promise, resolve };
      this.pending.set(key, w);
    }
    return raceSignal(w.promise, signal, what);
  }

  resolve(key: string, value: V): void {
    const w = this.pending.get(key);
    if (!w) return;
    this.pending.delete(key);
    w.resolve(value);
  }
}
