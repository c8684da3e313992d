/**
 * A FIFO async mutex: `run(fn)` starts `fn` once every earlier `fn` has settled. A rejected `fn`
 * does not poison the queue. Not re-entrant: calling `run` from inside `fn` deadlocks.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
