import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Int64ValueSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { ErrorCode, SkiffError } from "../errors.js";
import { TtrpcClient, TtrpcServer, TtrpcStatusError, MESSAGE_LENGTH_MAX, unaryCall } from "./index.js";
import { FrameDecoder, encodeHeader, type Frame } from "./frame.js";
import { decodeResponse, encodeRequest, type TtrpcResponse } from "./messages.js";

let dir: string;
let seq = 0;
const sock = () => join(dir, `s${++seq}.sock`);
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-ttrpc-server-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function echoServer(t: { after(fn: () => Promise<void>): void }, setup?: (s: TtrpcServer) => void) {
  const server = new TtrpcServer({ drainTimeoutMs: 300 });
  server.register("svc", "Echo", async (p) => p);
  setup?.(server);
  const path = sock();
  await server.listen(path);
  t.after(() => server.close());
  return { server, path };
}

/** A raw client socket that collects decoded responses. */
async function rawClient(path: string) {
  const s: Socket = createConnection({ path });
  await new Promise<void>((r, j) => s.once("connect", r).once("error", j));
  const responses: (Frame & { res: TtrpcResponse })[] = [];
  const waiters: (() => void)[] = [];
  const d = new FrameDecoder({
    onFrame: (f) => {
      responses.push({ ...f, res: decodeResponse(f.data) });
      waiters.splice(0).forEach((w) => w());
    },
    onOversize: () => {},
  });
  s.on("data", (c: Buffer) => d.push(c));
  s.on("error", () => {});
  const closed = new Promise<void>((r) => s.once("close", () => r()));
  const next = async (n: number) => {
    while (responses.length < n) await new Promise<void>((r) => waiters.push(r));
    return responses[n - 1]!;
  };
  return { s, responses, next, closed };
}

const requestFrame = (streamId: number, service: string, method: string, payload: Uint8Array = new Uint8Array(0), timeoutNano = 0) => {
  const data = encodeRequest({ service, method, payload, timeoutNano, metadata: [] });
  return Buffer.concat([encodeHeader({ length: data.length, streamId, type: 1, flags: 0 }), data]);
};

/** Proves the server still serves new connections. */
async function assertServing(path: string) {
  const c = await TtrpcClient.connect(path);
  try {
    assert.equal(dec(await c.call("svc", "Echo", enc("alive"), { timeoutMs: 2000 })), "alive");
  } finally {
    c.destroy();
  }
}

test("timeout_nano is visible as ctx.signal aborting with DeadlineExceeded", async (t) => {
  let aborted: { at: number; reason: unknown } | undefined;
  const { path } = await echoServer(t, (s) =>
    s.register("svc", "Wait", (_p, ctx) => {
      return new Promise((_res, rej) => {
        ctx.signal.addEventListener("abort", () => {
          aborted = { at: performance.now(), reason: ctx.signal.reason };
          rej(ctx.signal.reason);
        });
      });
    }),
  );
  const raw = await rawClient(path);
  t.after(async () => raw.s.destroy());
  // Timers run off the loop's cached clock, so measure from before the request is written.
  const sent = performance.now();
  raw.s.write(requestFrame(1, "svc", "Wait", new Uint8Array(0), 80_000_000));
  const r = await raw.next(1);
  const after = (aborted?.at ?? Infinity) - sent;
  assert.ok(after >= 79 && after < 1000, `aborted after ${after}: ${String(aborted?.reason)}`);
  assert.ok(aborted?.reason instanceof SkiffError && aborted.reason.code === ErrorCode.DeadlineExceeded);
  assert.equal(r.res.status?.code, 4, "the handler's DeadlineExceeded is relayed");
});

test("a slow handler does not block other calls on the same connection", async (t) => {
  let release!: () => void;
  const { path } = await echoServer(t, (s) =>
    s.register("svc", "Block", () => new Promise((r) => (release = () => r(enc("late"))))),
  );
  const c = await TtrpcClient.connect(path);
  t.after(() => c.destroy());
  const slow = c.call("svc", "Block", new Uint8Array(0));
  assert.equal(dec(await c.call("svc", "Echo", enc("fast"), { timeoutMs: 1000 })), "fast");
  release();
  assert.equal(dec(await slow), "late");
});

test("connection closing aborts the handlers running for it", async (t) => {
  let reason: unknown;
  let onStart!: () => void;
  const started = new Promise<void>((r) => (onStart = r));
  const { path } = await echoServer(t, (s) =>
    s.register("svc", "Hang", (_p, ctx) => {
      onStart();
      return new Promise((_r, rej) => ctx.signal.addEventListener("abort", () => rej((reason = ctx.signal.reason))));
    }),
  );
  const c = await TtrpcClient.connect(path);
  const p = c.call("svc", "Hang", new Uint8Array(0));
  await started;
  c.destroy();
  await assert.rejects(p, (e: unknown) => e instanceof SkiffError && e.code === ErrorCode.Unavailable);
  for (let i = 0; i < 50 && reason === undefined; i++) await sleep(10);
  assert.ok(reason instanceof SkiffError && reason.code === ErrorCode.Unavailable);
});

