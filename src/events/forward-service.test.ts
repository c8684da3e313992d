import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EmptySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isInvalidArgument } from "../errors.js";
import { TaskExitSchema } from "../gen/containerd/events/task_pb.js";
import { ForwardRequestSchema } from "../gen/containerd/services/ttrpc/events/v1/events_pb.js";
import { packAny } from "../proto/any.js";
import { TtrpcClient, TtrpcServer, TtrpcStatusError, unaryCall } from "../ttrpc/index.js";
import { EventExchange } from "./exchange.js";
import type { Envelope } from "./exchange.js";
import { EVENTS_SERVICE, FORWARD_METHOD, registerEventsService } from "./forward-service.js";
import type { ForwardContext, TtrpcRegistrar } from "./forward-service.js";
import { decodeTaskEvent } from "./task-events.js";

type Handler = (payload: Uint8Array, ctx: ForwardContext) => Promise<Uint8Array>;

/** Captures registrations the way TtrpcServer would hold them. */
function fakeServer(): TtrpcRegistrar & { handlers: Map<string, Handler> } {
  const handlers = new Map<string, Handler>();
  return {
    handlers,
    register(service, method, handler) {
      handlers.set(`${service}/${method}`, handler);
    },
  };
}

function ctx(): ForwardContext {
  return {
    service: EVENTS_SERVICE,
    method: FORWARD_METHOD,
    metadata: new Map([["containerd-namespace-ttrpc", ["skiff"]]]),
    signal: new AbortController().signal,
  };
}

function setup() {
  const server = fakeServer();
  const exchange = new EventExchange();
  registerEventsService(server, exchange);
  const handler = server.handlers.get("containerd.services.events.ttrpc.v1.Events/Forward");
  assert.ok(handler, "Forward registered under its full service name");
  return { exchange, handler };
}

/** Protobuf varint-length-delimited field (wire type 2). */
function ld(field: number, bytes: Uint8Array | number[]): number[] {
  const b = [...bytes];
  assert.ok(b.length < 128);
  return [(field << 3) | 2, b.length, ...b];
}
const utf8 = (s: string) => [...new TextEncoder().encode(s)];

