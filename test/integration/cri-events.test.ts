/**
 * GetContainerEvents through the CRI socket: two subscribers both see the whole lifecycle of a pod
 * and its container, in order and with statuses; a third that never reads neither stalls them nor
 * the RPCs, and is dropped (its stream reset with ENHANCE_YOUR_CALM: RESOURCE_EXHAUSTED in gRPC).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon, noteShims, type Env } from "./harness.js";
import { call, criClients, type Reply } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import type { RpcMetrics } from "../../src/cri/instrument.js";

interface Subscriber {
  events: Reply[];
  error: grpc.ServiceError | undefined;
  stream: grpc.ClientReadableStream<Reply>;
}

/** A GetContainerEvents call, collecting what it receives. */
function subscribe(runtime: grpc.Client): Subscriber {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const stream = (runtime as any).GetContainerEvents({}) as grpc.ClientReadableStream<Reply>;
  const sub: Subscriber = { events: [], error: undefined, stream };
  stream.on("error", (err: grpc.ServiceError) => (sub.error = err));
  stream.on("data", (ev: Reply) => sub.events.push(ev));
  return sub;
}

/**
 * A subscriber that does not read: a raw HTTP/2 gRPC call left paused, so flow control pushes
 * back on the server (grpc-js buffers unread messages without limit, so it cannot stand in).
 */
function stuckSubscriber(socket: string) {
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) });
  session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": "/runtime.v1.RuntimeService/GetContainerEvents",
    "content-type": "application/grpc",
    te: "trailers",
  });
  req.on("error", () => {});
  // One empty, uncompressed GetEventsRequest: flag 0, length 0.
  req.end(Buffer.alloc(5));
  req.pause();
  const out = { rstCode: undefined as number | undefined };
  req.on("close", () => (out.rstCode = req.rstCode));
  return {
    out,
    close() {
      req.close();
      session.close();
    },
  };
}

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until the daemon counts `n` subscribers (grpc-js starts calls lazily). */
const subscribers = (d: Daemon, n: number) => until(`${n} subscribers`, () => d.cri.ctrs.events.subscribers === n);

/** One pod with one container through its whole lifecycle; returns [podId, containerId]. */
async function lifecycle(env: Env, d: Daemon, runtime: grpc.Client, name: string, annotations: Record<string, string> = {}) {
  const logDir = path.join(env.dir, "logs", name);
  await mkdir(logDir, { recursive: true });
  const config = podConfig(name, logDir, { annotations: { note: "test", ...annotations } });
  const { pod_sandbox_id: pod } = await call(runtime, "RunPodSandbox", { config });
  noteShims(env, d);
  const { container_id: ctr } = await call(runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: ctrConfig("app", ["sh", "-c", "exit 4"]),
    sandbox_config: config,
  });
  await call(runtime, "StartContainer", { container_id: ctr });
  await waitState(runtime, ctr, "CONTAINER_EXITED");
  await call(runtime, "RemoveContainer", { container_id: ctr });
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  return [pod as string, ctr as string] as const;
}

const brief = (ev: Reply) => [ev.container_id, ev.container_event_type];

function expectedSequence(pod: string, ctr: string) {
  return [
    [pod, "CONTAINER_CREATED_EVENT"],
    [pod, "CONTAINER_STARTED_EVENT"],
    [ctr, "CONTAINER_CREATED_EVENT"],
    [ctr, "CONTAINER_STARTED_EVENT"],
    [ctr, "CONTAINER_STOPPED_EVENT"],
    [ctr, "CONTAINER_DELETED_EVENT"],
    [pod, "CONTAINER_STOPPED_EVENT"],
    [pod, "CONTAINER_DELETED_EVENT"],
  ];
}