test("garbage protobuf and bad stream ids get error statuses; the connection keeps working", async (t) => {
  const { path } = await echoServer(t);
  const raw = await rawClient(path);
  t.after(async () => raw.s.destroy());
  raw.s.write(Buffer.concat([encodeHeader({ length: 4, streamId: 1, type: 1, flags: 0 }), Buffer.from([0x0a, 0x7f, 0xff, 0x00])]));
  raw.s.write(requestFrame(2, "svc", "Echo")); // even id
  raw.s.write(requestFrame(1, "svc", "Echo")); // reused id
  raw.s.write(encodeHeader({ length: 0, streamId: 99, type: 7, flags: 0 })); // unknown type: ignored
  raw.s.write(requestFrame(3, "svc", "Echo", enc("still here")));
  await raw.next(4);
  assert.deepEqual(
    raw.responses.map((r) => [r.streamId, r.type, r.res.status?.code ?? 0]),
    [[1, 2, 3], [2, 2, 3], [1, 2, 3], [3, 2, 0]],
  );
  assert.equal(dec(raw.responses[3]!.res.payload), "still here");
  await assertServing(path);
});

test("an oversize length header gets ResourceExhausted, its data is discarded", async (t) => {
  const { path } = await echoServer(t);
  const raw = await rawClient(path);
  t.after(async () => raw.s.destroy());
  const big = MESSAGE_LENGTH_MAX + 100;
  raw.s.write(encodeHeader({ length: big, streamId: 1, type: 1, flags: 0 }));
  const r = await raw.next(1);
  assert.equal(r.streamId, 1);
  assert.equal(r.res.status?.code, 8);
  raw.s.write(Buffer.alloc(big, 0xee));
  raw.s.write(requestFrame(3, "svc", "Echo", enc("after")));
  assert.equal(dec((await raw.next(2)).res.payload), "after");
  // A header claiming 4 GiB from a peer that then vanishes does not hurt anyone else.
  const liar = await rawClient(path);
  liar.s.end(encodeHeader({ length: 0xffffffff, streamId: 1, type: 1, flags: 0 }));
  await liar.closed;
  await assertServing(path);
});

test("truncated frame then socket end: the server survives and serves other connections", async (t) => {
  const { path } = await echoServer(t);
  const raw = await rawClient(path);
  const frame = requestFrame(1, "svc", "Echo", enc("x".repeat(100)));
  raw.s.end(frame.subarray(0, 40));
  await raw.closed;
  assert.equal(raw.responses.length, 0);
  const half = await rawClient(path);
  half.s.end(frame.subarray(0, 6)); // half a header
  await half.closed;
  await assertServing(path);
});

test("close() drains an in-flight call, then refuses connections and removes the socket", async (t) => {
  const { server, path } = await echoServer(t, (s) =>
    s.register("svc", "Slow", async () => {
      await sleep(150);
      return enc("finished");
    }),
  );
  const c = await TtrpcClient.connect(path);
  t.after(() => c.destroy());
  const p = c.call("svc", "Slow", new Uint8Array(0));
  await sleep(20);
  const closing = server.close();
  await assert.rejects(
    c.call("svc", "Echo", enc("late"), { timeoutMs: 1000 }),
    (e: unknown) => e instanceof TtrpcStatusError && e.code === ErrorCode.Unavailable,
    "new requests during drain are refused",
  );
  assert.equal(dec(await p), "finished");
  await closing;
  await server.close(); // idempotent
  await assert.rejects(stat(path), { code: "ENOENT" });
  await assert.rejects(TtrpcClient.connect(path), (e: unknown) => e instanceof SkiffError && e.code === ErrorCode.Unavailable);
});

test("listen removes a stale socket file, applies mode, refuses to clobber a regular file", async (t) => {
  const path = sock();
  // A process killed while listening leaves its socket file behind (a clean close would unlink it).
  const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`]);
  await new Promise((r) => child.once("exit", r));
  assert.ok((await stat(path)).isSocket(), "stale socket file exists");
  const server = new TtrpcServer();
  server.register("svc", "Echo", async (p) => p);
  t.after(() => server.close());
  await server.listen(path, { mode: 0o600 });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  await assertServing(path);

  const regular = join(dir, "regular");
  await writeFile(regular, "x");
  const other = new TtrpcServer();
  await assert.rejects(other.listen(regular), (e: unknown) => e instanceof SkiffError && e.code === ErrorCode.FailedPrecondition);
  assert.equal(dec(await readFile(regular)), "x");
  await other.close();
});

test("unaryCall encodes and decodes with protobuf schemas", async (t) => {
  const { path } = await echoServer(t, (s) =>
    s.register("svc", "Len", async (p) => {
      const v = fromBinary(StringValueSchema, p);
      return toBinary(Int64ValueSchema, create(Int64ValueSchema, { value: BigInt(v.value.length) }));
    }),
  );
  const c = await TtrpcClient.connect(path);
  t.after(() => c.destroy());
  const out = await unaryCall(c, "svc", "Len", StringValueSchema, { value: "hello" }, Int64ValueSchema);
  assert.equal(out.value, 5n);
  await assert.rejects(
    unaryCall(c, "svc", "Nope", StringValueSchema, create(StringValueSchema, { value: "" }), Int64ValueSchema),
    (e: unknown) => e instanceof TtrpcStatusError && e.grpcCode === 12,
  );
});
