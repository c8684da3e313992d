import { test } from "node:test";
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "./dictionary.js";
import { FrameReader } from "./frames.js";
import { HeaderCompressor, HeaderDecompressor, headerMap, parseHeaders, serializeHeaders } from "./headers.js";

function adler32(b: Buffer): number {
  let a = 1;
  let c = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    c = (c + a) % 65521;
  }
  return ((c << 16) | a) >>> 0;
}

test("the dictionary has the spec's length and dictionary id", () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
  assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString("latin1"), "\0\0\0\x07options");
  assert.ok(SPDY3_DICTIONARY.toString("latin1").endsWith(",*,enq=0."));
});

test("serialised blocks use 32-bit lengths and NUL-joined values", () => {
  const b = serializeHeaders(headerMap({ StreamType: "error", x: ["a", "b"] }));
  assert.equal(b.toString("hex"), "00000002" + "0000000a" + Buffer.from("streamtype").toString("hex") + "00000005" + Buffer.from("error").toString("hex") + "00000001" + "78" + "00000003" + "610062");
  const back = parseHeaders(b);
  assert.deepEqual([...back], [["streamtype", ["error"]], ["x", ["a", "b"]]]);
});

test("a truncated block is rejected", () => {
  assert.throws(() => parseHeaders(Buffer.from("0000000100000005616263", "hex")), /truncated string/);
});

test("Chromium's compressed SYN_STREAM vector inflates with our dictionary", async () => {
  const wire = Buffer.from("80030001000000370000000100000000800038eae3c6a7c202e50e50c24b4a04e50b6680004acbcf07082010" + "95969f0fa200022829b108208000000000ffff", "hex");
  const [f] = new FrameReader().push(wire);
  assert.ok(f && f.type === "syn_stream");
  // The zlib header carries the dictionary id: 0xe3c6a7c2.
  assert.equal(f.block.readUInt32BE(2), 0xe3c6a7c2);
  const h = await new HeaderDecompressor().decompress(f.block);
  assert.deepEqual(Object.fromEntries([...h].map(([k, v]) => [k, v.join("\0")])), { bar: "foo", foo: "bar" });
});

test("compressor and decompressor share state across blocks, in order", async () => {
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const blocks = await Promise.all([1, 2, 3].map((i) => c.compress(headerMap({ streamtype: "stdout", requestid: String(i) }))));
  // The second identical-but-one block compresses better thanks to the shared window.
  assert.ok(blocks[1]!.length < blocks[0]!.length);
  for (const [i, b] of blocks.entries()) {
    const h = await d.decompress(b);
    assert.deepEqual(h.get("requestid"), [String(i + 1)]);
  }
  // Each block ends with a sync flush marker so the peer can decode it alone.
  assert.ok(blocks[0]!.subarray(-4).equals(Buffer.from("0000ffff", "hex")));
  c.close();
  d.close();
});

test("a block compressed without the dictionary fails cleanly and poisons the context", async () => {
  const d = new HeaderDecompressor();
  const plain = zlib.deflateSync(serializeHeaders(headerMap({ a: "b" })), { dictionary: Buffer.from("other") });
  await assert.rejects(d.decompress(plain), /spdy: header block/);
  await assert.rejects(d.decompress(plain), /spdy: header block/);
  d.close();
});
