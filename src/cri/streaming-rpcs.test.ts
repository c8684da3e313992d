import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { AttachRequestSchema, ExecRequestSchema, PortForwardRequestSchema } from "../gen/runtime/v1/api_pb.js";
import { isFailedPrecondition, isInvalidArgument, isNotFound, isUnavailable } from "../errors.js";
import type { StreamingRequest, StreamingUrls } from "../streaming/types.js";
import { checkStreams, streamingServiceImpl } from "./streaming-rpcs.js";
import type { ContainerService } from "./ctrs.js";
import type { PodService } from "./pods.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

const RUN = "a".repeat(64);
const EXITED = "b".repeat(64);
const WITH_STDIN = "c".repeat(64);
const POD = "d".repeat(64);
const NOTREADY = "e".repeat(64);

const ctrs = new Map<string, Partial<ContainerRecord>>([
  [RUN, { id: RUN, state: "running", stdin: false, tty: false }],
  [EXITED, { id: EXITED, state: "exited", stdin: false, tty: false }],
  [WITH_STDIN, { id: WITH_STDIN, state: "running", stdin: true, tty: true }],
]);
const pods = new Map<string, Partial<SandboxRecord>>([
  [POD, { id: POD, state: "ready" }],
  [NOTREADY, { id: NOTREADY, state: "notready" }],
]);
const fakeCtrs = { docs: { find: (id: string) => ctrs.get(id) }, list: () => [...ctrs.values()] } as unknown as ContainerService;
const fakePods = { docs: { find: (id: string) => pods.get(id), list: () => [...pods.values()] } } as unknown as PodService;

function setup(withServer = true) {
  const registered: StreamingRequest[] = [];
  const urls: StreamingUrls = {
    register(req) {
      registered.push(req);
      return `http://127.0.0.1:1234/${req.kind}/token${registered.length}`;
    },
  };
  const impl = streamingServiceImpl(fakePods, fakeCtrs, () => (withServer ? urls : undefined));
  const ctx = {} as HandlerContext;
  return {
    registered,
    exec: async (o: object) => impl.exec!(create(ExecRequestSchema, o), ctx),
    attach: async (o: object) => impl.attach!(create(AttachRequestSchema, o), ctx),
    portForward: async (o: object) => impl.portForward!(create(PortForwardRequestSchema, o), ctx),
  };
}

const rejects = (p: Promise<unknown>, pred: (e: unknown) => boolean, re: RegExp) =>
  assert.rejects(p, (e: Error) => pred(e) && re.test(e.message), String(re));

test("checkStreams: at least one stream; tty and stderr exclude each other", () => {
  assert.throws(() => checkStreams({ stdin: false, stdout: false, stderr: false, tty: false }, "exec x"), (e: Error) => isInvalidArgument(e) && /exec x/.test(e.message));
  assert.throws(() => checkStreams({ stdin: false, stdout: true, stderr: true, tty: true }, "exec x"), (e: Error) => isInvalidArgument(e) && /tty and stderr/.test(e.message));
  checkStreams({ stdin: true, stdout: false, stderr: false, tty: true }, "exec x");
  checkStreams({ stdin: false, stdout: true, stderr: true, tty: false }, "exec x");
});

test("Exec: registers the request and returns the server's URL; bad requests are refused naming the container", async () => {
  const s = setup();
  const r = await s.exec({ containerId: RUN, cmd: ["sh", "-c", "true"], stdout: true, stderr: true });
  assert.equal(r.url, "http://127.0.0.1:1234/exec/token1");
  assert.deepEqual(s.registered, [{ kind: "exec", containerId: RUN, cmd: ["sh", "-c", "true"], tty: false, stdin: false, stdout: true, stderr: true }]);
  await rejects(s.exec({ containerId: RUN, cmd: [], stdout: true }), isInvalidArgument, new RegExp(`${RUN}.*cmd is empty`));
  await rejects(s.exec({ containerId: RUN, cmd: ["ls"] }), isInvalidArgument, /one of stdin, stdout and stderr/);
  await rejects(s.exec({ containerId: RUN, cmd: ["ls"], tty: true, stdout: true, stderr: true }), isInvalidArgument, /tty and stderr/);
  await rejects(s.exec({ containerId: "f".repeat(64), cmd: ["ls"], stdout: true }), isNotFound, /container "f{64}" not found/);
  await rejects(s.exec({ containerId: EXITED, cmd: ["ls"], stdout: true }), isFailedPrecondition, new RegExp(`${EXITED}" is EXITED`));
  await rejects(s.exec({ containerId: "", cmd: ["ls"], stdout: true }), isInvalidArgument, /id is empty/);
  assert.equal(s.registered.length, 1, "nothing registered for refused requests");
  // A unique prefix names the container; the registered request carries the full id.
  await s.exec({ containerId: RUN.slice(0, 6), cmd: ["ls"], stdout: true });
  assert.equal((s.registered[1] as { containerId: string }).containerId, RUN);
});

test("Attach: stdin only on containers created with it, tty only on tty containers", async () => {
  const s = setup();
  assert.equal((await s.attach({ containerId: WITH_STDIN, stdin: true, stdout: true, tty: true })).url, "http://127.0.0.1:1234/attach/token1");
  assert.deepEqual(s.registered[0], { kind: "attach", containerId: WITH_STDIN, tty: true, stdin: true, stdout: true, stderr: false });
  await rejects(s.attach({ containerId: RUN, stdin: true, stdout: true }), isFailedPrecondition, new RegExp(`${RUN}.*not created with stdin`));
  await rejects(s.attach({ containerId: RUN, stdout: true, tty: true }), isFailedPrecondition, /no terminal/);
  await rejects(s.attach({ containerId: EXITED, stdout: true }), isFailedPrecondition, /EXITED/);
  await rejects(s.attach({ containerId: RUN }), isInvalidArgument, /one of stdin/);
});

test("PortForward: ready pods only, ports in range; no streaming server is Unavailable", async () => {
  const s = setup();
  assert.equal((await s.portForward({ podSandboxId: POD, port: [80, 8080] })).url, "http://127.0.0.1:1234/portforward/token1");
  assert.deepEqual(s.registered[0], { kind: "portforward", podId: POD, ports: [80, 8080] });
  await rejects(s.portForward({ podSandboxId: NOTREADY, port: [80] }), isFailedPrecondition, new RegExp(`${NOTREADY}" is not ready`));
  await rejects(s.portForward({ podSandboxId: "9".repeat(64), port: [80] }), isNotFound, /pod sandbox "9{64}" not found/);
  await rejects(s.portForward({ podSandboxId: POD, port: [0] }), isInvalidArgument, /port 0/);
  await rejects(s.portForward({ podSandboxId: POD, port: [70000] }), isInvalidArgument, /port 70000/);
  await s.portForward({ podSandboxId: POD.slice(0, 5), port: [] });
  assert.deepEqual(s.registered[1], { kind: "portforward", podId: POD, ports: [] });
  await rejects(setup(false).portForward({ podSandboxId: POD, port: [80] }), isUnavailable, /streaming server/);
});
