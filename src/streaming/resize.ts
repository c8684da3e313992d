/**
 * Terminal resize events: a stream of concatenated JSON objects `{"Width":w,"Height":h}`
 * (Go's json.Encoder writes one after another, optionally newline-separated; one chunk may
 * carry part of an object or several).
 */
import type { TerminalSize } from "./types.js";

/** Splits text into complete top-level JSON objects; returns them and the unconsumed rest. */
export function splitJsonObjects(text: string): { objects: string[]; rest: string } {
  const objects: string[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  let consumed = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{") {
      if (depth === 0) start = i;
      depth++;
    } else if (c === "}" && depth > 0) {
      depth--;
      if (depth === 0) {
        objects.push(text.slice(start, i + 1));
        consumed = i + 1;
      }
    } else if (depth === 0) {
      consumed = i + 1; // whitespace or garbage between objects is dropped
    }
  }
  return { objects, rest: text.slice(consumed) };
}

/** Converts one decoded object to a TerminalSize; undefined if it is not one. */
export function toTerminalSize(json: string): TerminalSize | undefined {
  try {
    const v = JSON.parse(json) as { Width?: unknown; Height?: unknown };
    const w = v.Width;
    const h = v.Height;
    if (typeof w !== "number" || typeof h !== "number" || !Number.isInteger(w) || !Number.isInteger(h)) return undefined;
    if (w < 0 || h < 0 || w > 0xffff || h > 0xffff) return undefined;
    return { width: w, height: h };
  } catch {
    return undefined;
  }
}

/**
 * A push-based async queue of sizes. `push` from the transport, `end` when the source ends;
 * iteration ends after `end`. Safe for exactly one consumer.
 */
export class ResizeQueue implements AsyncIterable<TerminalSize> {
  private readonly items: TerminalSize[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private text = "";

  /** Feeds raw bytes of the JSON stream. */
  write(chunk: Buffer): void {
    const { objects, rest } = splitJsonObjects(this.text + chunk.toString("utf8"));
    // Bound the partial buffer: a real resize object is a few dozen bytes.
    this.text = rest.length > 4096 ? "" : rest;
    for (const o of objects) {
      const s = toTerminalSize(o);
      if (s) this.push(s);
    }
  }

  push(s: TerminalSize): void {
    if (this.ended) return;
    this.items.push(s);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TerminalSize> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}
