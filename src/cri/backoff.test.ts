import { test } from "node:test";
import assert from "node:assert/strict";
import { BackoffQueue } from "./backoff.js";
import { silentLogger } from "../log.js";

test("jobs of one id run one at a time, in order; failures retry with doubling delay", async () => {
  const q = new BackoffQueue({ initialMs: 20, maxMs: 50, log: silentLogger });
  const order: string[] = [];
  let running = 0;
  let fails = 3;
  const at: number[] = [];
  const first = q.push("a", "first", async () => {
    running++;
    assert.equal(running, 1, "never two jobs of one id at once");
    at.push(Date.now());
    await new Promise((r) => setTimeout(r, 5));
    running--;
    if (fails-- > 0) throw new Error("not yet");
    order.push("first");
  });
  const second = q.push("a", "second", async () => void order.push("second"));
  const other = q.push("b", "other", async () => void order.push("other"));
  await Promise.all([first, second, other]);
  assert.deepEqual(order, ["other", "first", "second"], "b did not wait for a's retries; a's jobs kept their order");
  const gaps = at.slice(1).map((t, i) => t - at[i]!);
  assert.ok(gaps[0]! >= 20 && gaps[1]! >= 40 && gaps[2]! >= 50, `delays doubled up to the cap: ${gaps}`);
  assert.ok(gaps[2]! < 100, "capped at maxMs");
  assert.equal(q.pending("a"), 0);
  assert.equal(await q.drain(100), true);
  q.close();
});

test("close stops retries; drain reports a stuck lane", async () => {
  const q = new BackoffQueue({ initialMs: 10_000, maxMs: 10_000, log: silentLogger });
  let calls = 0;
  void q.push("x", "always fails", async () => {
    calls++;
    throw new Error("no");
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await q.drain(50), false);
  q.close(); // clears the 10 s retry timer: the test process can exit
  assert.equal(calls, 1);
});
