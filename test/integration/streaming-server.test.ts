/**
 * The streaming server end to end over real sockets, with a fake backend, driven by the
 * independent SPDY / WebSocket clients in test/streaming (which do not import the server code).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { StreamingServer } from "../../src/streaming/server.js";
import type { CommandIo, StreamingBackend, StreamingRequest, TerminalSize } from "../../src/streaming/types.js";
import { notFound } from "../../src/errors.js";
import { silentLogger } from "../../src/log.js";
import { spdyExec, spdyForwardOnce, spdyPortForwardSession, wsDecode, wsEncode, wsExec } from "../streaming/k8s-clients.js";
import { spdyConnect } from "../streaming/spdy-client.js";
import { wsConnect } from "../streaming/ws-client.js";

/** A backend that interprets a few commands; records what it saw. */
class FakeBackend implements StreamingBackend {
  aborted = 0;
  active = 0;
  async exec(containerId: string, cmd: string[], io: CommandIo, signal: AbortSignal) {
    this.active++;
    try {
      if (containerId === "gone") throw notFound(`container "gone" not found`);
      const [c, arg] = cmd;
      if (c === "outerr") {
        io.stdout?.write("out\n");
        io.stderr?.write("err\n");
        io.stdout?.end();
        io.stderr?.end();
        return { exitCode: Number(arg ?? 0) };
      }
      if (c === "cat" || c === "head") {
        // cat echoes stdin until EOF; head stops after `arg` bytes (for clients that cannot send EOF).
        const limit = c === "head" ? Number(arg) : Infinity;
        let n = 0;
        for await (const chunk of io.stdin!) {
          const b = chunk as Buffer;
          io.stdout!.write(b);
          n += b.length;
          if (n >= limit) break;
        }
        io.stdout!.end();
        return { exitCode: 0 };
      }
      if (c === "resize") {
        const got: TerminalSize[] = [];
        for await (const s of io.resizes!) {
          got.push(s);
          if (got.length === Number(arg)) break;
        }
        io.stdout!.end(JSON.stringify(got));
        return { exitCode: 0 };
      }
      if (c === "sleep") {
        await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
        this.aborted++;
        return { exitCode: 137 };
      }
      throw new Error(`fake: unknown command ${c}`);
    } finally {
      this.active--;
    }
  }
  async attach(_id: string, io: CommandIo) {
    io.stdout?.end("attached\n");
    io.stderr?.end();
    return {};
  }
  async portForward(_podId: string, port: number, conn: Duplex, signal: AbortSignal) {
    if (port === 9999) throw new Error("connection refused");
    await new Promise<void>((resolve) => {
      conn.on("data", (d: Buffer) => conn.write(Buffer.concat([Buffer.from(`${port}:`), d])));
      conn.once("end", () => conn.end(() => resolve()));
      conn.once("close", () => resolve());
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }
}

const execReq = (cmd: string[], o: Partial<{ stdin: boolean; tty: boolean; stderr: boolean }> = {}): StreamingRequest => ({
  kind: "exec",
  containerId: "c1",
  cmd,
  tty: o.tty ?? false,
  stdin: o.stdin ?? false,
  stdout: true,
  stderr: o.stderr ?? !o.tty,
});

const SPDY_VERSIONS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];
const WS_VERSIONS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];

const expectedFailure = {
  metadata: {},
  status: "Failure",
  message: "command terminated with non-zero exit code: error executing command [outerr 7], exit code 7",
  reason: "NonZeroExitCode",
  details: { causes: [{ reason: "ExitCode", message: "7" }] },
};

