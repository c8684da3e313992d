import { test } from "node:test";
import assert from "node:assert/strict";
import { Waiters } from "./waiters.js";
import { linkedSignal } from "./signal.js";
import { ErrorCode } from "../errors.js";

test("waiters of a key share one resolution; a signal bounds only its own wait", async () => {
  const w = new Waiters<number>();
  const a = w.wait("k", undefined, "a");
  const ac = new AbortController();
  const b = w.wait("k", ac.signal, "b");
  ac.abort();
  await assert.rejects(b, (e: { code?: string }) => e.code === ErrorCode.Canceled);
  w.resolve("other", 1);
  w.resolve("k", 7);
  assert.equal(await a, 7);
  w.resolve("k", 8); // nobody waits any more: ignored
  const deadline = linkedSignal([], 20);
  const c = w.wait("k", deadline.signal, "c");
  await assert.rejects(c, (e: { code?: string }) => e.code === ErrorCode.DeadlineExceeded, "a new wait after resolve waits anew");
  deadline.dispose();
});
