import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { applyResizes } from "./exec-process.js";
import type { TerminalSize } from "./types.js";

test("applyResizes: in order, zero sizes skipped, a failing apply does not stop later ones", async () => {
  const sizes = new PassThrough({ objectMode: true });
  const applied: string[] = [];
  const done = applyResizes(sizes as AsyncIterable<TerminalSize>, async (w, h) => {
    applied.push(`${w}x${h}`);
    if (w === 1) throw new Error("shim refused");
  }, new AbortController().signal);
  for (const s of [{ width: 80, height: 24 }, { width: 0, height: 0 }, { width: 1, height: 1 }, { width: 120, height: 40 }]) sizes.write(s);
  sizes.end();
  await done;
  assert.deepEqual(applied, ["80x24", "1x1", "120x40"]);
});

test("applyResizes: stops at abort and when the iteration fails", async () => {
  const ac = new AbortController();
  const sizes = new PassThrough({ objectMode: true });
  const applied: number[] = [];
  const done = applyResizes(sizes as AsyncIterable<TerminalSize>, async (w) => {
    applied.push(w);
    ac.abort();
  }, ac.signal);
  sizes.write({ width: 10, height: 10 });
  sizes.write({ width: 20, height: 10 });
  await new Promise((r) => setImmediate(r));
  sizes.destroy(new Error("connection reset"));
  await done;
  assert.deepEqual(applied, [10]);
});
