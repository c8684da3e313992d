/** One FIFO mutex per key, dropped when idle. Not re-entrant for the same key. */
import { Mutex } from "../content/mutex.js";

export class KeyedMutex {
  readonly #locks = new Map<string, { mutex: Mutex; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let e = this.#locks.get(key);
    if (!e) {
      e = { mutex: new Mutex(), users: 0 };
      this.#locks.set(key, e);
    }
    e.users++;
    try {
      return await e.mutex.run(fn);
    } finally {
      if (--e.users === 0) this.#locks.delete(key);
    }
  }
}
