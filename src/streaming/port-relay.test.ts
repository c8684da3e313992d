/**
 * The relay against a real TCP server on the loopback: directly (host network) and through the
 * helper process (native/portrelay.c, built by `make build`) with "-" as the namespace, which
 * exercises the helper's copying and exit codes without needing root.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import * as net from "node:net";
import { Duplex, PassThrough } from "node:stream";
import { defaultConfig } from "../config.js";
import { isCanceled, isUnavailable } from "../errors.js";
import { relayPort, type RelayTarget } from "./port-relay.js";

const relayBinary = defaultConfig().streaming.portRelayBinary;

/** A server that answers each connection with "echo:" + everything it received, then closes. */
async function echoServer(): Promise<{ port: number; open: () => number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    const got: Buffer[] = [];
    s.on("data", (b: Buffer) => got.push(b));
    s.on("end", () => s.end(`echo:${Buffer.concat(got).toString()}`));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    open: () => socks.size,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

/** The client's side of a connection: what it writes, and what it receives. */
function clientConn(): { conn: Duplex; send: PassThrough; received: () => string } {
  const send = new PassThrough();
  const recv = new PassThrough();
  const chunks: Buffer[] = [];
  recv.on("data", (b: Buffer) => chunks.push(b));
  const conn = Duplex.from({ readable: send, writable: recv });
  return { conn, send, received: () => Buffer.concat(chunks).toString() };
}

for (const mode of ["direct", "helper"] as const) {
  test(`relay (${mode}): both directions, half-close, parallel connections`, async (t) => {
    if (mode === "helper") await access(relayBinary);
    const srv = await echoServer();
    t.after(() => srv.close());
    const target = (port: number): RelayTarget => ({ what: 'pod sandbox "p"', netnsPath: mode === "direct" ? null : "-", port, relayBinary });
    const one = async (i: number) => {
      const c = clientConn();
      const done = relayPort(target(srv.port), c.conn, new AbortController().signal);
      c.send.end(`hello ${i}`);
      await done;
      return c.received();
    };
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => one(i)));
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `echo:hello ${i}`));
  });

  test(`relay (${mode}): nothing listening is Unavailable naming the pod and port`, async () => {
    if (mode === "helper") await access(relayBinary);
    const srv = await echoServer();
    const port = srv.port;
    await srv.close();
    const c = clientConn();
    await assert.rejects(
      relayPort({ what: 'pod sandbox "p"', netnsPath: mode === "direct" ? null : "-", port, relayBinary }, c.conn, new AbortController().signal),
      (e: Error) => isUnavailable(e) && e.message.includes('pod sandbox "p"') && e.message.includes(String(port)),
    );
  });

  test(`relay (${mode}): abort ends it promptly and closes the connection to the port`, async (t) => {
    if (mode === "helper") await access(relayBinary);
    const srv = await echoServer();
    t.after(() => srv.close());
    const c = clientConn();
    const ac = new AbortController();
    const done = relayPort({ what: 'pod sandbox "p"', netnsPath: mode === "direct" ? null : "-", port: srv.port, relayBinary }, c.conn, ac.signal);
    c.send.write("partial");
    for (let i = 0; i < 100 && srv.open() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.open(), 1);
    ac.abort();
    await assert.rejects(done, (e: Error) => isCanceled(e));
    for (let i = 0; i < 100 && srv.open() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.open(), 0, "the server's connection was closed");
  });
}

test("relay (helper): a client connection that goes away ends the relay without an error", async (t) => {
  await access(relayBinary);
  const srv = await echoServer();
  t.after(() => srv.close());
  const c = clientConn();
  const done = relayPort({ what: 'pod sandbox "p"', netnsPath: "-", port: srv.port, relayBinary }, c.conn, new AbortController().signal);
  c.send.write("partial");
  for (let i = 0; i < 100 && srv.open() === 0; i++) await new Promise((r) => setTimeout(r, 10));
  c.conn.destroy();
  await done;
  for (let i = 0; i < 100 && srv.open() > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(srv.open(), 0, "the helper was stopped and the server's connection closed");
});

test("relay: a missing helper binary is Unavailable naming it", async () => {
  const c = clientConn();
  await assert.rejects(
    relayPort({ what: 'pod sandbox "p"', netnsPath: "-", port: 1, relayBinary: "/nonexistent/skiff-portrelay" }, c.conn, new AbortController().signal),
    (e: Error) => isUnavailable(e) && e.message.includes("/nonexistent/skiff-portrelay"),
  );
});
