/**
 * CriServer against an independent gRPC client (@grpc/grpc-js with the .proto loaded at test
 * time), standing in for kubelet: real unix socket in a temp dir, closed and removed in t.after.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { call, detailsOf, rejectsWith, RuntimeClient, ImageClient } from "./cri-client.js";
import { notFound } from "../../src/errors.js";
import { silentLogger, createLogger } from "../../src/log.js";
import { CriServer, type ImageServiceImpl, type RuntimeServiceImpl } from "../../src/cri/server.js";
import { version } from "../../src/cri/version.js";
import { status } from "../../src/cri/status.js";

const logger = process.env.SKIFF_TEST_LOG ? createLogger(process.env.SKIFF_TEST_LOG) : silentLogger;
const MiB = 1024 * 1024;
const PYTHON_CLIENT = path.resolve(import.meta.dirname, "../clients/grpc-python-call.py");

interface Fixture {
  server: CriServer;
  socket: string;
  runtime: grpc.Client;
  image: grpc.Client;
}

async function start(
  t: TestContext,
  handlers: { runtime?: Partial<RuntimeServiceImpl>; image?: Partial<ImageServiceImpl>; drainTimeoutMs?: number },
): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cri-"));
  const socket = path.join(dir, "cri.sock");
  const server = new CriServer({
    socket,
    runtime: handlers.runtime ?? {},
    image: handlers.image ?? {},
    log: logger,
    ...(handlers.drainTimeoutMs !== undefined ? { drainTimeoutMs: handlers.drainTimeoutMs } : {}),
  });
  const opts = { "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 };
  const runtime = new RuntimeClient(`unix:${socket}`, grpc.credentials.createInsecure(), opts);
  const image = new ImageClient(`unix:${socket}`, grpc.credentials.createInsecure(), opts);
  t.after(async () => {
    runtime.close();
    image.close();
    await server.close();
    await assert.rejects(access(socket), { code: "ENOENT" }, "socket removed on close");
    await rm(dir, { recursive: true, force: true });
  });
  await server.listen();
  return { server, socket, runtime, image };
}

test("Version and Status answer; the socket has mode 0660", async (t) => {
  const f = await start(t, { runtime: { version, status } });

  const v = await call(f.runtime, "Version", { version: "v1" });
  assert.deepEqual(v, { version: "0.1.0", runtime_name: "skiff", runtime_version: "0.1.0", runtime_api_version: "v1" });

  const s = await call(f.runtime, "Status", { verbose: true });
  assert.deepEqual(s.status.conditions, [
    { type: "RuntimeReady", status: true, reason: "", message: "" },
    { type: "NetworkReady", status: false, reason: "NetworkPluginNotReady", message: "CNI is not configured yet" },
  ]);
  assert.deepEqual(s.info, {});

  assert.equal((await stat(f.socket)).mode & 0o777, 0o660);
  assert.equal(f.server.metrics.get("runtime.v1.RuntimeService/Version").calls, 1);
});

test("RPCs without a handler answer UNIMPLEMENTED naming the RPC; SkiffErrors keep their code", async (t) => {
  const f = await start(t, {
    runtime: {
      containerStatus: (req) => {
        throw notFound(`container "${req.containerId}" not found`);
      },
    },
  });

  await rejectsWith(call(f.runtime, "ExecSync", { container_id: "c" }), grpc.status.UNIMPLEMENTED, /ExecSync/);
  await rejectsWith(call(f.image, "PullImage", {}), grpc.status.UNIMPLEMENTED, /^runtime\.v1\.ImageService\.PullImage is not implemented$/);
  await rejectsWith(call(f.runtime, "ContainerStatus", { container_id: "x" }), grpc.status.NOT_FOUND, /^container "x" not found$/);

  // A server-streaming RPC goes through the same path.
  const stream = (f.runtime as any).GetContainerEvents({}) as grpc.ClientReadableStream<unknown>;
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    stream.on("data", () => {});
    stream.on("error", resolve);
  });
  assert.equal(err.code, grpc.status.UNIMPLEMENTED);
  assert.match(err.details, /GetContainerEvents/);

  const counts = f.server.metrics.get("runtime.v1.RuntimeService/ContainerStatus");
  assert.deepEqual(counts, { calls: 1, errors: 1, codes: { NotFound: 1 } });
});

test("a 15 MiB request goes through, a 17 MiB one is RESOURCE_EXHAUSTED", async (t) => {
  const f = await start(t, {
    image: {
      imageStatus: (req) => ({ info: { length: String(req.image?.image.length ?? 0) } }),
    },
  });

  const ok = await call(f.image, "ImageStatus", { image: { image: "x".repeat(15 * MiB) } });
  assert.equal(ok.info.length, String(15 * MiB));
  assert.equal(ok.image, null, "no image in the answer");

  await rejectsWith(call(f.image, "ImageStatus", { image: { image: "x".repeat(17 * MiB) } }), grpc.status.RESOURCE_EXHAUSTED);

  // The server still serves after refusing a large message.
  const again = await call(f.image, "ImageStatus", { image: { image: "small" } });
  assert.equal(again.info.length, "5");
});

test("close() lets an in-flight call finish, then stops", async (t) => {
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const f = await start(t, {
    runtime: {
      version,
      async podSandboxStatus(req) {
        entered();
        await released;
        return { status: { id: req.podSandboxId } };
      },
    },
  });

  const slow = call(f.runtime, "PodSandboxStatus", { pod_sandbox_id: "p1" });
  await inHandler;
  let closed = false;
  const closing = f.server.close().then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(closed, false, "close waits for the in-flight call");
  release();

  const res = await slow;
  assert.equal(res.status.id, "p1");
  await closing;
  await assert.rejects(access(f.socket), { code: "ENOENT" });
  assert.equal(await f.server.close(), undefined, "close is idempotent");

  // A new client cannot reach the closed server.
  const late = new RuntimeClient(`unix:${f.socket}`, grpc.credentials.createInsecure());
  t.after(() => late.close());
  await rejectsWith(
    new Promise((resolve, reject) =>
      (late as any).Version({}, { deadline: Date.now() + 2000 }, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))),
    ),
    grpc.status.UNAVAILABLE,
  );
});

test("close() cuts off calls that outlast the drain timeout", async (t) => {
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  const f = await start(t, {
    drainTimeoutMs: 300,
    runtime: {
      async podSandboxStatus(_req, ctx) {
        entered();
        await new Promise((r) => ctx.signal.addEventListener("abort", r, { once: true }));
        return {};
      },
    },
  });

  const hung = call(f.runtime, "PodSandboxStatus", { pod_sandbox_id: "p1" });
  const failed = assert.rejects(hung, (err: grpc.ServiceError) => err.code !== grpc.status.OK);
  await inHandler;
  const t0 = Date.now();
  await f.server.close();
  assert.ok(Date.now() - t0 < 2000, "close is bounded");
  await failed;
});

test("a stale socket is replaced, a live one is refused", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cri-stale-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A server killed with SIGKILL leaves its socket file behind.
  const stale = path.join(dir, "stale.sock");
  const child = spawn(process.execPath, [
    "-e",
    `require("net").createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, "SIGKILL"))`,
  ]);
  await new Promise((r) => child.once("exit", r));
  assert.ok((await stat(stale)).isSocket(), "stale socket left behind");
  const revived = new CriServer({ socket: stale, runtime: { version }, image: {}, log: logger });
  await revived.listen();
  await revived.close();
  await assert.rejects(access(stale), { code: "ENOENT" });

  const f = await start(t, { runtime: { version } });
  const other = new CriServer({ socket: f.socket, runtime: {}, image: {}, log: logger });
  await assert.rejects(other.listen(), /in use/);
  assert.equal((await call(f.runtime, "Version", {})).runtime_name, "skiff", "first server untouched");
});

test("any :authority works: grpc-js sending the socket path, an empty one, a host:port; a raw HTTP/2 client sending the path", async (t) => {
  const f = await start(t, { runtime: { version } });
  // grpc-go before 1.51, grpc-java and grpc C-core send the socket path as :authority.
  for (const authority of [f.socket, "", "localhost", "example.com:1234", "unix:///run/skiff/skiff.sock"]) {
    const c = new RuntimeClient(`unix:${f.socket}`, grpc.credentials.createInsecure(), { "grpc.default_authority": authority });
    t.after(() => c.close());
    const v = await call(c, "Version", {});
    assert.equal(v.runtime_name, "skiff", `authority ${JSON.stringify(authority)}`);
    // A second call on the same connection refers to the authority through HPACK's dynamic table.
    assert.equal((await call(c, "Version", {})).runtime_name, "skiff");
  }

  // A raw HTTP/2 request with the path, framed by hand as gRPC: 5-byte prefix + empty message.
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(f.socket) });
  t.after(() => void session.close());
  const res = await rawGrpc(session, "/runtime.v1.RuntimeService/Version", { ":authority": f.socket });
  assert.equal(res.rst, 0, "stream not reset");
  assert.equal(res.headers[":status"], 200);
  assert.equal(res.trailers["grpc-status"], "0");
  assert.ok(res.body.includes("skiff"), "the VersionResponse names the runtime");
});

test("an unknown service or method answers HTTP 200 with grpc-status 12 naming it, as gRPC servers do", async (t) => {
  const f = await start(t, { runtime: { version } });
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(f.socket) });
  t.after(() => void session.close());
  const cases: [string, RegExp][] = [
    ["/containerd.services.version.v1.Version/Version", /unknown service containerd\.services\.version\.v1\.Version \(method Version\)/],
    ["/runtime.v1.RuntimeService/UpdatePodSandboxResourcesFromTheFuture", /unknown method UpdatePodSandboxResourcesFromTheFuture for service runtime\.v1\.RuntimeService/],
  ];
  for (const [method, message] of cases) {
    const res = await rawGrpc(session, method, {});
    assert.equal(res.headers[":status"], 200, method);
    assert.match(String(res.headers["content-type"]), /^application\/grpc/);
    // Trailers-only: the status comes in the one HEADERS frame that ends the stream.
    assert.equal(res.headers["grpc-status"], "12", method);
    assert.match(decodeURIComponent(String(res.headers["grpc-message"])), message);
  }
  // What a grpc-js client sees.
  const c = new grpc.Client(`unix:${f.socket}`, grpc.credentials.createInsecure());
  t.after(() => c.close());
  const err = await new Promise<grpc.ServiceError>((resolve) =>
    c.makeUnaryRequest("/containerd.services.version.v1.Version/Version", (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e!)),
  );
  assert.equal(err.code, grpc.status.UNIMPLEMENTED);
  assert.match(detailsOf(err), /containerd\.services\.version\.v1\.Version/);
  // A request that is not gRPC at all.
  const plain = await rawGrpc(session, "/", { "content-type": "text/plain" });
  assert.equal(plain.headers[":status"], 415);
  // The server still serves.
  assert.equal((await call(f.runtime, "Version", {})).runtime_name, "skiff");
});

interface RawReply {
  rst: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: string;
}

/** One gRPC call with an empty request message over a raw HTTP/2 session. */
function rawGrpc(session: http2.ClientHttp2Session, method: string, extra: http2.OutgoingHttpHeaders): Promise<RawReply> {
  return new Promise((resolve) => {
    const r = session.request({ ":method": "POST", ":path": method, "content-type": "application/grpc", te: "trailers", ...extra });
    const out: RawReply = { rst: 0, headers: {}, trailers: {}, body: "" };
    r.on("response", (h) => (out.headers = h));
    r.on("trailers", (h) => (out.trailers = h));
    r.on("data", (d: Buffer) => (out.body += d.toString("latin1")));
    r.on("error", () => {});
    r.on("close", () => resolve({ ...out, rst: r.rstCode ?? 0 }));
    r.end(Buffer.alloc(5));
  });
}

test("gRPC C-core (Debian's python3-grpcio) calls Version with its own, the path and an empty :authority; an unknown method is UNIMPLEMENTED", async (t) => {
  const f = await start(t, { runtime: { version } });
  const py = (method: string, authority?: string) =>
    new Promise<{ code: number; details: string; response: string }>((resolve, reject) => {
      const args = [PYTHON_CLIENT, f.socket, method, ...(authority !== undefined ? [authority] : [])];
      const child = spawn("/usr/bin/python3", args, { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`python client exited ${code}: ${out}`))));
    });
  for (const authority of [undefined, f.socket, ""]) {
    const r = await py("/runtime.v1.RuntimeService/Version", authority);
    assert.equal(r.code, 0, `authority ${JSON.stringify(authority)}: ${r.details}`);
    assert.ok(r.response.includes("skiff"), "the VersionResponse names the runtime");
  }
  const unknown = await py("/containerd.services.version.v1.Version/Version", f.socket);
  assert.equal(unknown.code, grpc.status.UNIMPLEMENTED);
  assert.match(unknown.details, /containerd\.services\.version\.v1\.Version/);
});