test("GetContainerEvents: every subscriber sees the pod lifecycle with statuses; a stuck one is dropped without stalling anything", { timeout: 180_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  env.cfg.cri.containerEventsQueue = 4;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  const subs: Subscriber[] = [];
  let stuck: ReturnType<typeof stuckSubscriber> | undefined;
  t.after(async () => {
    for (const s of subs) s.stream.cancel();
    stuck?.close();
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });

  const a = subscribe(runtime);
  const b = subscribe(runtime);
  subs.push(a, b);
  await subscribers(d, 2);

  const [pod, ctr] = await lifecycle(env, d, runtime, "ev1");
  const want = expectedSequence(pod, ctr);
  for (const s of [a, b]) {
    await until("the full sequence", () => s.events.length >= want.length);
    assert.deepEqual(s.events.map(brief), want);
    assert.equal(s.error, undefined);
  }
  const ev = a.events;
  for (const e of ev) assert.ok(BigInt(e.created_at) > 0n);
  // Statuses as they are right after each change.
  assert.equal(ev[0]!.pod_sandbox_status.id, pod);
  assert.equal(ev[1]!.pod_sandbox_status.state, "SANDBOX_READY");
  assert.deepEqual(ev[1]!.containers_statuses, []);
  assert.equal(ev[2]!.containers_statuses[0].state, "CONTAINER_CREATED");
  assert.equal(ev[3]!.containers_statuses[0].state, "CONTAINER_RUNNING");
  assert.equal(ev[4]!.containers_statuses[0].state, "CONTAINER_EXITED");
  assert.equal(ev[4]!.containers_statuses[0].exit_code, 4);
  assert.deepEqual(ev[5]!.containers_statuses, [], "a deleted container is no longer among the pod's");
  assert.equal(ev[6]!.pod_sandbox_status.state, "SANDBOX_NOTREADY");
  assert.equal(ev[7]!.pod_sandbox_status.id, pod);
  assert.deepEqual(
    ev.map((e) => BigInt(e.created_at)),
    ev.map((e) => BigInt(e.created_at)).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)),
    "in time order",
  );

  // A subscriber that never reads. Large annotations (in every event's pod status) fill the
  // HTTP/2 window and the server's write buffer quickly; then its queue on the daemon (4 here)
  // fills and it is dropped.
  stuck = stuckSubscriber(env.cfg.socket);
  await subscribers(d, 3);
  const big = { blob: "x".repeat(32 * 1024) };
  const before = a.events.length;
  const ids: (readonly [string, string])[] = [];
  const rounds = 4;
  for (let i = 0; i < rounds; i++) {
    const t0 = Date.now();
    ids.push(await lifecycle(env, d, runtime, `ev-stuck-${i}`, big));
    assert.ok(Date.now() - t0 < 60_000, "a lifecycle is not held up by the stuck subscriber");
  }
  for (const s of [a, b]) {
    await until("all lifecycles", () => s.events.length >= before + rounds * 8);
    assert.deepEqual(s.events.slice(before).map(brief), ids.flatMap(([p, c]) => expectedSequence(p, c)));
    assert.equal(s.error, undefined);
  }
  await subscribers(d, 2);
  assert.equal((await call(runtime, "Version", {})).runtime_name, "skiff", "RPCs still answer");

  // Its stream is reset at once (no status can pass the data it does not read): ENHANCE_YOUR_CALM,
  // which gRPC clients report as RESOURCE_EXHAUSTED; the daemon's handler has ended with it.
  await until("the stuck stream to be reset", () => stuck!.out.rstCode !== undefined);
  assert.equal(stuck.out.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  const metrics = (d as unknown as { criServer: { metrics: RpcMetrics } }).criServer.metrics;
  const calls = () => metrics.get("runtime.v1.RuntimeService/GetContainerEvents").codes;
  await until("the handler to end", () => calls().ResourceExhausted === 1);
});

test("GetContainerEvents: a daemon shutdown ends the streams (OK) instead of holding up the drain", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env), []);
  });
  const s = subscribe(runtime);
  let ended = false;
  s.stream.on("end", () => (ended = true));
  await subscribers(d, 1);
  const t0 = Date.now();
  await d.close();
  assert.ok(Date.now() - t0 < 8_000, `close took ${Date.now() - t0} ms`);
  await until("the stream to end", () => ended || s.error !== undefined);
  assert.equal(s.error, undefined);
});
