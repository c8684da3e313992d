import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, SkiffError, notFound } from "../errors.js";
import { TtrpcClient, TtrpcServer, TtrpcStatusError, MESSAGE_LENGTH_MAX } from "./index.js";
import { FrameDecoder, encodeHeader, type Frame } from "./frame.js";
import { decodeRequest, encodeResponse } from "./messages.js";

let dir: string;
let seq = 0;
const sock = () => join(dir, `t${++seq}.sock`);
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-ttrpc-client-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const isCode = (code: string) => (err: unknown) => err instanceof SkiffError && err.code === code;

/** A real TtrpcServer plus a connected client, both torn down in t.after. */
async function pair(t: { after(fn: () => Promise<void> | void): void }, setup: (s: TtrpcServer) => void, namespace?: string) {
  const server = new TtrpcServer({ drainTimeoutMs: 200 });
  setup(server);
  const path = sock();
  await server.listen(path);
  const client = await TtrpcClient.connect(`unix://${path}`, namespace === undefined ? {} : { namespace });
  t.after(async () => {
    client.destroy();
    await server.close();
  });
  return { server, client, path };
}

/** A raw net server: every frame a client sends is handed to `onFrame` with its socket. */
async function rawServer(t: { after(fn: () => Promise<void>): void }, onFrame: (f: Frame, s: Socket) => void) {
  const path = sock();
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    const d = new FrameDecoder({ onFrame: (f) => onFrame(f, s), onOversize: () => {} });
    s.on("data", (c: Buffer) => d.push(c));
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return path;
}

function respond(s: Socket, streamId: number, payload: Uint8Array) {
  const data = encodeResponse({ status: undefined, payload });
  s.write(Buffer.concat([encodeHeader({ length: data.length, streamId, type: 2, flags: 0 }), data]));
}

test("round trip carries payload, call metadata and the connect namespace", async (t) => {
  let seen: Map<string, string[]> | undefined;
  const { client } = await pair(
    t,
    (s) =>
      s.register("svc", "Echo", async (p, ctx) => {
        seen = ctx.metadata;
        assert.equal(ctx.service, "svc");
        assert.equal(ctx.method, "Echo");
        return enc(`echo:${dec(p)}`);
      }),
    "k8s.io",
  );
  const out = await client.call("svc", "Echo", enc("hi"), { metadata: { a: "1", multi: ["x", "y"] } });
  assert.equal(dec(out), "echo:hi");
  assert.deepEqual(seen?.get("containerd-namespace-ttrpc"), ["k8s.io"]);
  assert.deepEqual(seen?.get("a"), ["1"]);
  assert.deepEqual(seen?.get("multi"), ["x", "y"]);
  // A call's own namespace metadata overrides the connection's.
  await client.call("svc", "Echo", enc(""), { metadata: { "containerd-namespace-ttrpc": "other" } });
  assert.deepEqual(seen?.get("containerd-namespace-ttrpc"), ["other"]);
});

test("stream ids are odd and increasing; timeout is sent as timeout_nano", async (t) => {
  const ids: number[] = [];
  const timeouts: number[] = [];
  const path = await rawServer(t, (f, s) => {
    ids.push(f.streamId);
    timeouts.push(decodeRequest(f.data).timeoutNano);
    respond(s, f.streamId, new Uint8Array(0));
  });
  const client = await TtrpcClient.connect(path);
  t.after(() => client.destroy());
  await client.call("s", "m", new Uint8Array(0));
  await Promise.all([client.call("s", "m", new Uint8Array(0)), client.call("s", "m", new Uint8Array(0))]);
  await client.call("s", "m", new Uint8Array(0), { timeoutMs: 1500 });
  assert.deepEqual(ids, [1, 3, 5, 7]);
  assert.deepEqual(timeouts, [0, 0, 0, 1_500_000_000]);
});

test("200 concurrent calls on one connection, answered out of order", async (t) => {
  const { client } = await pair(t, (s) =>
    s.register("svc", "Delay", async (p) => {
      const n = Number(dec(p));
      await new Promise((r) => setTimeout(r, (n * 7919) % 40)); // scrambled completion order
      return enc(String(n * 2));
    }),
  );
  const order: number[] = [];
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      client.call("svc", "Delay", enc(String(i))).then((b) => {
        order.push(i);
        return Number(dec(b));
      }),
    ),
  );
  assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i * 2));
  assert.notDeepEqual(order, [...order].sort((a, b) => a - b), "responses should arrive out of order");
});

