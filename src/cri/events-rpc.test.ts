import { test } from "node:test";
import assert from "node:assert/strict";
import { createContextValues, type HandlerContext } from "@connectrpc/connect";
import { constants as h2 } from "node:http2";
import { RESET_CALL } from "./server.js";
import { ContainerEventType, type ContainerEventResponse } from "../gen/runtime/v1/api_pb.js";
import { ErrorCode, codeOf } from "../errors.js";
import { ContainerEvents } from "./container-events.js";
import { eventsRpcs } from "./events-rpc.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

const ctxOf = (signal: AbortSignal, values = createContextValues()) => ({ signal, values }) as HandlerContext;
const rpcs = (_cfg: unknown, events: ContainerEvents) => ({ impl: eventsRpcs(events), events });

test("GetContainerEvents streams events as CRI messages with statuses, and ends Canceled when the client goes away", async () => {
  const pod = {
    id: "p1",
    name: "web",
    namespace: "default",
    uid: "u",
    attempt: 0,
    state: "ready",
    createdAtNs: "5",
    runtimeHandler: "",
    labels: {},
    annotations: {},
    namespaces: { network: 0, pid: 1, ipc: 0 },
    ips: ["10.0.0.2"],
  } as unknown as SandboxRecord;
  const ctr = {
    id: "c1",
    sandboxId: "p1",
    name: "app",
    attempt: 0,
    image: "busybox",
    imageId: "sha256:x",
    imageRef: "sha256:x",
    state: "running",
    createdAtNs: "6",
    startedAtNs: "7",
    finishedAtNs: "0",
    exitCode: 0,
    reason: "",
    message: "",
    labels: {},
    annotations: {},
    mounts: [],
    logPath: "",
    resources: null,
  } as unknown as ContainerRecord;
  const events = new ContainerEvents((sid) => (sid === "p1" ? { pod, containers: [ctr] } : { pod: undefined, containers: [] }));
  const { impl } = rpcs(undefined, events);
  const ac = new AbortController();
  const stream = impl.getContainerEvents!({ $typeName: "runtime.v1.GetEventsRequest" }, ctxOf(ac.signal)) as AsyncGenerator<ContainerEventResponse>;
  const first = stream.next();
  await new Promise((r) => setImmediate(r));
  assert.equal(events.subscribers, 1);
  events.emit("started", "c1", "p1");
  const ev = (await first).value as ContainerEventResponse;
  assert.equal(ev.containerId, "c1");
  assert.equal(ev.containerEventType, ContainerEventType.CONTAINER_STARTED_EVENT);
  assert.ok(ev.createdAt > 0n);
  assert.equal(ev.podSandboxStatus?.id, "p1");
  assert.equal(ev.podSandboxStatus?.network?.ip, "10.0.0.2");
  assert.deepEqual(
    ev.containersStatuses.map((c) => [c.id, c.startedAt]),
    [["c1", 7n]],
  );
  events.emit("deleted", "gone", "gone");
  const del = (await stream.next()).value as ContainerEventResponse;
  assert.equal(del.containerEventType, ContainerEventType.CONTAINER_DELETED_EVENT);
  assert.equal(del.podSandboxStatus, undefined, "no status once the pod is gone");

  const pending = stream.next();
  ac.abort(new Error("client went away"));
  await assert.rejects(pending, (e: unknown) => codeOf(e) === ErrorCode.Canceled);
  assert.equal(events.subscribers, 0, "the subscription is closed with the stream");
});

test("GetContainerEvents ends OK when the broadcaster closes (daemon shutdown)", async () => {
  const { impl, events } = rpcs(undefined, new ContainerEvents(() => ({ pod: undefined, containers: [] })));
  const stream = impl.getContainerEvents!({ $typeName: "runtime.v1.GetEventsRequest" }, ctxOf(new AbortController().signal)) as AsyncGenerator<unknown>;
  const first = stream.next();
  await new Promise((r) => setImmediate(r));
  events.close();
  assert.deepEqual(await first, { value: undefined, done: true });
});

test("GetContainerEvents: a dropped subscriber's call is reset and ends with ResourceExhausted", async () => {
  const events = new ContainerEvents(() => ({ pod: undefined, containers: [] }), { capacity: 1 });
  const resets: number[] = [];
  const values = createContextValues().set(RESET_CALL, (code: number) => resets.push(code));
  const stream = eventsRpcs(events).getContainerEvents({ $typeName: "runtime.v1.GetEventsRequest" }, ctxOf(new AbortController().signal, values)) as AsyncGenerator<ContainerEventResponse>;
  const first = stream.next();
  await new Promise((r) => setImmediate(r));
  events.emit("created", "a", "p");
  assert.equal(((await first).value as ContainerEventResponse).containerId, "a");
  // The reader is now "writing" event a and reads no more: one event fits its queue, the next drops it.
  events.emit("created", "b", "p");
  assert.deepEqual(resets, []);
  events.emit("created", "c", "p");
  assert.deepEqual(resets, [h2.NGHTTP2_ENHANCE_YOUR_CALM]);
  assert.equal(events.subscribers, 0);
  await assert.rejects(stream.next(), (e: unknown) => codeOf(e) === ErrorCode.ResourceExhausted);
});
