import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { accept, acceptKey, negotiate, offeredProtocols, validateHandshake } from "./handshake.js";
import { WsConnection } from "./connection.js";

test("Sec-WebSocket-Accept matches RFC 6455's example", () => {
  assert.equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

test("negotiation follows the client's order and can allow no subprotocol", () => {
  const supported = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];
  assert.equal(negotiate(["v4.channel.k8s.io", "v5.channel.k8s.io"], supported, false), "v4.channel.k8s.io");
  assert.equal(negotiate(["x", "channel.k8s.io"], supported, false), "channel.k8s.io");
  assert.equal(negotiate(["x"], supported, true), undefined);
  assert.equal(negotiate([], supported, true), "");
  assert.equal(negotiate([], supported, false), undefined);
});

test("handshake over a real socket: validation, 101, messages, fragmentation, ping and close", async () => {
  const server = http.createServer();
  const conns: WsConnection[] = [];
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (head.length) socket.unshift(head);
    assert.deepEqual(offeredProtocols(req), ["a", "b"]);
    assert.equal(validateHandshake(req), undefined);
    accept(req, socket, "b");
    const ws = new WsConnection(socket, "b");
    conns.push(ws);
    ws.on("message", (m: Buffer, binary: boolean) => void ws.send(Buffer.concat([Buffer.from(binary ? "B:" : "T:"), m]), binary));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  after(() => new Promise<void>((r) => server.close(() => r())));
  const sock = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const received: Buffer[] = [];
  sock.on("data", (c) => received.push(c));
  sock.write(
    "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: a, b\r\n\r\n",
  );
  const mask = Buffer.from([9, 9, 9, 9]);
  const m = (first: number, s: string) => Buffer.concat([Buffer.from([first, 0x80 | s.length]), mask, Buffer.from([...Buffer.from(s, "latin1")].map((x) => x ^ 9))]);
  // "hel" + "lo" as a fragmented binary message, a ping in between, then close.
  sock.write(Buffer.concat([m(0x02, "hel"), m(0x89, "p"), m(0x80, "lo"), m(0x88, "\x03\xe8")]));
  await new Promise((r) => sock.once("close", r));
  const all = Buffer.concat(received).toString("latin1");
  assert.match(all, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(all, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
  assert.match(all, /Sec-WebSocket-Protocol: b\r\n/);
  const frames = Buffer.concat(received).subarray(all.indexOf("\r\n\r\n") + 4);
  // pong "p", then the echoed message "B:hello", then the close echo 1000.
  assert.equal(frames.toString("hex"), "8a0170" + "8207" + Buffer.from("B:hello").toString("hex") + "880203e8");
  assert.equal(conns[0]!.isClosed, true);
});
