/** `exec -i/-t` plumbing: the WebSocket client against the streaming server's own framing, and exit codes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import { acceptFor, connectWebSocket, encodeClientFrame, ServerFrameParser } from "./ws-client.js";
import { exitFromStatus, CHANNEL_PROTOCOLS } from "./exec-stream.js";
import { accept, offeredProtocols, negotiate } from "../streaming/ws/handshake.js";
import { WsConnection } from "../streaming/ws/connection.js";
import { FrameParser } from "../streaming/ws/frames.js";

test("accept key of RFC 6455's example; client frames are masked and read back by a server parser", () => {
  assert.equal(acceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  for (const size of [0, 5, 125, 126, 70_000]) {
    const payload = Buffer.alloc(size, 7);
    const frame = encodeClientFrame(2, payload);
    assert.equal(frame[1]! & 0x80, 0x80, "mask bit");
    const [f] = new FrameParser(1 << 20).push(frame);
    assert.equal(f!.opcode, 2);
    assert.ok(f!.payload.equals(payload), `payload of ${size} bytes`);
  }
  // Server frames split across chunks, with a 16-bit length.
  const p = new ServerFrameParser();
  const body = Buffer.alloc(300, 1);
  const frame = Buffer.concat([Buffer.from([0x82, 126, 1, 44]), body]);
  assert.deepEqual(p.push(frame.subarray(0, 3)), []);
  const [got] = p.push(frame.subarray(3));
  assert.equal(got!.payload.length, 300);
  assert.throws(() => new ServerFrameParser().push(encodeClientFrame(2, Buffer.from("x"))), /masked/);
});

test("exit codes from the final status", () => {
  assert.deepEqual(exitFromStatus(undefined), { code: 0 });
  assert.deepEqual(exitFromStatus({ status: "Success" }), { code: 0 });
  assert.deepEqual(exitFromStatus({ status: "Failure", reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: "42" }] } }), { code: 42 });
  assert.deepEqual(exitFromStatus({ status: "Failure", reason: "InternalError", message: "boom" }), { code: 1, message: "boom" });
});

test("talks to a WebSocket server: subprotocol, messages both ways, close", async (t) => {
  const server = http.createServer((_req, res) => res.writeHead(404).end("no"));
  server.on("upgrade", (req, socket) => {
    const proto = negotiate(offeredProtocols(req), ["v4.channel.k8s.io"], false)!;
    accept(req, socket, proto);
    const conn = new WsConnection(socket, proto);
    conn.on("message", (data: Buffer) => {
      void conn.send(Buffer.concat([Buffer.from([1]), data.subarray(1)])).then(() => conn.close());
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;

  const ws = await connectWebSocket(`http://127.0.0.1:${port}/exec/x`, CHANNEL_PROTOCOLS);
  assert.equal(ws.protocol, "v4.channel.k8s.io", "the server's choice among the offered ones");
  const got: Buffer[] = [];
  const closed = new Promise<void>((r) => (ws.onClose = () => r()));
  ws.onMessage = (m) => void got.push(m);
  ws.send(Buffer.from([0, ...Buffer.from("ping")]));
  await closed;
  assert.deepEqual(got.map((m) => [m[0], m.subarray(1).toString()]), [[1, "ping"]]);

  // The test server then offers none of ours: refused, with the reason.
  await assert.rejects(connectWebSocket(`http://127.0.0.1:${port}/nope`, ["v9.none"]), /no offered protocol/);
});
