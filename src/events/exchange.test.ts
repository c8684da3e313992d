import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { isCanceled, isDeadlineExceeded, isInvalidArgument } from "../errors.js";
import { TaskOOMSchema } from "../gen/containerd/events/task_pb.js";
import { packAny } from "../proto/any.js";
import { EventExchange, topicMatches } from "./exchange.js";
import type { Envelope } from "./exchange.js";

function env(topic: string, namespace = "skiff", containerId = "c"): Envelope {
  return { timestamp: new Date(), namespace, topic, event: packAny(TaskOOMSchema, create(TaskOOMSchema, { containerId })) };
}

/** Counts abort listeners currently attached to `signal`. */
function countListeners(signal: AbortSignal): { count: number } {
  const counter = { count: 0 };
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    counter.count++;
    add(...args);
  }) as typeof add;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    counter.count--;
    remove(...args);
  }) as typeof remove;
  return counter;
}

/** Reads `n` events from an iterator. */
async function take(it: AsyncIterator<Envelope>, n: number): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    assert.equal(r.done, false);
    out.push(r.value);
  }
  return out;
}

describe("topicMatches", () => {
  test("exact, prefix ending in '/', namespace, and match-all", () => {
    const e = { topic: "/tasks/exit", namespace: "ns" };
    assert.ok(topicMatches({}, e));
    assert.ok(topicMatches({ topics: [] }, e));
    assert.ok(topicMatches({ topics: ["/tasks/exit"] }, e));
    assert.ok(topicMatches({ topics: ["/tasks/"] }, e));
    assert.ok(topicMatches({ topics: ["/images/", "/tasks/exit"], namespace: "ns" }, e));
    assert.ok(!topicMatches({ topics: ["/tasks"] }, e), "prefix without trailing '/' is exact");
    assert.ok(!topicMatches({ topics: ["/tasks/exi"] }, e));
    assert.ok(!topicMatches({ namespace: "other" }, e));
  });
});

describe("EventExchange.subscribe", () => {
  test("delivers matching events in order and skips others", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe({ topics: ["/tasks/"], namespace: "skiff" });
    ex.publish(env("/tasks/start"));
    ex.publish(env("/images/create"));
    ex.publish(env("/tasks/exit", "other"));
    ex.publish(env("/tasks/exit"));
    const got = await take(sub, 2);
    assert.deepEqual(
      got.map((e) => e.topic),
      ["/tasks/start", "/tasks/exit"],
    );
    sub.close();
  });

  test("a waiting consumer is woken by publish", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe();
    const p = sub.next();
    ex.publish(env("/tasks/oom"));
    assert.equal((await p).value?.topic, "/tasks/oom");
    sub.close();
  });

  test("duplicates are delivered as published (no dedupe)", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe();
    const e = env("/tasks/exit");
    ex.publish(e);
    ex.publish(e);
    assert.equal((await take(sub, 2)).length, 2);
    sub.close();
  });

  test("a full buffer drops the oldest and counts; others and the publisher are unaffected", async () => {
    const ex = new EventExchange({ bufferSize: 100 });
    const slow = ex.subscribe({}, { bufferSize: 3 });
    const fast = ex.subscribe();
    for (let i = 0; i < 10; i++) ex.publish(env("/tasks/oom", "skiff", `c${i}`));
    assert.equal(slow.dropped, 7);
    assert.equal(fast.dropped, 0);
    const slowGot = await take(slow, 3);
    assert.deepEqual(
      slowGot.map((e) => e.event.value.at(-1)),
      [7, 8, 9].map((i) => `c${i}`.charCodeAt(1)),
    );
    assert.equal((await take(fast, 10)).length, 10);
    slow.close();
    fast.close();
  });

  test("heavy overflow keeps only the newest events", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe({}, { bufferSize: 2 });
    for (let i = 0; i < 1000; i++) ex.publish({ ...env("/t/x"), namespace: `ns${i}` });
    assert.equal(sub.dropped, 998);
    assert.deepEqual(
      (await take(sub, 2)).map((e) => e.namespace),
      ["ns998", "ns999"],
    );
    sub.close();
  });

  test("breaking out of for-await detaches", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe();
    assert.equal(ex.subscriberCount, 1);
    ex.publish(env("/a"));
    for await (const e of sub) {
      assert.equal(e.topic, "/a");
      break;
    }
    assert.equal(ex.subscriberCount, 0);
    assert.equal((await sub.next()).done, true);
  });

  test("close() detaches, ends pending next() and is idempotent", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe();
    const pending = sub.next();
    sub.close();
    sub.close();
    assert.equal((await pending).done, true);
    assert.equal(ex.subscriberCount, 0);
    ex.publish(env("/a"));
    assert.equal((await sub.next()).done, true);
  });

  test("abort rejects a pending next() with Canceled, detaches and removes its listener", async () => {
    const ex = new EventExchange();
    const ac = new AbortController();
    const counter = countListeners(ac.signal);
    const sub = ex.subscribe({}, { signal: ac.signal });
    assert.equal(counter.count, 1);
    const pending = sub.next();
    ac.abort();
    await assert.rejects(pending, isCanceled);
    assert.equal(ex.subscriberCount, 0);
    assert.equal(counter.count, 0);
    assert.equal((await sub.next()).done, true);
  });

  test("close() removes the abort listener", () => {
    const ex = new EventExchange();
    const ac = new AbortController();
    const counter = countListeners(ac.signal);
    const sub = ex.subscribe({}, { signal: ac.signal });
    assert.equal(counter.count, 1);
    sub.close();
    assert.equal(counter.count, 0);
  });

  test("abort with no pending next(): the next call rejects once, then done", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe({}, { signal: AbortSignal.timeout(1) });
    ex.publish(env("/a"));
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(sub.next(), isDeadlineExceeded);
    assert.equal((await sub.next()).done, true);
    assert.equal(ex.subscriberCount, 0);
  });

  test("an already aborted signal never attaches", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe({}, { signal: AbortSignal.abort() });
    assert.equal(ex.subscriberCount, 0);
    await assert.rejects(sub.next(), isCanceled);
  });

  test("exchange close() drains buffered events, then ends; later subscribers end at once", async () => {
    const ex = new EventExchange();
    const sub = ex.subscribe();
    ex.publish(env("/a"));
    ex.close();
    ex.publish(env("/b"));
    assert.equal((await sub.next()).value?.topic, "/a");
    assert.equal((await sub.next()).done, true);
    assert.equal((await ex.subscribe().next()).done, true);
    assert.equal(ex.subscriberCount, 0);
  });

  test("publish validates the envelope", () => {
    const ex = new EventExchange();
    assert.throws(() => ex.publish(env("tasks/exit")), isInvalidArgument);
    assert.throws(() => ex.publish(env("/tasks/exit", "")), isInvalidArgument);
    assert.throws(() => ex.publish({ ...env("/a"), event: undefined as never }), isInvalidArgument);
    assert.throws(() => ex.subscribe({}, { bufferSize: 0 }), isInvalidArgument);
  });
});

