import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeHeaderBlock, HpackDecoder, type HeaderField } from "./hpack.js";
import {
  CLIENT_PREFACE,
  frameHeader,
  H2_COMPRESSION_ERROR,
  H2_FRAME_SIZE_ERROR,
  H2_PROTOCOL_ERROR,
  Http2ConnectionError,
  isAcceptedAuthority,
  RequestRewriter,
} from "./request-rewriter.js";

const OPTS = { maxFrameSize: 16_384, headerTableSize: 4_096, maxHeaderBlockBytes: 64 * 1024 };

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function parseFrames(data: Buffer): Frame[] {
  assert.ok(data.subarray(0, CLIENT_PREFACE.length).equals(CLIENT_PREFACE), "output starts with the preface");
  const frames: Frame[] = [];
  let p = CLIENT_PREFACE.length;
  while (p < data.length) {
    const len = data.readUIntBE(p, 3);
    frames.push({ type: data[p + 3]!, flags: data[p + 4]!, streamId: data.readUInt32BE(p + 5), payload: data.subarray(p + 9, p + 9 + len) });
    p += 9 + len;
  }
  assert.equal(p, data.length, "output ends on a frame boundary");
  return frames;
}

const frame = (type: number, flags: number, streamId: number, payload: Buffer) => Buffer.concat([frameHeader(payload.length, type, flags, streamId), payload]);
const field = (name: string, value: string): HeaderField => ({ name, value, sensitive: false });
const request = (authority: string) => [field(":method", "POST"), field(":scheme", "http"), field(":path", "/svc/M"), field(":authority", authority)];
const settings = frame(0x4, 0, 0, Buffer.from([0, 4, 0, 0, 0xff, 0xff]));
const data = frame(0x0, 0x1, 1, Buffer.from("hello grpc"));

/** Feeds `input` in pieces of `step` bytes and returns the concatenated output. */
function run(input: Buffer, step = input.length, opts = OPTS): Buffer {
  const rw = new RequestRewriter(opts);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) out.push(...rw.push(input.subarray(i, i + step)));
  return Buffer.concat(out);
}

function headersOf(frames: Frame[]): HeaderField[][] {
  const d = new HpackDecoder();
  return frames.filter((f) => f.type === 0x1).map((f) => d.decode(f.flags & 0x20 ? f.payload.subarray(5) : f.payload));
}

test("authorities nghttp2 refuses are recognized, valid ones kept", () => {
  for (const bad of ["", "/run/skiff/skiff.sock", "a b", "x/y", "unix:///run/x.sock", "é", "a?b", "a#b"]) assert.equal(isAcceptedAuthority(bad), false, bad);
  for (const good of ["localhost", "a:1", "[::1]:80", "%2Frun%2Fx.sock", "user@host", "unix:relative"]) assert.equal(isAcceptedAuthority(good), true, good);
});

test("a socket path as :authority becomes localhost; other frames pass byte for byte, also when fed one byte at a time", () => {
  const input = Buffer.concat([CLIENT_PREFACE, settings, frame(0x1, 0x4, 1, encodeHeaderBlock(request("/run/skiff/skiff.sock"))), data]);
  for (const step of [input.length, 1, 7]) {
    const frames = parseFrames(run(input, step));
    assert.deepEqual(frames.map((f) => f.type), [0x4, 0x1, 0x0]);
    assert.deepEqual(frames[0]!.payload, settings.subarray(9));
    assert.deepEqual(frames[2], { type: 0x0, flags: 0x1, streamId: 1, payload: Buffer.from("hello grpc") });
    assert.deepEqual(headersOf(frames), [request("localhost")]);
  }
});

test("a client's dynamic table is followed: an indexed reference to a rewritten authority is rewritten too", () => {
  // Literal with incremental indexing of :authority (static name 1), then two requests that index it (62).
  const path = "/var/run/app.sock";
  const first = Buffer.concat([Buffer.from([0x83, 0x86, 0x84, 0x41, path.length]), Buffer.from(path)]);
  const second = Buffer.from([0x83, 0x86, 0x84, 0xbe]);
  const input = Buffer.concat([CLIENT_PREFACE, frame(0x1, 0x5, 1, first), frame(0x1, 0x5, 3, second)]);
  const frames = parseFrames(run(input));
  const got = headersOf(frames).map((fs) => fs.find((f) => f.name === ":authority")?.value);
  assert.deepEqual(got, ["localhost", "localhost"]);
  assert.deepEqual(frames.map((f) => [f.streamId, f.flags]), [[1, 0x5], [3, 0x5]], "END_STREAM and END_HEADERS kept");
});