test("timeoutMs → DeadlineExceeded near the deadline even if the server never answers", async (t) => {
  const path = await rawServer(t, () => {}); // swallows every request
  const client = await TtrpcClient.connect(path);
  t.after(() => client.destroy());
  const start = performance.now();
  await assert.rejects(client.call("s", "m", new Uint8Array(0), { timeoutMs: 100 }), isCode(ErrorCode.DeadlineExceeded));
  const took = performance.now() - start;
  // Node timers run off the loop's cached clock and may fire a little early under load.
  assert.ok(took >= 80 && took < 600, `took ${took} ms`);
  assert.equal(client.isClosed, false, "a timed-out call leaves the connection usable");
});

test("abort via signal rejects Canceled; a TimeoutError reason becomes DeadlineExceeded", async (t) => {
  const requests: number[] = [];
  const path = await rawServer(t, (f) => requests.push(f.streamId));
  const client = await TtrpcClient.connect(path);
  t.after(() => client.destroy());
  const ac = new AbortController();
  const p = client.call("s", "m", new Uint8Array(0), { signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(p, isCode(ErrorCode.Canceled));
  await assert.rejects(
    client.call("s", "m", new Uint8Array(0), { signal: AbortSignal.timeout(20) }),
    isCode(ErrorCode.DeadlineExceeded),
  );
  await assert.rejects(client.call("s", "m", new Uint8Array(0), { signal: AbortSignal.abort() }), isCode(ErrorCode.Canceled));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(requests, [1, 3], "aborted calls are sent once, already-aborted ones never");
});

test("unknown service or method → Unimplemented (12)", async (t) => {
  const { client } = await pair(t, (s) => s.register("svc", "A", async () => new Uint8Array(0)));
  for (const [svc, m] of [["nope", "A"], ["svc", "B"]] as const) {
    await assert.rejects(
      client.call(svc, m, new Uint8Array(0)),
      (err: unknown) => err instanceof TtrpcStatusError && err.code === ErrorCode.Unimplemented && err.grpcCode === 12,
    );
  }
});

test("handler errors: SkiffError keeps its code, other errors become Internal", async (t) => {
  const { client } = await pair(t, (s) => {
    s.register("svc", "Missing", async () => {
      throw notFound("task abc not found");
    });
    s.register("svc", "Boom", async () => {
      throw new TypeError("kaboom");
    });
  });
  await assert.rejects(
    client.call("svc", "Missing", new Uint8Array(0)),
    (err: unknown) =>
      err instanceof TtrpcStatusError && err.code === ErrorCode.NotFound && err.grpcCode === 5 && err.message === "task abc not found",
  );
  await assert.rejects(
    client.call("svc", "Boom", new Uint8Array(0)),
    (err: unknown) => err instanceof TtrpcStatusError && err.grpcCode === 13 && err.message === "kaboom",
  );
});

test("connection closed mid-call → every pending call rejects Unavailable promptly", async (t) => {
  const path = await rawServer(t, (_f, s) => setTimeout(() => s.destroy(), 30));
  const client = await TtrpcClient.connect(path);
  t.after(() => client.destroy());
  const start = performance.now();
  const calls = [1, 2, 3].map(() => client.call("s", "m", new Uint8Array(0), { timeoutMs: 10_000 }));
  for (const c of calls) await assert.rejects(c, isCode(ErrorCode.Unavailable));
  assert.ok(performance.now() - start < 1000);
  const closedWith = await client.closed;
  assert.ok(closedWith instanceof SkiffError && closedWith.code === ErrorCode.Unavailable);
  assert.equal(client.isClosed, true);
  await assert.rejects(client.call("s", "m", new Uint8Array(0)), isCode(ErrorCode.Unavailable));
});

test("payload over 4 MiB → ResourceExhausted without sending anything", async (t) => {
  let received = 0;
  const path = await rawServer(t, (f, s) => {
    received++;
    respond(s, f.streamId, new Uint8Array(0));
  });
  const client = await TtrpcClient.connect(path);
  t.after(() => client.destroy());
  await assert.rejects(client.call("s", "m", new Uint8Array(MESSAGE_LENGTH_MAX)), isCode(ErrorCode.ResourceExhausted));
  await client.call("s", "m", new Uint8Array(0));
  assert.equal(received, 1, "only the small call reached the server");
});

test("oversized response → that call fails ResourceExhausted, the connection stays usable", async (t) => {
  const path = await rawServer(t, (f, s) => {
    if (f.streamId === 1) {
      s.write(encodeHeader({ length: MESSAGE_LENGTH_MAX + 16, streamId: 1, type: 2, flags: 0 }));
      s.write(Buffer.alloc(MESSAGE_LENGTH_MAX + 16));
    } else respond(s, f.streamId, enc("ok"));
  });
  const client = await TtrpcClient.connect(path);
  t.after(() => client.destroy());
  await assert.rejects(client.call("s", "m", new Uint8Array(0)), isCode(ErrorCode.ResourceExhausted));
  assert.equal(dec(await client.call("s", "m", new Uint8Array(0), { timeoutMs: 2000 })), "ok");
});

test("a raw server sending garbage: the call fails, nothing crashes", async (t) => {
  const path = await rawServer(t, (f, s) => {
    if (f.streamId === 1) {
      // A readable header for this stream with a body that is not a Response.
      s.write(Buffer.concat([encodeHeader({ length: 3, streamId: 1, type: 2, flags: 0 }), Buffer.from([0x0a, 0x09, 0x01])]));
    } else if (f.streamId === 3) {
      // A frame of the wrong type for this stream.
      s.write(encodeHeader({ length: 0, streamId: 3, type: 1, flags: 0 }));
    } else {
      s.end(Buffer.from("\x00\x00\x00\x05this is not ttrpc at all"));
    }
  });
  const client = await TtrpcClient.connect(path);
  await assert.rejects(client.call("s", "m", new Uint8Array(0)), isCode(ErrorCode.Internal));
  await assert.rejects(client.call("s", "m", new Uint8Array(0)), isCode(ErrorCode.Internal));
  await assert.rejects(client.call("s", "m", new Uint8Array(0), { timeoutMs: 2000 }), isCode(ErrorCode.Unavailable));
  assert.ok((await client.closed) instanceof SkiffError);
});

test("connect failures: Unavailable for a missing socket, DeadlineExceeded/Canceled via options", async () => {
  await assert.rejects(TtrpcClient.connect(join(dir, "missing.sock")), isCode(ErrorCode.Unavailable));
  await assert.rejects(TtrpcClient.connect(join(dir, "missing.sock"), { timeoutMs: 0 }), isCode(ErrorCode.DeadlineExceeded));
  await assert.rejects(TtrpcClient.connect(join(dir, "missing.sock"), { signal: AbortSignal.abort() }), isCode(ErrorCode.Canceled));
});

test("close() waits for pending calls, refuses new ones, resolves closed with undefined", async (t) => {
  const { client } = await pair(t, (s) =>
    s.register("svc", "Slow", async () => {
      await new Promise((r) => setTimeout(r, 100));
      return enc("done");
    }),
  );
  const pending = client.call("svc", "Slow", new Uint8Array(0));
  const closing = client.close();
  assert.equal(client.isClosed, true);
  await assert.rejects(client.call("svc", "Slow", new Uint8Array(0)), isCode(ErrorCode.Unavailable));
  assert.equal(dec(await pending), "done");
  await closing;
  await client.close(); // idempotent
  assert.equal(await client.closed, undefined);
});

test("destroy(err) fails pending calls with err and resolves closed with it", async (t) => {
  const path = await rawServer(t, () => {});
  const client = await TtrpcClient.connect(path);
  const p = client.call("s", "m", new Uint8Array(0));
  const boom = new SkiffError(ErrorCode.Canceled, "shutting down");
  client.destroy(boom);
  client.destroy(); // idempotent
  await assert.rejects(p, (err: unknown) => err === boom);
  assert.equal(await client.closed, boom);
});