describe("streaming server", () => {
  const backend = new FakeBackend();
  let server: StreamingServer;
  before(async () => {
    server = new StreamingServer({ backend, log: silentLogger, tokenTtlMs: 400, idleTimeoutMs: 60_000, maxStreams: 50, streamCreationTimeoutMs: 2000 });
    await server.start();
  });
  after(async () => {
    await server.close();
    assert.equal(server.activeCount, 0);
    assert.equal(backend.active, 0);
  });

  test("register returns an http URL on 127.0.0.1 with a fresh token", () => {
    const a = server.register(execReq(["outerr"]));
    const b = server.register(execReq(["outerr"]));
    assert.match(a, new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/exec/[A-Za-z0-9_-]{32}$`));
    assert.notEqual(a, b);
  });

  for (const v of SPDY_VERSIONS) {
    test(`SPDY ${v}: stdout/stderr separated, exit code 7 reported`, async () => {
      const r = await spdyExec(server.register(execReq(["outerr", "7"])), [v], {});
      assert.equal(r.status, 101);
      assert.equal(r.protocol, v);
      assert.equal(r.stdout, "out\n");
      assert.equal(r.stderr, "err\n");
      if (v === "v4.channel.k8s.io") assert.deepEqual(JSON.parse(r.error), expectedFailure);
      else assert.equal(r.error, expectedFailure.message);
    });

    test(`SPDY ${v}: success status, stdin echo`, async () => {
      const payload = "hello stdin ".repeat(10_000); // > 64 KiB both ways: flow control must work
      const r = await spdyExec(server.register(execReq(["cat"], { stdin: true, stderr: false })), [v], { stdin: payload, stderr: false });
      assert.equal(r.stdout, payload);
      if (v === "v4.channel.k8s.io") assert.deepEqual(JSON.parse(r.error), { metadata: {}, status: "Success" });
      else assert.equal(r.error, "");
    });
  }

  test("SPDY: a client without flow control (like spdystream) moves 300 KiB each way", async () => {
    const payload = Buffer.alloc(300 * 1024, "z").toString();
    const r = await spdyExec(server.register(execReq(["cat"], { stdin: true, stderr: false })), ["v4.channel.k8s.io"], { stdin: payload, stderr: false, flowControl: false });
    assert.equal(r.stdout.length, payload.length);
    assert.equal(r.stdout, payload);
    assert.deepEqual(JSON.parse(r.error), { metadata: {}, status: "Success" });
  });

  for (const v of ["v4.channel.k8s.io", "v3.channel.k8s.io"]) {
    test(`SPDY ${v}: resize JSON is delivered with a tty`, async () => {
      const sizes = [{ Width: 80, Height: 24 }, { Width: 120, Height: 40 }];
      const r = await spdyExec(server.register(execReq(["resize", "2"], { tty: true })), [v], { tty: true, resizes: sizes });
      assert.deepEqual(JSON.parse(r.stdout), [{ width: 80, height: 24 }, { width: 120, height: 40 }]);
    });
  }

  test("SPDY: the client's first supported version wins; none supported → 403", async () => {
    const r = await spdyExec(server.register(execReq(["outerr", "0"])), ["v9.channel.k8s.io", "v2.channel.k8s.io", "v4.channel.k8s.io"], {});
    assert.equal(r.protocol, "v2.channel.k8s.io");
    const bad = await spdyConnect(server.register(execReq(["outerr"])), ["v9.channel.k8s.io"]);
    assert.equal(bad.res.status, 403);
    assert.match(bad.res.headers["x-accepted-stream-protocol-versions"] ?? "", /v4\.channel\.k8s\.io/);
  });

  test("SPDY: a backend error becomes an InternalError status naming the container", async () => {
    const req = { ...execReq(["outerr"]), containerId: "gone" } as StreamingRequest;
    const r = await spdyExec(server.register(req), ["v4.channel.k8s.io"], {});
    const st = JSON.parse(r.error);
    assert.equal(st.status, "Failure");
    assert.equal(st.reason, "InternalError");
    assert.match(st.message, /container "gone" not found/);
  });

  test("attach over SPDY", async () => {
    const url = server.register({ kind: "attach", containerId: "c1", tty: false, stdin: false, stdout: true, stderr: true });
    assert.match(url, /\/attach\//);
    const r = await spdyExec(url, ["v4.channel.k8s.io"], {});
    assert.equal(r.stdout, "attached\n");
    assert.deepEqual(JSON.parse(r.error), { metadata: {}, status: "Success" });
  });

  for (const v of WS_VERSIONS) {
    test(`WebSocket ${v}: stdout/stderr separated, exit code 7`, async () => {
      const r = await wsExec(server.register(execReq(["outerr", "7"])), [v], {});
      assert.equal(r.protocol, v);
      assert.equal(r.stdout, "out\n");
      assert.equal(r.stderr, "err\n");
      if (v.startsWith("v4") || v.startsWith("v5")) assert.deepEqual(JSON.parse(r.error), expectedFailure);
      else assert.equal(r.error, expectedFailure.message);
      if (v === "v5.channel.k8s.io") assert.deepEqual(r.closeSignals.sort(), [1, 2]);
    });

    test(`WebSocket ${v}: stdin echo and resize`, async () => {
      const payload = "ping-" + v;
      const cmd = v === "v5.channel.k8s.io" ? ["cat"] : ["head", String(payload.length)];
      const r = await wsExec(server.register(execReq(cmd, { stdin: true })), [v], { stdin: payload });
      assert.equal(r.stdout, payload);
      const rz = await wsExec(server.register(execReq(["resize", "1"], { tty: true })), [v], { tty: true, resizes: [{ Width: 33, Height: 11 }] });
      assert.deepEqual(JSON.parse(rz.stdout), [{ width: 33, height: 11 }]);
    });
  }

  test("WebSocket: unsupported subprotocol is refused", async () => {
    const r = await wsConnect(server.register(execReq(["outerr"])), ["v9.channel.k8s.io"]);
    assert.equal(r.status, 400);
  });

  test("SPDY port-forward: 20 parallel connections through the echoing backend", async () => {
    const { res, client } = await spdyPortForwardSession(server.register({ kind: "portforward", podId: "p1", ports: [] }));
    assert.equal(res.status, 101);
    assert.equal(res.headers["x-stream-protocol-version"], "portforward.k8s.io");
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => spdyForwardOnce(client!, 8000 + i, String(i), `payload-${i}`)));
    results.forEach((r, i) => {
      assert.equal(r.data, `${8000 + i}:payload-${i}`);
      assert.equal(r.error, "");
    });
    const refused = await spdyForwardOnce(client!, 9999, "x", "nope");
    assert.match(refused.error, /error forwarding port 9999 to pod p1: connection refused/);
    await client!.close();
  });

  test("SPDY port-forward: a port not in the stored list is refused on the error stream", async () => {
    const { client } = await spdyPortForwardSession(server.register({ kind: "portforward", podId: "p1", ports: [80] }));
    const r = await spdyForwardOnce(client!, 81, "0", "x");
    assert.match(r.error, /port 81 was not requested/);
    assert.equal(r.data, "");
    await client!.close();
  });

  for (const v of ["portforward.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"]) {
    test(`WebSocket port-forward (${v}): port prefix frames, data and error channels`, async () => {
      const url = server.register({ kind: "portforward", podId: "p1", ports: [] }) + "?ports=7000,7001";
      const r = await wsConnect(url, [v]);
      assert.equal(r.status, 101);
      const ws = r.client!;
      const byCh = new Map<number, Buffer[]>();
      ws.on("message", (m: { data: Buffer }) => {
        const d = wsDecode(ws.protocol, m.data);
        byCh.set(d.ch, [...(byCh.get(d.ch) ?? []), d.data]);
      });
      for (const [i, s] of ["a", "b"].entries()) {
        const e = wsEncode(ws.protocol, 2 * i, Buffer.from(s));
        ws.send(e.data, e.binary);
      }
      const deadline = Date.now() + 5000;
      while ((byCh.get(0)?.length ?? 0) < 2 || (byCh.get(2)?.length ?? 0) < 2) {
        assert.ok(Date.now() < deadline, "timed out waiting for echoes");
        await sleep(20);
      }
      const port0 = byCh.get(0)![0]!;
      assert.equal(port0.readUInt16LE(0), 7000);
      assert.equal(byCh.get(1)![0]!.readUInt16LE(0), 7000);
      assert.equal(byCh.get(3)![0]!.readUInt16LE(0), 7001);
      assert.equal(byCh.get(0)![1]!.toString(), "7000:a");
      assert.equal(byCh.get(2)![1]!.toString(), "7001:b");
      await ws.close();
    });
  }

  test("tokens: reused, expired and made-up tokens all get the same 404", async () => {
    const url = server.register(execReq(["outerr", "0"]));
    const ok = await spdyExec(url, ["v4.channel.k8s.io"], {});
    assert.equal(ok.status, 101);
    const reused = await spdyConnect(url, ["v4.channel.k8s.io"]);
    const expiredUrl = server.register(execReq(["outerr", "0"]));
    await sleep(500);
    const expired = await spdyConnect(expiredUrl, ["v4.channel.k8s.io"]);
    const madeUp = await spdyConnect(url.replace(/[^/]+$/, "A".repeat(32)), ["v4.channel.k8s.io"]);
    const wrongKind = await wsConnect(server.register(execReq(["outerr"])).replace("/exec/", "/attach/"), ["v5.channel.k8s.io"]);
    for (const r of [reused.res, expired.res, madeUp.res, { status: wrongKind.status, body: wrongKind.body }]) {
      assert.equal(r.status, 404);
      assert.equal(r.body, "404 page not found\n");
    }
  });

  test("a plain GET (no upgrade) is refused with 400", async () => {
    const res = await fetch(server.register(execReq(["outerr"])));
    assert.equal(res.status, 400);
  });
});

describe("streaming server limits", () => {
  test("concurrent connections above maxStreams get 429; idle connections are closed", async () => {
    const backend = new FakeBackend();
    const server = new StreamingServer({ backend, log: silentLogger, maxStreams: 1, idleTimeoutMs: 600 });
    await server.start();
    try {
      const first = spdyExec(server.register(execReq(["sleep"])), ["v4.channel.k8s.io"], {});
      const deadline = Date.now() + 3000;
      while (backend.active === 0) {
        assert.ok(Date.now() < deadline);
        await sleep(10);
      }
      const url2 = server.register(execReq(["outerr", "0"]));
      const second = await spdyConnect(url2, ["v4.channel.k8s.io"]);
      assert.equal(second.res.status, 429);
      // The idle timeout ends the sleeping command: its signal aborts.
      await first.catch(() => undefined);
      while (backend.aborted === 0) {
        assert.ok(Date.now() < deadline + 3000, "idle timeout did not abort the command");
        await sleep(20);
      }
      // The refused client kept its token and can retry now.
      const retry = await spdyExec(url2, ["v4.channel.k8s.io"], {});
      assert.equal(retry.stdout, "out\n");
    } finally {
      await server.close();
    }
    assert.equal(server.activeCount, 0);
  });

  test("close() aborts running commands, is idempotent, and register fails afterwards", async () => {
    const backend = new FakeBackend();
    const server = new StreamingServer({ backend, log: silentLogger });
    await server.start();
    const running = wsExec(server.register(execReq(["sleep"])), ["v5.channel.k8s.io"], {});
    const deadline = Date.now() + 3000;
    while (backend.active === 0) {
      assert.ok(Date.now() < deadline);
      await sleep(10);
    }
    await Promise.all([server.close(), server.close()]);
    assert.equal(backend.aborted, 1);
    await running;
    assert.throws(() => server.register(execReq(["outerr"])), (e: Error & { code?: string }) => e.code === "failed_precondition");
  });

  test("a client that vanishes or sends garbage aborts the command and leaves the server serving", async () => {
    const backend = new FakeBackend();
    const server = new StreamingServer({ backend, log: silentLogger });
    await server.start();
    try {
      const { client } = await spdyConnect(server.register(execReq(["sleep"])), ["v4.channel.k8s.io"]);
      await client!.openStream({ streamtype: "error" });
      await client!.openStream({ streamtype: "stdout" });
      await client!.openStream({ streamtype: "stderr" });
      const deadline = Date.now() + 3000;
      while (backend.active === 0) {
        assert.ok(Date.now() < deadline);
        await sleep(10);
      }
      client!.socket.resetAndDestroy();
      while (backend.aborted === 0) {
        assert.ok(Date.now() < deadline, "reset did not abort the command");
        await sleep(10);
      }
      const bad = await spdyConnect(server.register(execReq(["sleep"])), ["v4.channel.k8s.io"]);
      let goaway = false;
      bad.client!.on("goaway", () => (goaway = true));
      bad.client!.rawWrite(Buffer.from("800200010000000400000001", "hex")); // a SPDY/2 frame
      await bad.client!.closedP;
      assert.equal(goaway, true);
      const ok = await spdyExec(server.register(execReq(["outerr", "0"])), ["v4.channel.k8s.io"], {});
      assert.equal(ok.stdout, "out\n");
      while (server.activeCount > 0) {
        assert.ok(Date.now() < deadline + 3000);
        await sleep(10);
      }
    } finally {
      await server.close();
    }
  });

  test("bad options are InvalidArgument", () => {
    assert.throws(() => new StreamingServer({ backend: new FakeBackend(), log: silentLogger, port: 70000 }), /invalid port 70000/);
    assert.throws(() => new StreamingServer({ backend: new FakeBackend(), log: silentLogger, maxStreams: 0 }), /invalid maxStreams/);
  });
});
