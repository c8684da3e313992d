import { test } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { abortError, linkedSignal, raceSignal, sharedSignal, sleep } from "./signal.js";
import { ErrorCode } from "../errors.js";

test("linkedSignal times out with a TimeoutError that maps to DeadlineExceeded", async () => {
  const l = linkedSignal([], 30);
  await assert.rejects(raceSignal(new Promise(() => {}), l.signal, "op"), (e: { code?: string }) => e.code === ErrorCode.DeadlineExceeded);
  assert.equal(abortError(l.signal).code, ErrorCode.DeadlineExceeded);
});

test("linkedSignal follows its parents and detaches from them on dispose", async () => {
  const parent = new AbortController();
  sharedSignal(parent.signal); // 50 listeners on purpose
  const links = Array.from({ length: 50 }, () => linkedSignal([parent.signal, undefined], 60_000));
  assert.equal(getEventListeners(parent.signal, "abort").length, 50);
  for (const l of links.slice(1)) l.dispose();
  assert.equal(getEventListeners(parent.signal, "abort").length, 1, "disposed links leave no listener behind");
  parent.abort(new Error("stop"));
  assert.equal(links[0]!.signal.aborted, true);
  assert.equal(abortError(links[0]!.signal).code, ErrorCode.Canceled);
  assert.equal(links[1]!.signal.aborted, false, "a disposed link no longer follows");
  const pre = linkedSignal([parent.signal]);
  assert.equal(pre.signal.aborted, true, "an already aborted parent aborts at once");
});

test("the timer keeps firing with no other reference to the signal (GC-safe by construction)", async () => {
  let fired = false;
  (() => {
    const l = linkedSignal([], 20);
    l.signal.addEventListener("abort", () => (fired = true));
  })();
  await sleep(80);
  assert.equal(fired, true);
});

test("linkedSignal: a bound beyond what a Node timer holds is no bound, not an immediate timeout", async () => {
  const l = linkedSignal([], 365 * 24 * 3600 * 1000);
  await sleep(20);
  assert.equal(l.signal.aborted, false);
  l.dispose();
});

test("sharedSignal: a signal with many listeners on purpose gives no leak warning", async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on("warning", onWarning);
  const ac = new AbortController();
  assert.equal(sharedSignal(ac.signal), ac.signal);
  const links = Array.from({ length: 20 }, () => linkedSignal([ac.signal], 60_000));
  await new Promise((r) => setImmediate(r));
  process.off("warning", onWarning);
  for (const l of links) l.dispose();
  assert.deepEqual(warnings.filter((w) => w === "MaxListenersExceededWarning"), []);
});
