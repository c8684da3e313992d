import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameDecoder, MESSAGE_LENGTH_MAX, encodeHeader, writeFrame, type Frame, type FrameHeader } from "./frame.js";
import { ErrorCode, SkiffError } from "../errors.js";
import { TtrpcStatusError } from "./status.js";
import type { Socket } from "node:net";

function frameBytes(streamId: number, type: number, data: Uint8Array, flags = 0): Buffer {
  return Buffer.concat([encodeHeader({ length: data.length, streamId, type, flags }), data]);
}

function collect() {
  const frames: Frame[] = [];
  const oversize: FrameHeader[] = [];
  const dec = new FrameDecoder({
    onFrame: (f) => frames.push({ ...f, data: Buffer.from(f.data) }),
    onOversize: (h) => oversize.push(h),
  });
  return { dec, frames, oversize };
}

test("header is 10 bytes big-endian: length, stream id, type, flags", () => {
  const h = encodeHeader({ length: 0x01020304, streamId: 0x0a0b0c0d, type: 2, flags: 0x81 });
  assert.deepEqual([...h], [1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 2, 0x81]);
});

test("decodes many frames in one chunk and frames split byte by byte", () => {
  const wire = Buffer.concat([
    frameBytes(1, 1, Buffer.from("hello")),
    frameBytes(3, 2, new Uint8Array(0), 4),
    frameBytes(5, 1, Buffer.alloc(70_000, 7)),
  ]);
  const whole = collect();
  whole.dec.push(wire);
  const bytewise = collect();
  for (let i = 0; i < wire.length; i++) bytewise.dec.push(wire.subarray(i, i + 1));
  for (const { frames, dec } of [whole, bytewise]) {
    assert.equal(frames.length, 3);
    assert.deepEqual(frames.map((f) => [f.streamId, f.type, f.flags, f.length]), [
      [1, 1, 0, 5],
      [3, 2, 4, 0],
      [5, 1, 0, 70_000],
    ]);
    assert.equal(Buffer.from(frames[0]!.data).toString(), "hello");
    assert.ok(frames[2]!.data.every((b) => b === 7));
    assert.equal(dec.partial, false);
  }
});

test("an oversized frame is reported at once, its data discarded, and the next frame decoded", () => {
  const big = MESSAGE_LENGTH_MAX + 1;
  const { dec, frames, oversize } = collect();
  dec.push(encodeHeader({ length: big, streamId: 9, type: 1, flags: 0 }));
  assert.deepEqual(oversize, [{ length: big, streamId: 9, type: 1, flags: 0 }]);
  assert.equal(dec.partial, true);
  dec.push(Buffer.alloc(big - 10));
  dec.push(Buffer.concat([Buffer.alloc(10), frameBytes(11, 1, Buffer.from("x"))]));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.streamId, 11);
  assert.equal(dec.partial, false);
});

test("writeFrame refuses data over 4 MiB with ResourceExhausted and writes nothing", () => {
  const writes: unknown[] = [];
  const fake = { write: (b: unknown) => writes.push(b), cork() {}, uncork() {} } as unknown as Socket;
  assert.throws(
    () => writeFrame(fake, 1, 1, 0, new Uint8Array(MESSAGE_LENGTH_MAX + 1)),
    (err: unknown) => err instanceof TtrpcStatusError && err.code === ErrorCode.ResourceExhausted && err.grpcCode === 8,
  );
  assert.equal(writes.length, 0);
  writeFrame(fake, 1, 1, 0, new Uint8Array(MESSAGE_LENGTH_MAX));
  assert.equal(writes.length, 2);
  assert.ok(new TtrpcStatusError(8, "x") instanceof SkiffError);
});
