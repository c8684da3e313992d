import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { ErrorCode, SkiffError, invalidArgument, notFound } from "../errors.js";
import { RuntimeService } from "../gen/runtime/v1/api_pb.js";
import { silentLogger } from "../log.js";
import { RpcMetrics, instrumentService, requestIds, toConnectError } from "./instrument.js";

test("toConnectError maps SkiffErrors by code and keeps the message", () => {
  const e = toConnectError(notFound('container "x" not found'));
  assert.ok(e instanceof ConnectError);
  assert.equal(e.code, Code.NotFound);
  assert.equal(e.rawMessage, 'container "x" not found');

  for (const code of Object.values(ErrorCode)) {
    if (code === ErrorCode.Unknown) continue;
    const mapped = toConnectError(new SkiffError(code, "m")).code;
    assert.equal(Code[mapped]?.toLowerCase(), code.replace(/_/g, ""), code);
  }
  assert.equal(toConnectError(new SkiffError(ErrorCode.Unknown, "u")).code, Code.Unknown);
});

test("toConnectError follows cause chains and turns everything else into Internal", () => {
  const wrapped = new Error("starting container: lookup failed", { cause: invalidArgument("bad id") });
  const e1 = toConnectError(wrapped);
  assert.equal(e1.code, Code.InvalidArgument);
  assert.equal(e1.rawMessage, "starting container: lookup failed");

  assert.equal(toConnectError(new TypeError("oops")).code, Code.Internal);
  assert.equal(toConnectError("a string").code, Code.Internal);
  assert.equal(toConnectError(undefined).code, Code.Internal);
  // A foreign ConnectError is not trusted to carry a meaningful code.
  assert.equal(toConnectError(new ConnectError("x", Code.NotFound)).code, Code.Internal);
  assert.equal(toConnectError(new DOMException("t", "TimeoutError")).code, Code.DeadlineExceeded);
});

test("requestIds picks sandbox, container and image ids and clips long values", () => {
  assert.deepEqual(requestIds({ podSandboxId: "p1", containerId: "", image: { image: "busybox" } }), {
    pod_sandbox_id: "p1",
    image: "busybox",
  });
  assert.deepEqual(requestIds({ containerId: "c1" }), { container_id: "c1" });
  assert.ok(requestIds({ containerId: "x".repeat(10_000) }).container_id!.length < 300);
  assert.deepEqual(requestIds(undefined), {});
});

const ctx = { signal: new AbortController().signal } as HandlerContext;

test("instrumentService wraps every method, counts calls and errors, answers Unimplemented", async () => {
  const metrics = new RpcMetrics();
  const impl = instrumentService(
    RuntimeService,
    {
      version: () => ({ runtimeName: "skiff" }),
      containerStatus: () => {
        throw notFound('container "x" not found');
      },
    },
    { log: silentLogger, metrics },
  );
  assert.equal(Object.keys(impl).length, RuntimeService.methods.length);

  assert.deepEqual(await impl.version!({}, ctx), { runtimeName: "skiff" });
  await assert.rejects(Promise.resolve(impl.containerStatus!({ containerId: "x" }, ctx)), (e: unknown) => {
    assert.ok(e instanceof ConnectError);
    assert.equal(e.code, Code.NotFound);
    return true;
  });
  await assert.rejects(Promise.resolve(impl.execSync!({}, ctx)), (e: unknown) => {
    assert.ok(e instanceof ConnectError);
    assert.equal(e.code, Code.Unimplemented);
    assert.match(e.rawMessage, /runtime\.v1\.RuntimeService\.ExecSync/);
    return true;
  });

  assert.deepEqual(metrics.get("runtime.v1.RuntimeService/Version"), { calls: 1, errors: 0, codes: { OK: 1 } });
  assert.deepEqual(metrics.get("runtime.v1.RuntimeService/ContainerStatus"), { calls: 1, errors: 1, codes: { NotFound: 1 } });
  assert.equal(metrics.snapshot()["runtime.v1.RuntimeService/ExecSync"]?.errors, 1);
});

test("instrumentService maps errors thrown while a server stream runs", async () => {
  const metrics = new RpcMetrics();
  const impl = instrumentService(
    RuntimeService,
    {
      async *getContainerEvents() {
        yield { containerId: "a" };
        throw new Error("event source broke");
      },
    },
    { log: silentLogger, metrics },
  );
  const seen: unknown[] = [];
  await assert.rejects(
    (async () => {
      for await (const ev of impl.getContainerEvents!({}, ctx) as AsyncIterable<unknown>) seen.push(ev);
    })(),
    (e: unknown) => e instanceof ConnectError && e.code === Code.Internal && e.rawMessage === "event source broke",
  );
  assert.deepEqual(seen, [{ containerId: "a" }]);
  assert.deepEqual(metrics.get("runtime.v1.RuntimeService/GetContainerEvents"), { calls: 1, errors: 1, codes: { Internal: 1 } });

  // A consumer that stops early (client went away) is counted as Canceled.
  const impl2 = instrumentService(
    RuntimeService,
    {
      async *getContainerEvents() {
        for (;;) yield { containerId: "b" };
      },
    },
    { log: silentLogger, metrics },
  );
  for await (const _ of impl2.getContainerEvents!({}, ctx) as AsyncIterable<unknown>) break;
  assert.deepEqual(metrics.get("runtime.v1.RuntimeService/GetContainerEvents").codes, { Internal: 1, Canceled: 1 });
});