test("padding is dropped, priority kept, CONTINUATION fragments joined, a big block split at the frame size", () => {
  const block = encodeHeaderBlock([...request(""), field("x-big", "v".repeat(40_000))]);
  const priority = Buffer.from([0x80, 0, 0, 0, 15]); // exclusive, depends on stream 0, weight 16
  const pad = 3;
  const headersPayload = Buffer.concat([Buffer.from([pad]), priority, block.subarray(0, 10_000), Buffer.alloc(pad)]);
  const input = Buffer.concat([
    CLIENT_PREFACE,
    frame(0x1, 0x8 | 0x20 | 0x1, 5, headersPayload), // PADDED | PRIORITY | END_STREAM, no END_HEADERS
    frame(0x9, 0, 5, block.subarray(10_000, 25_000)),
    frame(0x9, 0x4, 5, block.subarray(25_000)),
  ]);
  const frames = parseFrames(run(input, 4096, { ...OPTS, maxFrameSize: 16_384 }));
  assert.deepEqual(frames.map((f) => f.type), [0x1, 0x9, 0x9]);
  assert.equal(frames[0]!.flags, 0x20 | 0x1, "PRIORITY and END_STREAM, no PADDED, no END_HEADERS");
  assert.deepEqual(frames[0]!.payload.subarray(0, 5), priority);
  assert.equal(frames[2]!.flags, 0x4);
  for (const f of frames) assert.ok(f.payload.length <= 16_384);
  const joined = Buffer.concat([frames[0]!.payload.subarray(5), frames[1]!.payload, frames[2]!.payload]);
  assert.deepEqual(new HpackDecoder().decode(joined), [...request("localhost"), field("x-big", "v".repeat(40_000))]);
});

test("protocol errors a proxy cannot pass on are connection errors with the right code", () => {
  const hb = encodeHeaderBlock(request("x"));
  const cases: [string, Buffer, number][] = [
    ["a frame between HEADERS and CONTINUATION", Buffer.concat([frame(0x1, 0, 1, hb), data]), H2_PROTOCOL_ERROR],
    ["CONTINUATION without HEADERS", frame(0x9, 0x4, 1, hb), H2_PROTOCOL_ERROR],
    ["CONTINUATION of another stream", Buffer.concat([frame(0x1, 0, 1, hb), frame(0x9, 0x4, 3, hb)]), H2_PROTOCOL_ERROR],
    ["HEADERS on stream 0", frame(0x1, 0x4, 0, hb), H2_PROTOCOL_ERROR],
    ["a frame above the max frame size", frameHeader(16_385, 0x0, 0, 1), H2_FRAME_SIZE_ERROR],
    ["padding longer than the payload", frame(0x1, 0x4 | 0x8, 1, Buffer.from([200, 0x82])), H2_PROTOCOL_ERROR],
    ["an undecodable header block", frame(0x1, 0x4, 1, Buffer.from([0x80])), H2_COMPRESSION_ERROR],
    ["a header block over the limit", Buffer.concat([frame(0x1, 0, 1, Buffer.alloc(16_000, 0x82)), ...Array.from({ length: 5 }, () => frame(0x9, 0, 1, Buffer.alloc(16_000, 0x82)))]), H2_PROTOCOL_ERROR],
  ];
  for (const [what, bytes, code] of cases) {
    assert.throws(() => run(Buffer.concat([CLIENT_PREFACE, bytes])), (err: unknown) => err instanceof Http2ConnectionError && err.h2Code === code, what);
  }
});

test("a client that does not speak HTTP/2 passes unchanged (the server refuses it itself)", () => {
  const http1 = Buffer.from("GET / HTTP/1.1\r\nHost: /run/x.sock\r\n\r\n");
  assert.deepEqual(Buffer.concat(new RequestRewriter(OPTS).push(http1)), http1);
});

test("a preface split across reads waits for the rest", () => {
  const rw = new RequestRewriter(OPTS);
  assert.equal(Buffer.concat(rw.push(CLIENT_PREFACE.subarray(0, 2))).length, 0);
  assert.deepEqual(Buffer.concat(rw.push(Buffer.concat([CLIENT_PREFACE.subarray(2), settings]))), Buffer.concat([CLIENT_PREFACE, settings]));
});

test("random bytes after the preface either pass or end in an Http2ConnectionError, never another error", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 2000; round++) {
    // Mostly well-formed frame headers of header types, with random payloads, so HPACK is reached.
    const parts: Buffer[] = [CLIENT_PREFACE];
    for (let f = 0; f < 3; f++) {
      const payload = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
      const type = [0x1, 0x9, 0x0, 0x1][Math.floor(rand() * 4)]!;
      parts.push(frame(type, Math.floor(rand() * 256), Math.floor(rand() * 4), payload));
    }
    try {
      run(Buffer.concat(parts), 1 + Math.floor(rand() * 20));
    } catch (err) {
      assert.ok(err instanceof Http2ConnectionError, `round ${round}: ${String(err)}`);
    }
  }
});
