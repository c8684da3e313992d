import { test } from "node:test";
import assert from "node:assert/strict";
import type http from "node:http";
import { clientStreamProtocols, parseRoute, StreamingServer } from "./server.js";
import { silentLogger } from "../log.js";
import { isFailedPrecondition, isInvalidArgument } from "../errors.js";
import type { StreamingBackend } from "./types.js";

const backend: StreamingBackend = {
  exec: async () => ({ exitCode: 0 }),
  attach: async () => ({}),
  portForward: async () => undefined,
};

test("routes are /<kind>/<token> only", () => {
  assert.deepEqual(parseRoute("/exec/abc_-9"), { kind: "exec", token: "abc_-9" });
  assert.deepEqual(parseRoute("/portforward/t"), { kind: "portforward", token: "t" });
  for (const p of ["/exec/", "/exec/a/b", "/run/abc", "/exec/a.b", "/"]) assert.equal(parseRoute(p), undefined, p);
});

test("repeated X-Stream-Protocol-Version headers keep their order", () => {
  const req = { headers: { "x-stream-protocol-version": "v4.channel.k8s.io, v3.channel.k8s.io,channel.k8s.io" } } as unknown as http.IncomingMessage;
  assert.deepEqual(clientStreamProtocols(req), ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]);
});

test("bad options are InvalidArgument; register before start is FailedPrecondition", async () => {
  assert.throws(() => new StreamingServer({ backend, log: silentLogger, tokenTtlMs: 0 }), (e) => isInvalidArgument(e));
  const s = new StreamingServer({ backend, log: silentLogger });
  assert.throws(() => s.register({ kind: "portforward", podId: "p", ports: [] }), (e) => isFailedPrecondition(e));
  await s.start();
  assert.match(s.register({ kind: "portforward", podId: "p", ports: [] }), /^http:\/\/127\.0\.0\.1:\d+\/portforward\/[\w-]{32}$/);
  await assert.rejects(s.start(), (e) => isFailedPrecondition(e));
  await s.close();
  await s.close();
});

test("a port already in use is reported by start and nothing stays open", async () => {
  const a = new StreamingServer({ backend, log: silentLogger });
  await a.start();
  const b = new StreamingServer({ backend, log: silentLogger, port: a.port });
  await assert.rejects(b.start(), /EADDRINUSE/);
  await a.close();
  await b.close();
});

test("with TLS the server speaks HTTPS and registers https URLs", async (t) => {
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  const { execFile } = await import("node:child_process");
  const https = await import("node:https");
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-stream-tls-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certPath = path.join(dir, "cert.pem");
  const keyPath = path.join(dir, "key.pem");
  await new Promise<void>((resolve, reject) =>
    execFile("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "1", "-subj", "/CN=127.0.0.1"], (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  const s = new StreamingServer({ backend, log: silentLogger, tls: { certPath, keyPath } });
  await s.start();
  t.after(() => s.close());
  const url = s.register({ kind: "exec", containerId: "c", cmd: ["x"], tty: false, stdin: false, stdout: true, stderr: false });
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\//);
  const status = await new Promise<number>((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
  assert.equal(status, 400); // reached the handler over TLS; a plain GET is not an upgrade
});

test("missing TLS files fail start with nothing left listening", async () => {
  const s = new StreamingServer({ backend, log: silentLogger, tls: { certPath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem" } });
  await assert.rejects(s.start(), /ENOENT/);
  await s.close();
});

test("any Host reaches the router: a socket path, empty, a host:port, none at all", async (t) => {
  const net = await import("node:net");
  const s = new StreamingServer({ backend, log: silentLogger });
  await s.start();
  t.after(() => s.close());
  const send = (request: string) =>
    new Promise<string>((resolve) => {
      const c = net.connect(s.port, "127.0.0.1");
      let text = "";
      c.on("data", (d: Buffer) => (text += d.toString("latin1")));
      c.on("close", () => resolve(text));
      c.end(request);
    });
  for (const host of ["Host: /run/skiff/skiff.sock\r\n", "Host:\r\n", "Host: example.com:99\r\n", ""]) {
    // The router's answers: 404 for an unknown token, its own 400 for a request that is not an
    // upgrade. A refused Host would be the HTTP parser's bare 400 instead.
    const upgrade = await send(`GET /exec/no-such-token HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n`);
    assert.match(upgrade, /^HTTP\/1\.1 404 [^]*404 page not found/, JSON.stringify(host));
    const plain = await send(`GET /exec/no-such-token HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
    assert.match(plain, /^HTTP\/1\.1 (400|404) [^]*(missing upgrade headers|404 page not found)/, JSON.stringify(host));
  }
});
