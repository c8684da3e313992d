/**
 * Undo stack for multi-step operations: each step pushes its inverse; on failure `unwind` runs
 * them in reverse, each under a fresh timeout (never the caller's possibly aborted signal), and
 * logs (not throws) their failures so that every inverse gets its chance.
 */
import type { Logger } from "../log.js";

type Undo = () => Promise<unknown> | unknown;

export class UndoStack {
  private steps: { what: string; fn: Undo }[] = [];

  constructor(private readonly log?: Logger) {}

  push(what: string, fn: Undo): void {
    this.steps.push({ what, fn });
  }

  /** Forget every step: the operation succeeded. */
  clear(): void {
    this.steps = [];
  }

  async unwind(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    for (const s of steps) {
      try {
        await s.fn();
      } catch (err) {
        this.log?.warn({ step: s.what, err: (err as Error).message }, "undo step failed");
      }
    }
  }
}
