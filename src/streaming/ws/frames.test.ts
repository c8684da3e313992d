import { test } from "node:test";
import assert from "node:assert/strict";
import { applyMask, CloseCode, encodeFrame, FrameParser, Opcode, WsProtocolError } from "./frames.js";

/** Builds a masked client frame the way a browser would. */
function clientFrame(opcode: number, payload: Buffer, fin = true, mask = Buffer.from([1, 2, 3, 4])): Buffer {
  const server = encodeFrame(opcode, payload, fin);
  const headLen = server.length - payload.length;
  const head = Buffer.from(server.subarray(0, headLen));
  head[1] = head[1]! | 0x80;
  const body = Buffer.from(payload);
  applyMask(body, mask);
  return Buffer.concat([head, mask, body]);
}

test("server frames use the 7-bit, 16-bit and 64-bit length forms, unmasked", () => {
  assert.equal(encodeFrame(Opcode.Text, Buffer.from("Hello")).toString("hex"), "810548656c6c6f"); // RFC 6455 5.7
  const mid = encodeFrame(Opcode.Binary, Buffer.alloc(256));
  assert.equal(mid.subarray(0, 4).toString("hex"), "827e0100");
  const big = encodeFrame(Opcode.Binary, Buffer.alloc(65536));
  assert.equal(big.subarray(0, 10).toString("hex"), "827f0000000000010000");
});

test("parses the RFC's masked 'Hello' example", () => {
  const [f] = new FrameParser(1024).push(Buffer.from("818537fa213d7f9f4d5158", "hex"));
  assert.deepEqual(f, { fin: true, opcode: Opcode.Text, payload: Buffer.from("Hello") });
});

test("parses across arbitrary chunk boundaries and all length forms", () => {
  const frames = [clientFrame(Opcode.Binary, Buffer.alloc(5, 7)), clientFrame(Opcode.Binary, Buffer.alloc(300, 8), false), clientFrame(Opcode.Continuation, Buffer.alloc(70_000, 9))];
  const wire = Buffer.concat(frames);
  const p = new FrameParser(1 << 20);
  const out = [];
  for (let i = 0; i < wire.length; i += 1000) out.push(...p.push(wire.subarray(i, i + 1000)));
  assert.deepEqual(out.map((f) => [f.opcode, f.fin, f.payload.length, f.payload[0]]), [[2, true, 5, 7], [2, false, 300, 8], [0, true, 70_000, 9]]);
});

test("rejects unmasked frames, reserved bits, bad control frames and oversize frames", () => {
  const code = (b: Buffer, max = 1024) => {
    try {
      new FrameParser(max).push(b);
    } catch (e) {
      assert.ok(e instanceof WsProtocolError);
      return e.closeCode;
    }
    return undefined;
  };
  assert.equal(code(encodeFrame(Opcode.Text, Buffer.from("x"))), CloseCode.ProtocolError);
  const rsv = clientFrame(Opcode.Text, Buffer.from("x"));
  rsv[0] = rsv[0]! | 0x40;
  assert.equal(code(rsv), CloseCode.ProtocolError);
  assert.equal(code(clientFrame(Opcode.Ping, Buffer.alloc(126))), CloseCode.ProtocolError);
  assert.equal(code(clientFrame(Opcode.Ping, Buffer.alloc(1), false)), CloseCode.ProtocolError);
  assert.equal(code(clientFrame(0x3, Buffer.alloc(1))), CloseCode.ProtocolError);
  assert.equal(code(clientFrame(Opcode.Binary, Buffer.alloc(2000))), CloseCode.TooBig);
});
