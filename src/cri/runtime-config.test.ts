import { test } from "node:test";
import assert from "node:assert/strict";
import type { HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  CgroupDriver,
  RuntimeConfigRequestSchema,
  StatusRequestSchema,
  UpdateRuntimeConfigRequestSchema,
  type RuntimeConfigResponse,
  type StatusResponse,
} from "../gen/runtime/v1/api_pb.js";
import { configFromObject, defaultConfig } from "../config.js";
import { isInvalidArgument } from "../errors.js";
import { silentLogger } from "../log.js";
import { ContainerEvents } from "./container-events.js";
import { parsePodCidrs, runtimeConfigRpcs, RuntimeNetworkState } from "./runtime-config.js";
import { runtimeHandlers, runtimeHandlersToProto } from "./handlers.js";

const network = async () => ({ ready: true, message: "" });
const ctxOf = (signal: AbortSignal) => ({ signal }) as HandlerContext;

function rpcs(cfg = defaultConfig(), events = new ContainerEvents(() => ({ pod: undefined, containers: [] }))) {
  const state = new RuntimeNetworkState();
  const impl = runtimeConfigRpcs({ cfg, log: silentLogger, network, events, state });
  const ctx = ctxOf(new AbortController().signal);
  return {
    impl,
    state,
    events,
    runtimeConfig: async () => (await impl.runtimeConfig!(create(RuntimeConfigRequestSchema, {}), ctx)) as RuntimeConfigResponse,
    status: async (verbose = false) => (await impl.status!(create(StatusRequestSchema, { verbose }), ctx)) as StatusResponse,
  };
}

test("RuntimeConfig reports cgroupfs by default and systemd when configured; bad drivers are refused", async () => {
  assert.equal(typeof rpcs().impl.getContainerEvents, "function", "GetContainerEvents is wired with the others");
  assert.equal((await rpcs().runtimeConfig()).linux?.cgroupDriver, CgroupDriver.CGROUPFS);
  const sd = configFromObject({ cri: { cgroup_driver: "systemd" } });
  assert.equal((await rpcs(sd).runtimeConfig()).linux?.cgroupDriver, CgroupDriver.SYSTEMD);
  assert.throws(() => configFromObject({ cri: { cgroup_driver: "cgroupv2" } }), (e: Error) => isInvalidArgument(e) && /cri\.cgroup_driver/.test(e.message));
  assert.throws(() => configFromObject({ cri: { container_events_queue: 0 } }), (e: Error) => isInvalidArgument(e) && /container_events_queue/.test(e.message));
  assert.equal(configFromObject({ cri: { container_events_queue: 7 } }).cri.containerEventsQueue, 7);
});

test("parsePodCidrs accepts one CIDR or a dual-stack pair and refuses anything else naming it", () => {
  assert.deepEqual(parsePodCidrs(""), []);
  assert.deepEqual(parsePodCidrs("10.244.1.0/24"), ["10.244.1.0/24"]);
  assert.deepEqual(parsePodCidrs("10.244.1.0/24, fd00:1::/64"), ["10.244.1.0/24", "fd00:1::/64"]);
  for (const bad of ["10.244.1.0", "10.244.1.0/33", "fd00::/129", "banana/8", "10.0.0.0/24,,", "10.0.0.0/-1", "1.2.3.4/24,1.2.3.0/24,fd00::/8"]) {
    assert.throws(() => parsePodCidrs(bad), (e: Error) => isInvalidArgument(e) && e.message.includes(`"${bad}"`), bad);
  }
});

test("UpdateRuntimeConfig stores the pod CIDR (an empty one keeps it); verbose Status reports it", async () => {
  const ctx = ctxOf(new AbortController().signal);
  const { impl, state, status } = rpcs();
  const update = (podCidr: string) =>
    impl.updateRuntimeConfig!(create(UpdateRuntimeConfigRequestSchema, { runtimeConfig: { networkConfig: { podCidr } } }), ctx);
  await update("10.244.3.0/24");
  assert.deepEqual(state.podCidrs, ["10.244.3.0/24"]);
  await update("");
  assert.deepEqual(state.podCidrs, ["10.244.3.0/24"]);
  await assert.rejects(async () => update("10.244.3.0"), (e: Error) => isInvalidArgument(e));
  assert.deepEqual(state.podCidrs, ["10.244.3.0/24"], "a refused update changes nothing");
  await impl.updateRuntimeConfig!(create(UpdateRuntimeConfigRequestSchema, {}), ctx);

  const verbose = await status(true);
  const config = JSON.parse(verbose.info.config!) as { podCidrs: string[]; cgroupDriver: string; defaultRuntime: string };
  assert.deepEqual(config.podCidrs, ["10.244.3.0/24"]);
  assert.equal(config.cgroupDriver, "cgroupfs");
  assert.equal(config.defaultRuntime, "runc");
  const handlers = JSON.parse(verbose.info.runtimeHandlers!) as { name: string; binaryName: string }[];
  assert.equal(handlers[0]?.name, "runc");
  const plain = await status();
  assert.deepEqual(plain.info, {});
  assert.deepEqual(
    plain.status?.conditions.map((c) => [c.type, c.status]),
    [
      ["RuntimeReady", true],
      ["NetworkReady", true],
    ],
  );
});

test("Status lists the default handler under \"\" and every configured handler with its features", async () => {
  const cfg = configFromObject({ runtimes: { kata: { shim: "containerd-shim-kata-v2" }, crun: { binary_name: "/usr/bin/crun" } } });
  const names = runtimeHandlers(cfg).map((h) => h.name);
  assert.deepEqual(names, ["runc", "crun", "kata"], "the default first, then by name");
  const res = await rpcs(cfg).status();
  assert.deepEqual(
    res.runtimeHandlers.map((h) => [h.name, h.features?.recursiveReadOnlyMounts, h.features?.userNamespaces]),
    [
      ["", false, false],
      ["runc", false, false],
      ["crun", false, false],
      ["kata", false, false],
    ],
  );
  const other = configFromObject({ default_runtime: "crun", runtimes: { crun: { binary_name: "/usr/bin/crun" } } });
  assert.deepEqual(runtimeHandlersToProto(other).map((h) => h.name), ["", "crun", "runc"]);
});
