import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { encodeFrame, FrameReader, RstStatus, type Frame } from "./frames.js";
import { HeaderCompressor, HeaderDecompressor, headerMap } from "./headers.js";
import { SpdySession } from "./session.js";
import type { SpdyStream } from "./stream.js";

/** A raw peer: writes frames, records frames it receives. Uses the codec under test for brevity. */
async function pair(onStream: (s: SpdyStream) => void, initialWindow?: number, flowControlProbeMs = 5000) {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const sock = await accepted;
  const session = new SpdySession(sock, { onStream, flowControlProbeMs, ...(initialWindow ? { initialWindow } : {}) });
  const got: Frame[] = [];
  const reader = new FrameReader();
  client.on("data", (c: Buffer) => got.push(...reader.push(c)));
  const deflate = new HeaderCompressor();
  const inflate = new HeaderDecompressor();
  const send = (f: Frame) => client.write(encodeFrame(f));
  const open = async (id: number, headers: Record<string, string>, fin = false) =>
    send({ type: "syn_stream", streamId: id, assocId: 0, priority: 0, fin, unidirectional: false, block: await deflate.compress(headerMap(headers)) });
  const close = async () => {
    client.destroy();
    session.destroy();
    deflate.close();
    inflate.close();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return { session, got, send, open, close, inflate };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

const dataBytes = (got: Frame[], id: number) => got.reduce((n, f) => n + (f.type === "data" && f.streamId === id ? f.data.length : 0), 0);

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

test("streams carry their headers, data in both directions, and FIN", async () => {
  const streams: SpdyStream[] = [];
  const p = await pair((s) => streams.push(s));
  cleanups.push(p.close);
  await p.open(1, { streamtype: "stdin" });
  await until(() => streams.length === 1, "stream");
  const s = streams[0]!;
  assert.equal(s.header("StreamType"), "stdin");
  p.send({ type: "data", streamId: 1, fin: true, data: Buffer.from("abc") });
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  await new Promise((r) => s.once("end", r));
  assert.equal(Buffer.concat(chunks).toString(), "abc");
  s.end("reply");
  await until(() => p.got.some((f) => f.type === "data" && f.fin), "FIN");
  const reply = p.got.find((f) => f.type === "syn_reply");
  assert.ok(reply && reply.type === "syn_reply");
  assert.equal(p.got.indexOf(reply) < p.got.findIndex((f) => f.type === "data"), true, "SYN_REPLY precedes DATA");
  assert.equal(dataBytes(p.got, 1), 5);
});

test("sending stops at the peer's 64 KiB window and resumes on WINDOW_UPDATE", async () => {
  const streams: SpdyStream[] = [];
  const p = await pair((s) => streams.push(s));
  cleanups.push(p.close);
  await p.open(1, { streamtype: "stdout" });
  await until(() => streams.length === 1, "stream");
  let done = false;
  streams[0]!.end(Buffer.alloc(100_000, 1), () => (done = true));
  await until(() => dataBytes(p.got, 1) === 65536, "first window");
  await sleep(50);
  assert.equal(dataBytes(p.got, 1), 65536, "no byte beyond the window");
  assert.equal(done, false);
  p.send({ type: "window_update", streamId: 1, delta: 40_000 });
  await sleep(50);
  assert.equal(dataBytes(p.got, 1), 65536, "the session window still blocks");
  p.send({ type: "window_update", streamId: 0, delta: 40_000 });
  await until(() => done, "write completes");
  assert.equal(dataBytes(p.got, 1), 100_000);
});

test("SETTINGS INITIAL_WINDOW_SIZE adjusts open streams' send windows", async () => {
  const streams: SpdyStream[] = [];
  const p = await pair((s) => streams.push(s));
  cleanups.push(p.close);
  await p.open(1, { streamtype: "stdout" });
  await until(() => streams.length === 1, "stream");
  p.send({ type: "settings", clear: false, entries: [{ id: 7, value: 1000, flags: 0 }] });
  await sleep(20);
  streams[0]!.write(Buffer.alloc(5000));
  await until(() => dataBytes(p.got, 1) === 1000, "window of 1000");
  await sleep(30);
  assert.equal(dataBytes(p.got, 1), 1000);
});

test("receive credit is returned as the consumer reads; an overrun is a FLOW_CONTROL_ERROR", async () => {
  const streams: SpdyStream[] = [];
  const p = await pair((s) => streams.push(s), 4096);
  cleanups.push(p.close);
  await until(() => p.got.some((f) => f.type === "settings"), "SETTINGS from server");
  const settings = p.got.find((f) => f.type === "settings");
  assert.deepEqual(settings && settings.type === "settings" && settings.entries[0], { id: 7, value: 4096, flags: 0 });
  // A WINDOW_UPDATE shows the peer does flow control, which makes overruns errors.
  p.send({ type: "window_update", streamId: 0, delta: 1 });
  await p.open(1, { streamtype: "stdin" });
  await p.open(3, { streamtype: "stdin" });
  await until(() => streams.length === 2, "streams");
  assert.equal(p.session.peerFlowControl, "yes");
  streams[0]!.resume();
  p.send({ type: "data", streamId: 1, fin: false, data: Buffer.alloc(4096) });
  await until(() => p.got.some((f) => f.type === "window_update" && f.streamId === 1), "WINDOW_UPDATE for stream 1");
  p.send({ type: "data", streamId: 3, fin: false, data: Buffer.alloc(4097) });
  await until(() => p.got.some((f) => f.type === "rst_stream" && f.streamId === 3), "RST for stream 3");
  const rst = p.got.find((f) => f.type === "rst_stream");
  assert.equal(rst && rst.type === "rst_stream" && rst.status, RstStatus.FlowControlError);
  assert.equal(streams[1]!.destroyed, true);
});

test("pings are echoed, even stream ids and RST_STREAM are handled, close sends GOAWAY", async () => {
  const streams: SpdyStream[] = [];
  const p = await pair((s) => streams.push(s));
  cleanups.push(p.close);
  p.send({ type: "ping", id: 7 });
  await until(() => p.got.some((f) => f.type === "ping" && f.id === 7), "ping echo");
  await p.open(2, { streamtype: "x" });
  await until(() => p.got.some((f) => f.type === "rst_stream" && f.streamId === 2), "refused even id");
  assert.equal(streams.length, 0);
  await p.open(5, { streamtype: "x" });
  await until(() => streams.length === 1, "stream 5");
  p.send({ type: "rst_stream", streamId: 5, status: RstStatus.Cancel });
  await until(() => streams[0]!.destroyed, "stream destroyed by RST");
  assert.equal(streams[0]!.resetStatus, RstStatus.Cancel);
  assert.equal(p.session.streamCount, 0);
  await p.session.close();
  await until(() => p.got.some((f) => f.type === "goaway"), "GOAWAY");
  assert.equal(p.session.isClosed, true);
});

test("a peer that does no flow control (like spdystream) is served without windows after the probe", async () => {
  const streams: SpdyStream[] = [];
  const p = await pair((s) => streams.push(s), undefined, 100);
  cleanups.push(p.close);
  await p.open(1, { streamtype: "stdout" });
  await until(() => streams.length === 1, "stream");
  // Its overrun of our 64 KiB window is accepted, not reset.
  const got: Buffer[] = [];
  streams[0]!.on("data", (c: Buffer) => got.push(c));
  p.send({ type: "data", streamId: 1, fin: false, data: Buffer.alloc(100_000, 2) });
  await until(() => Buffer.concat(got).length === 100_000, "overrun accepted");
  assert.equal(p.got.some((f) => f.type === "rst_stream"), false);
  // Our writes stop at the window, then go on once the probe gives up waiting for WINDOW_UPDATE.
  let done = false;
  streams[0]!.write(Buffer.alloc(200_000), () => (done = true));
  await until(() => done, "write completes without WINDOW_UPDATE");
  assert.equal(p.session.peerFlowControl, "no");
  await until(() => dataBytes(p.got, 1) === 200_000, "all bytes on the wire");
});
