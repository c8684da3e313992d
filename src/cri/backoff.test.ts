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

test("push resolves only once its job has succeeded; a success resets the delay", async () => {
  const q = new BackoffQueue({ initialMs: 10, maxMs: 1000, log: silentLogger });
  let resolved = false;
  let fails = 2;
  const tries: number[] = [];
  const p = q
    .push("a", "flaky", async () => {
      tries.push(Date.now());
      if (fails-- > 0) throw new Error("flaky");
    })
    .then(() => (resolved = true));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(resolved, false, "still retrying");
  assert.equal(q.pending("a"), 1);
  await p;
  assert.equal(tries.length, 3);
  // The next failure of the lane starts again from initialMs, not from where the last one stopped.
  let again = 1;
  const at: number[] = [];
  await q.push("a", "next", async () => {
    at.push(Date.now());
    if (again-- > 0) throw new Error("once");
  });
  assert.ok(at[1]! - at[0]! < 35, `delay reset to ~10 ms, was ${at[1]! - at[0]!}`);
  assert.equal(q.pending("a"), 0);
  q.close();
});

test("a failing id does not hold up another; after close nothing more runs", async () => {
  const q = new BackoffQueue({ initialMs: 5_000, maxMs: 5_000, log: silentLogger });
  let stuckCalls = 0;
  void q.push("stuck", "fails", async () => {
    stuckCalls++;
    throw new Error("down");
  });
  const ran: string[] = [];
  await Promise.all(["x", "y"].map((id) => q.push(id, id, async () => void ran.push(id))));
  assert.deepEqual(ran.sort(), ["x", "y"]);
  assert.equal(q.pending("stuck"), 1);
  q.close();
  assert.equal(q.pending("stuck"), 0);
  void q.push("z", "after close", async () => void ran.push("z"));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ran, ["x", "y"], "jobs pushed after close are abandoned");
  assert.equal(stuckCalls, 1, "no retry after close (and its 5 s timer is gone: the process exits)");
});

test("close while a job runs: its failure schedules no retry", async () => {
  const q = new BackoffQueue({ initialMs: 1, maxMs: 1, log: silentLogger });
  let calls = 0;
  let fail!: () => void;
  void q.push("a", "slow", () => {
    calls++;
    return new Promise<void>((_, reject) => (fail = () => reject(new Error("late"))));
  });
  await new Promise((r) => setImmediate(r));
  q.close();
  fail();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(calls, 1);
});
