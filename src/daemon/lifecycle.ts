/**
 * Explicit wiring: components are listed once, started in order, closed in reverse order.
 * A component that fails to start closes everything started before it.
 */
import type { Logger } from "../log.js";

export interface Component {
  readonly name: string;
  start(): Promise<void>;
  close(): Promise<void>;
}

export class Lifecycle {
  private readonly started: Component[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  async startAll(components: Component[]): Promise<void> {
    for (const c of components) {
      try {
        await c.start();
        this.started.push(c);
        this.log.debug({ component: c.name }, "started");
      } catch (err) {
        this.log.error({ component: c.name, err: (err as Error).message }, "start failed");
        await this.closeAll();
        throw err;
      }
    }
  }

  /** Idempotent; errors are logged, and every component still gets closed. */
  closeAll(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.started.reverse()) {
        try {
          await c.close();
        } catch (err) {
          this.log.error({ component: c.name, err: (err as Error).message }, "close failed");
        }
      }
      this.started.length = 0;
    })();
    return this.closing;
  }
}
