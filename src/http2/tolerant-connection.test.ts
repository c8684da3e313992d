import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CLIENT_PREFACE, frameHeader } from "./request-rewriter.js";
import { serveTolerant } from "./tolerant-connection.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "skiff-h2-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An HTTP/2 server behind serveTolerant that echoes the request's headers as JSON. */
async function echoServer(t: { after(fn: () => Promise<void> | void): void }) {
  const h2 = http2.createServer({}, (req, res) => {
    req.resume();
    req.on("end", () => res.end(JSON.stringify(req.headers)));
  });
  const rewrites: string[] = [];
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    serveTolerant(h2, s, { onRewrite: (_n, v) => rewrites.push(v) });
  });
  const sock = path.join(dir, `echo-${Math.random().toString(36).slice(2)}.sock`);
  await new Promise<void>((r) => listener.listen(sock, r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => listener.close(() => r()));
  });
  return { sock, rewrites };
}

function connect(sock: string) {
  return http2.connect("http://localhost", { createConnection: () => net.connect(sock) });
}

function get(c: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ rst: number; body: Record<string, string> }> {
  return new Promise((resolve) => {
    const r = c.request({ ":method": "POST", ":path": "/svc/Method", ...headers });
    let text = "";
    r.setEncoding("utf8");
    r.on("data", (d: string) => (text += d));
    r.on("error", () => {});
    r.on("close", () => resolve({ rst: r.rstCode ?? 0, body: text ? (JSON.parse(text) as Record<string, string>) : {} }));
    r.end();
  });
}

test("every :authority reaches the handler: a socket path, empty, each printable character; valid ones unchanged", async (t) => {
  const { sock, rewrites } = await echoServer(t);
  const c = connect(sock);
  t.after(() => void c.close());
  const odd = Array.from({ length: 95 }, (_, i) => `a${String.fromCharCode(32 + i)}b`);
  for (const authority of ["/run/skiff/skiff.sock", "", "localhost", "127.0.0.1:1234", "unix:///run/x.sock", ...odd, "/run/skiff/skiff.sock"]) {
    const { rst, body } = await get(c, { ":authority": authority });
    assert.equal(rst, 0, `stream with :authority ${JSON.stringify(authority)} was reset`);
    const expected = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]+$/.test(authority) ? authority : "localhost";
    assert.equal(body[":authority"], expected, JSON.stringify(authority));
  }
  assert.ok(rewrites.includes("/run/skiff/skiff.sock") && rewrites.includes(""));
  assert.ok(!rewrites.includes("localhost"));
});

test("nghttp2's Huffman coding and dynamic table decode to exactly what was sent: every octet a header value may hold", async (t) => {
  const { sock } = await echoServer(t);
  const c = connect(sock);
  t.after(() => void c.close());
  // Node allows tab, printable ASCII and 0x80–0xff in values. A run of 'a's makes Huffman coding
  // shorter than raw octets even for the 30-bit codes, so nghttp2 Huffman-codes every value.
  const octets = [9, ...Array.from({ length: 95 }, (_, i) => 32 + i), ...Array.from({ length: 128 }, (_, i) => 128 + i)];
  // Node's server takes at most 128 header pairs a request: 64 octets a request, each sent twice
  // (the second time nghttp2 refers to its dynamic table entry).
  for (let round = 0; round < 2; round++) {
    for (let from = 0; from < octets.length; from += 64) {
      const headers: Record<string, string> = { ":authority": "/run/x.sock" };
      for (const o of octets.slice(from, from + 64)) headers[`x-o${o}`] = `${"a".repeat(24)}${String.fromCharCode(o)}z`;
      const { rst, body } = await get(c, headers);
      assert.equal(rst, 0);
      for (const o of octets.slice(from, from + 64)) assert.equal(body[`x-o${o}`], headers[`x-o${o}`], `octet ${o}, round ${round}`);
      assert.equal(body[":authority"], "localhost");
    }
  }
});

test("a 40 KiB header spread over CONTINUATION frames and 64 concurrent streams", async (t) => {
  const { sock } = await echoServer(t);
  const c = connect(sock);
  t.after(() => void c.close());
  const big = "x".repeat(40 * 1024); // Node's server takes header lists of at most 64 KiB
  const results = await Promise.all(Array.from({ length: 64 }, (_, i) => get(c, { ":authority": "", "x-big": i % 8 === 0 ? big : `small-${i}` })));
  results.forEach((r, i) => {
    assert.equal(r.rst, 0);
    assert.equal(r.body["x-big"], i % 8 === 0 ? big : `small-${i}`);
  });
});

test("a client breaking HPACK gets GOAWAY with COMPRESSION_ERROR and the connection closes", async (t) => {
  const { sock } = await echoServer(t);
  const s = net.connect(sock);
  t.after(() => void s.destroy());
  const received: Buffer[] = [];
  s.on("data", (d: Buffer) => received.push(d));
  const closed = new Promise<void>((r) => s.on("close", () => r()));
  const settings = Buffer.concat([frameHeader(0, 0x4, 0, 0)]);
  const badHeaders = Buffer.concat([frameHeader(1, 0x1, 0x5, 1), Buffer.from([0x80])]); // index 0
  s.write(Buffer.concat([CLIENT_PREFACE, settings, badHeaders]));
  await closed;
  const all = Buffer.concat(received);
  // Find the GOAWAY frame (type 7) among the server's frames.
  let code: number | undefined;
  for (let p = 0; p + 9 <= all.length; ) {
    const len = all.readUIntBE(p, 3);
    if (all[p + 3] === 0x7) code = all.readUInt32BE(p + 9 + 4);
    p += 9 + len;
  }
  assert.equal(code, 0x9);
});
