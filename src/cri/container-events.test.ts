import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, codeOf } from "../errors.js";
import { ContainerEvents, type PodSnapshot } from "./container-events.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

/** A snapshot source over a mutable fake store. */
function fakeStore() {
  const pods = new Map<string, Partial<SandboxRecord>>();
  const ctrs = new Map<string, Partial<ContainerRecord>>();
  const snapshot: PodSnapshot = (sid) => ({
    pod: pods.get(sid) as SandboxRecord | undefined,
    containers: [...ctrs.values()].filter((c) => c.sandboxId === sid) as ContainerRecord[],
  });
  return { pods, ctrs, snapshot };
}

test("every subscriber gets every event, in order, with the statuses of the moment", async () => {
  const s = fakeStore();
  const events = new ContainerEvents(s.snapshot, { capacity: 10 });
  const a = events.subscribe();
  const b = events.subscribe();
  s.pods.set("p", { id: "p", state: "ready" });
  events.emit("created", "p", "p");
  s.ctrs.set("c", { id: "c", sandboxId: "p", state: "created" });
  events.emit("created", "c", "p");
  s.ctrs.set("c", { id: "c", sandboxId: "p", state: "running" });
  events.emit("started", "c", "p");
  for (const sub of [a, b]) {
    const got = [await sub.next(), await sub.next(), await sub.next()];
    assert.deepEqual(
      got.map((e) => [e?.containerId, e?.type]),
      [
        ["p", "created"],
        ["c", "created"],
        ["c", "started"],
      ],
    );
    assert.equal(got[0]?.containers.length, 0);
    assert.equal(got[1]?.containers[0]?.state, "created");
    assert.equal(got[2]?.containers[0]?.state, "running");
    assert.equal(got[2]?.pod?.id, "p");
    assert.ok(got[2]!.createdAtNs >= got[0]!.createdAtNs);
  }
});

test("a waiting reader is woken by the next event", async () => {
  const s = fakeStore();
  const events = new ContainerEvents(s.snapshot);
  const sub = events.subscribe();
  const p = sub.next();
  events.emit("created", "c", "p");
  assert.equal((await p)?.containerId, "c");
});

test("a subscriber that never reads is dropped when its queue is full; the others keep receiving", async () => {
  const s = fakeStore();
  const events = new ContainerEvents(s.snapshot, { capacity: 3 });
  const stuck = events.subscribe();
  const dropped: Error[] = [];
  stuck.onDrop((err) => dropped.push(err));
  const live = events.subscribe();
  live.onDrop((err) => dropped.push(err));
  const seen: string[] = [];
  for (let i = 0; i < 10; i++) {
    events.emit("created", `c${i}`, "p");
    seen.push((await live.next())!.containerId);
  }
  assert.equal(seen.length, 10);
  assert.equal(events.subscribers, 1, "the stuck subscriber is gone");
  assert.ok(stuck.closed);
  assert.equal(stuck.queued, 0, "its queue is freed");
  await assert.rejects(stuck.next(), (err: unknown) => codeOf(err) === ErrorCode.ResourceExhausted && /3 events queued/.test(String(err)));
  assert.equal(live.closed, false);
  assert.equal(dropped.length, 1, "only the dropped subscriber's hook ran, once");
  assert.equal(codeOf(dropped[0]), ErrorCode.ResourceExhausted);
  live.close();
  assert.equal(dropped.length, 1, "a normal end is no drop");
});

test("a slow reader within the bound loses nothing", async () => {
  const s = fakeStore();
  const events = new ContainerEvents(s.snapshot, { capacity: 5 });
  const sub = events.subscribe();
  for (let i = 0; i < 5; i++) events.emit("created", `c${i}`, "p");
  const got = [];
  for (let i = 0; i < 5; i++) got.push((await sub.next())!.containerId);
  assert.deepEqual(got, ["c0", "c1", "c2", "c3", "c4"]);
  assert.equal(events.subscribers, 1);
});

test("per id, a type not later than the last one sent is dropped; DELETED forgets the id", async () => {
  const s = fakeStore();
  const events = new ContainerEvents(s.snapshot);
  const sub = events.subscribe();
  events.emit("created", "p", "p");
  events.emit("started", "p", "p");
  events.emit("stopped", "p", "p");
  events.emit("stopped", "p", "p"); // the exit handler and StopPodSandbox both record it
  events.emit("started", "p", "p"); // late: already stopped
  events.emit("deleted", "p", "p");
  events.emit("created", "p", "p"); // a new object with the same id is reported again
  const types = [];
  while (sub.queued) types.push((await sub.next())!.type);
  assert.deepEqual(types, ["created", "started", "stopped", "deleted", "created"]);
});

test("without subscribers no snapshot is taken; a failing snapshot still sends the event", async () => {
  let calls = 0;
  const events = new ContainerEvents(() => {
    calls++;
    throw new Error("db closed");
  });
  events.emit("created", "a", "p");
  assert.equal(calls, 0);
  const sub = events.subscribe();
  events.emit("created", "b", "p");
  const ev = await sub.next();
  assert.equal(calls, 1);
  assert.equal(ev?.containerId, "b");
  assert.equal(ev?.pod, undefined);
  assert.deepEqual(ev?.containers, []);
});

test("next() honours its signal and the subscription stays usable; close() and broadcaster close end readers", async () => {
  const s = fakeStore();
  const events = new ContainerEvents(s.snapshot);
  const sub = events.subscribe();
  const ac = new AbortController();
  const p = sub.next(ac.signal);
  ac.abort(new Error("client gone"));
  await assert.rejects(p, /client gone/);
  events.emit("created", "c", "p");
  assert.equal((await sub.next())?.containerId, "c");

  const waiting = sub.next();
  sub.close();
  assert.equal(await waiting, undefined);
  assert.equal(events.subscribers, 0);
  sub.close(); // idempotent

  const other = events.subscribe();
  const pending = other.next();
  events.close();
  assert.equal(await pending, undefined);
  assert.equal(await other.next(), undefined);
  assert.equal(events.subscribers, 0);
  assert.equal(await events.subscribe().next(), undefined, "after close, a new subscription has ended");
  assert.equal(events.subscribers, 0);
});