describe("Events/Forward", () => {
  test("publishes the forwarded envelope and returns an encoded Empty", async () => {
    const { exchange, handler } = setup();
    const sub = exchange.subscribe({ topics: ["/tasks/"] });
    const exitedAt = new Date("2024-05-01T10:00:00Z");
    const event = packAny(
      TaskExitSchema,
      create(TaskExitSchema, { containerId: "c1", id: "c1", pid: 4242, exitStatus: 2, exitedAt: timestampFromDate(exitedAt) }),
    );
    const stamp = new Date("2024-05-01T10:00:01.250Z");
    const payload = toBinary(
      ForwardRequestSchema,
      create(ForwardRequestSchema, {
        envelope: { timestamp: timestampFromDate(stamp), namespace: "skiff", topic: "/tasks/exit", event },
      }),
    );

    const reply = await handler(payload, ctx());
    fromBinary(EmptySchema, reply);
    assert.equal(reply.length, 0);

    const got = (await sub.next()).value as Envelope;
    assert.equal(got.topic, "/tasks/exit");
    assert.equal(got.namespace, "skiff");
    assert.equal(got.timestamp.getTime(), stamp.getTime());
    assert.equal(got.event.typeUrl, "containerd.events.TaskExit");
    const ev = decodeTaskEvent(got);
    assert.equal(ev?.kind, "exit");
    assert.equal(ev?.kind === "exit" && ev.exitStatus, 2);
    assert.equal(ev?.kind === "exit" && ev.exitedAt?.getTime(), exitedAt.getTime());
    sub.close();
  });

  test("decodes hand-built wire bytes laid out as containerd 1.6 sends them", async () => {
    const { exchange, handler } = setup();
    const sub = exchange.subscribe();
    // TaskOOM{container_id=1:"cX"} in Any{type_url=1, value=2}
    const any = [...ld(1, utf8("containerd.events.TaskOOM")), ...ld(2, ld(1, utf8("cX")))];
    // Timestamp{seconds=1 (varint): 1700000000}
    const ts = [0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06];
    // Envelope{timestamp=1, namespace=2, topic=3, event=4}
    const envelope = [...ld(1, ts), ...ld(2, utf8("k8s")), ...ld(3, utf8("/tasks/oom")), ...ld(4, any)];
    await handler(new Uint8Array(ld(1, envelope)), ctx());
    const got = (await sub.next()).value as Envelope;
    assert.equal(got.namespace, "k8s");
    assert.equal(got.timestamp.getTime(), 1_700_000_000_000);
    assert.deepEqual(decodeTaskEvent(got), {
      namespace: "k8s",
      timestamp: got.timestamp,
      containerId: "cX",
      topic: "/tasks/oom",
      kind: "oom",
    });
    sub.close();
  });

  test("a missing timestamp becomes the receive time", async () => {
    const { exchange, handler } = setup();
    const sub = exchange.subscribe();
    const before = Date.now();
    const event = packAny(TaskExitSchema, create(TaskExitSchema, { containerId: "c" }));
    await handler(
      toBinary(ForwardRequestSchema, create(ForwardRequestSchema, { envelope: { namespace: "n", topic: "/tasks/exit", event } })),
      ctx(),
    );
    const got = (await sub.next()).value as Envelope;
    assert.ok(got.timestamp.getTime() >= before);
    sub.close();
  });

  test("malformed or incomplete requests throw InvalidArgument and publish nothing", async () => {
    const { exchange, handler } = setup();
    const sub = exchange.subscribe();
    const event = packAny(TaskExitSchema, create(TaskExitSchema, { containerId: "c" }));
    const enc = (envelope: object | undefined) =>
      toBinary(ForwardRequestSchema, create(ForwardRequestSchema, envelope ? { envelope } : {}));
    const bad: Uint8Array[] = [
      new Uint8Array([0x0a, 0x05, 0x01]), // truncated length-delimited field
      new Uint8Array([0xff, 0xff, 0xff]),
      enc(undefined),
      enc({ namespace: "n", topic: "/tasks/exit" }),
      enc({ namespace: "", topic: "/tasks/exit", event }),
      enc({ namespace: "n", topic: "tasks/exit", event }),
    ];
    for (const payload of bad) {
      await assert.rejects(handler(payload, ctx()), isInvalidArgument);
    }
    exchange.close();
    assert.equal((await sub.next()).done, true, "nothing was published");
  });
});

describe("Events/Forward over a real ttrpc unix socket", () => {
  test("a client Forward call is published; a bad one gets InvalidArgument (3)", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "skiff-events-"));
    const server = new TtrpcServer({ drainTimeoutMs: 200 });
    const exchange = new EventExchange();
    registerEventsService(server, exchange);
    const path = join(dir, "events.sock.ttrpc");
    await server.listen(path);
    const client = await TtrpcClient.connect(`unix://${path}`, { namespace: "skiff" });
    t.after(async () => {
      client.destroy();
      await server.close();
      exchange.close();
      await rm(dir, { recursive: true, force: true });
    });

    const sub = exchange.subscribe({ topics: ["/tasks/exit"], namespace: "skiff" });
    const event = packAny(TaskExitSchema, create(TaskExitSchema, { containerId: "c1", id: "c1", pid: 7, exitStatus: 0 }));
    const reply = await unaryCall(
      client,
      EVENTS_SERVICE,
      FORWARD_METHOD,
      ForwardRequestSchema,
      { envelope: { timestamp: timestampFromDate(new Date()), namespace: "skiff", topic: "/tasks/exit", event } },
      EmptySchema,
    );
    assert.equal(reply.$typeName, "google.protobuf.Empty");
    const ev = decodeTaskEvent((await sub.next()).value as Envelope);
    assert.equal(ev?.kind === "exit" && ev.pid, 7);

    await assert.rejects(
      client.call(EVENTS_SERVICE, FORWARD_METHOD, new Uint8Array([0xff, 0xff])),
      (err: unknown) => err instanceof TtrpcStatusError && err.grpcCode === 3 && isInvalidArgument(err),
    );
    sub.close();
  });
});