describe("EventExchange.on", () => {
  test("calls back asynchronously, in order, one at a time", async () => {
    const ex = new EventExchange();
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const off = ex.on({ topics: ["/tasks/"] }, async (e) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await tick();
      seen.push(e.topic);
      running--;
    });
    ex.publish(env("/tasks/a"));
    ex.publish(env("/other"));
    ex.publish(env("/tasks/b"));
    assert.deepEqual(seen, [], "never called inside publish");
    for (let i = 0; i < 10; i++) await tick();
    assert.deepEqual(seen, ["/tasks/a", "/tasks/b"]);
    assert.equal(maxRunning, 1);
    off();
    off();
    assert.equal(ex.subscriberCount, 0);
  });

  test("a throwing callback is reported and the subscription continues", async () => {
    const errors: unknown[] = [];
    const ex = new EventExchange({ onListenerError: (err) => errors.push(err) });
    const seen: string[] = [];
    const off = ex.on({}, (e) => {
      seen.push(e.topic);
      if (e.topic === "/bad") throw new Error("boom");
    });
    ex.publish(env("/bad"));
    ex.publish(env("/good"));
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(seen, ["/bad", "/good"]);
    assert.equal(errors.length, 1);
    off();
  });

  test("a blocked callback does not block the publisher or other listeners; it drops the oldest", async () => {
    const ex = new EventExchange();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slowSeen: string[] = [];
    const fastSeen: string[] = [];
    const offSlow = ex.on(
      {},
      async (e) => {
        slowSeen.push(e.namespace);
        await gate;
      },
      { bufferSize: 2 },
    );
    const offFast = ex.on({}, (e) => void fastSeen.push(e.namespace));
    ex.publish(env("/a", "n0"));
    await tick(); // slow listener now holds n0 and blocks
    for (let i = 1; i <= 5; i++) ex.publish(env("/a", `n${i}`));
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(fastSeen, ["n0", "n1", "n2", "n3", "n4", "n5"]);
    assert.deepEqual(slowSeen, ["n0"]);
    release();
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(slowSeen, ["n0", "n4", "n5"]);
    offSlow();
    offFast();
    assert.equal(ex.subscriberCount, 0);
  });

  test("abort through opts.signal detaches", async () => {
    const ex = new EventExchange();
    const ac = new AbortController();
    ex.on({}, () => {}, { signal: ac.signal });
    assert.equal(ex.subscriberCount, 1);
    ac.abort();
    await tick();
    assert.equal(ex.subscriberCount, 0);
  });
});
