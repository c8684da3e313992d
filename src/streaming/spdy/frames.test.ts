import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame, FrameReader, RstStatus, type Frame } from "./frames.js";
import { isInvalidArgument } from "../../errors.js";

const samples: Frame[] = [
  { type: "data", streamId: 5, fin: true, data: Buffer.from("hello") },
  { type: "data", streamId: 0x7fffffff, fin: false, data: Buffer.alloc(0) },
  { type: "syn_stream", streamId: 1, assocId: 0, priority: 4, fin: false, unidirectional: true, block: Buffer.from([1, 2, 3]) },
  { type: "syn_reply", streamId: 3, fin: true, block: Buffer.from([9]) },
  { type: "headers", streamId: 3, fin: false, block: Buffer.from([7, 7]) },
  { type: "rst_stream", streamId: 9, status: RstStatus.FlowControlError },
  { type: "settings", clear: false, entries: [{ id: 7, value: 1 << 20, flags: 0 }, { id: 4, value: 100, flags: 1 }] },
  { type: "ping", id: 0xfffffffe },
  { type: "goaway", lastGoodStreamId: 11, status: 1 },
  { type: "window_update", streamId: 0, delta: 0x7fffffff },
];

test("every frame type survives an encode/decode round trip", () => {
  for (const f of samples) {
    const [back, ...rest] = new FrameReader().push(encodeFrame(f));
    assert.equal(rest.length, 0);
    assert.deepEqual(back, f);
  }
});

test("the reader accepts any chunking, down to single bytes", () => {
  const wire = Buffer.concat(samples.map(encodeFrame));
  const r = new FrameReader();
  const out: Frame[] = [];
  for (const b of wire) out.push(...r.push(Buffer.from([b])));
  assert.deepEqual(out, samples);
});

test("wire layout matches the draft (control bit, version 3, type, flags, 24-bit length)", () => {
  const b = encodeFrame({ type: "rst_stream", streamId: 1, status: RstStatus.Cancel });
  assert.equal(b.toString("hex"), "80030003000000080000000100000005");
  const d = encodeFrame({ type: "data", streamId: 3, fin: true, data: Buffer.from("ab") });
  assert.equal(d.toString("hex"), "00000003010000026162");
});

test("decodes Chromium's SYN_STREAM test vector header fields", () => {
  const wire = Buffer.from("80030001000000370000000100000000800038eae3c6a7c202e50e50c24b4a04e50b6680004acbcf07082010" + "95969f0fa200022829b108208000000000ffff", "hex");
  const [f] = new FrameReader().push(wire);
  assert.ok(f && f.type === "syn_stream");
  assert.equal(f.streamId, 1);
  assert.equal(f.priority, 4);
  assert.equal(f.fin, false);
  assert.equal(f.block.length, 45);
});

test("a control frame of another version is InvalidArgument; unknown types are skipped", () => {
  const v2 = Buffer.from("8002000600000004" + "00000001", "hex");
  assert.throws(() => new FrameReader().push(v2), (e) => isInvalidArgument(e));
  const unknown = Buffer.from("8003004200000000", "hex");
  assert.deepEqual(new FrameReader().push(unknown), [{ type: "unknown", frameType: 0x42 }]);
});

test("a truncated control payload is InvalidArgument", () => {
  const short = Buffer.from("8003000300000004" + "00000001", "hex");
  assert.throws(() => new FrameReader().push(short), /RST_STREAM frame payload of 4 bytes/);
});
