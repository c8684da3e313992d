/**
 * Bad input on the CRI socket, driven by the independent grpc-js client: every rejected request
 * gets its exact gRPC code and a message naming the object, and a rejected create leaves nothing
 * half-made (no pod or container record, shim, netns, snapshot or pod dir).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir } from "node:fs/promises";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon, noteShims, type Env } from "./harness.js";
import { call, criClients, rejectsWith } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import { listNetns, NETNS_PREFIX } from "../../src/cni/netns.js";
import type { Daemon } from "../../src/daemon/daemon.js";

const S = grpc.status;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const names = (re: string) => new RegExp(esc(re));

/** Everything a create could leave behind, in a comparable form. */
async function footprint(env: Env, d: Daemon, runtime: grpc.Client) {
  const ids = <T extends { id: string }>(xs: T[]) => xs.map((x) => x.id).sort();
  return {
    pods: ids((await call(runtime, "ListPodSandbox", {})).items),
    containers: ids((await call(runtime, "ListContainers", {})).containers),
    podRecords: ids(d.cri.pods.docs.list()),
    containerRecords: ids(d.cri.ctrs.docs.list()),
    shims: ids(d.meta.shims.list()),
    netns: (await listNetns()).filter((n) => n.startsWith(`${NETNS_PREFIX}${env.cfg.namespace}-`)).sort(),
    // Committed snapshots are image layers, unpacked once and kept: only the others count.
    snapshots: (await d.snapshotter.list()).filter((s) => s.kind !== "committed").map((s) => `${s.kind}:${s.name}`).sort(),
    podDirs: (await readdir(path.join(env.cfg.root, "pods")).catch(() => [] as string[])).sort(),
  };
}

test("CRI bad input: exact codes, named objects, nothing half-made", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir, { recursive: true });
  const hostDir = path.join(env.dir, "hostdir");
  await mkdir(hostDir);

  /** A create that must be refused with `code` and a message matching `re`, changing nothing. */
  const refused = async (method: string, req: object, code: grpc.status, re: RegExp) => {
    const before = await footprint(env, d, runtime);
    await rejectsWith(call(runtime, method, req), code, re);
    assert.deepEqual(await footprint(env, d, runtime), before, `${method} ${JSON.stringify(req).slice(0, 300)} left something behind`);
  };

  await t.test("RunPodSandbox", async () => {
    const ok = podConfig("p", logDir);
    await refused("RunPodSandbox", {}, S.INVALID_ARGUMENT, /config is required/);
    await refused("RunPodSandbox", { config: { ...ok, metadata: undefined } }, S.INVALID_ARGUMENT, /metadata is required/);
    await refused("RunPodSandbox", { config: { ...ok, metadata: { ...ok.metadata, name: "" } } }, S.INVALID_ARGUMENT, /metadata\.name is empty/);
    await refused("RunPodSandbox", { config: { ...ok, metadata: { ...ok.metadata, namespace: "" } } }, S.INVALID_ARGUMENT, /pod sandbox "p": metadata\.namespace is empty/);
    await refused("RunPodSandbox", { config: ok, runtime_handler: "nosuchhandler" }, S.INVALID_ARGUMENT, /runtime handler "nosuchhandler"/);
    await refused(
      "RunPodSandbox",
      { config: { ...ok, linux: { security_context: { selinux_options: { type: "spc_t" } } } } },
      S.INVALID_ARGUMENT,
      /pod sandbox "default\/p": selinux_options requested, but SELinux is not enabled on this host/,
    );
    await refused("RunPodSandbox", { config: { ...ok, linux: { sysctls: { "bad name!": "1" } } } }, S.INVALID_ARGUMENT, /sysctl "bad name!": invalid name/);
    await refused("RunPodSandbox", { config: { ...ok, linux: { sysctls: { "kernel.hostname": "x" } } } }, S.INVALID_ARGUMENT, /sysctl "kernel\.hostname" is not namespaced/);
    await refused(
      "RunPodSandbox",
      { config: { ...ok, linux: { sysctls: { "net.ipv4.ip_forward": "1" }, security_context: { namespace_options: { network: "NODE" } } } } },
      S.INVALID_ARGUMENT,
      /sysctl "net\.ipv4\.ip_forward" cannot be set with the host network/,
    );
  });

  await t.test("RunPodSandbox options the OCI runtime refuses", async () => {
    const ok = podConfig("q", logDir);
    await refused("RunPodSandbox", { config: { ...ok, hostname: "h".repeat(65) } }, S.INVALID_ARGUMENT, /pod sandbox "default\/q": hostname is longer than 64 bytes/);
    await refused(
      "RunPodSandbox",
      { config: { ...ok, linux: { security_context: { run_as_user: { value: String(2 ** 32) } } } } },
      S.INVALID_ARGUMENT,
      /pod sandbox "default\/q": run_as_user: 4294967296 is not a valid id/,
    );
    // Refused by runc only after netns, CNI, snapshot and shim were made: all of it is undone.
    await refused("RunPodSandbox", { config: { ...ok, linux: { sysctls: { "net.ipv4.ip_forward": "abc" } } } }, S.FAILED_PRECONDITION, /pod sandbox "default\/q".*ip_forward/);
  });

  // A pod to put containers in; a duplicate of its metadata is refused naming it.
  const podCfg = podConfig("p", logDir);
  const { pod_sandbox_id: pod } = await call(runtime, "RunPodSandbox", { config: podCfg });
  noteShims(env, d);
  await t.test("RunPodSandbox with the same metadata twice", async () => {
    await refused("RunPodSandbox", { config: podCfg }, S.ALREADY_EXISTS, names(pod));
  });

  const { container_id: runner } = await call(runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: ctrConfig("runner", ["sleep", "3600"]),
  });

  await t.test("CreateContainer", async () => {
    const cc = (config: object, podId = pod) => ({ pod_sandbox_id: podId, config, sandbox_config: podCfg });
    const ok = ctrConfig("c", ["true"]);
    const unknownPod = "f".repeat(64);
    await refused("CreateContainer", cc(ok, ""), S.INVALID_ARGUMENT, /pod sandbox.*id is empty/);
    await refused("CreateContainer", cc(ok, unknownPod), S.NOT_FOUND, names(unknownPod));
    await refused("CreateContainer", cc({ ...ok, metadata: undefined }), S.INVALID_ARGUMENT, new RegExp(`${pod}.*metadata is required`));
    await refused("CreateContainer", cc({ ...ok, metadata: { name: "" } }), S.INVALID_ARGUMENT, new RegExp(`${pod}.*metadata\\.name is empty`));
    await refused("CreateContainer", cc({ ...ok, image: { image: "" } }), S.INVALID_ARGUMENT, /container "c": image is empty/);
    await refused("CreateContainer", cc({ ...ok, image: { image: "example.com/nosuch/image:v1" } }), S.NOT_FOUND, /image "example\.com\/nosuch\/image:v1" not found/);
    await refused(
      "CreateContainer",
      cc({ ...ok, mounts: [{ container_path: "rel/path", host_path: hostDir }] }),
      S.INVALID_ARGUMENT,
      /container "c".*container_path "rel\/path" is not absolute/,
    );
    await refused(
      "CreateContainer",
      cc({ ...ok, mounts: [{ container_path: "/data", host_path: "rel/host" }] }),
      S.INVALID_ARGUMENT,
      /container "c".*host_path "rel\/host" is not absolute/,
    );
    const missing = path.join(env.dir, "no-such-dir");
    await refused(
      "CreateContainer",
      cc({ ...ok, mounts: [{ container_path: "/data", host_path: missing }] }),
      S.INVALID_ARGUMENT,
      new RegExp(`container "c".*host_path "${esc(missing)}" does not exist`),
    );
    await refused("CreateContainer", cc(ctrConfig("runner", ["true"])), S.ALREADY_EXISTS, names(runner));
    await refused(
      "CreateContainer",
      cc({ ...ok, linux: { security_context: { capabilities: { add_capabilities: ["SYS_WIZARD"] } } } }),
      S.INVALID_ARGUMENT,
      /container "c": unknown capability "SYS_WIZARD"/,
    );
    await refused("CreateContainer", cc({ ...ok, linux: { resources: { cpu_shares: -2 } } }), S.INVALID_ARGUMENT, /container "c": cpu_shares -2 is negative/);
    await refused(
      "CreateContainer",
      cc({ ...ok, linux: { resources: { memory_limit_in_bytes: -1 } } }),
      S.INVALID_ARGUMENT,
      /container "c": memory_limit_in_bytes -1 is negative/,
    );
    // Fails after the snapshot was prepared: the rollback removes it.
    await refused(
      "CreateContainer",
      cc({ ...ok, linux: { security_context: { run_as_username: "nosuchuser" } } }),
      S.INVALID_ARGUMENT,
      /container "c".*user "nosuchuser" not found/,
    );
  });

  await t.test("container RPCs on unknown ids, twice-started and exited containers", async () => {
    const unknown = "e".repeat(64);
    await rejectsWith(call(runtime, "StartContainer", { container_id: unknown }), S.NOT_FOUND, names(unknown));
    await rejectsWith(call(runtime, "ContainerStatus", { container_id: unknown }), S.NOT_FOUND, names(unknown));
    await rejectsWith(call(runtime, "ExecSync", { container_id: unknown, cmd: ["true"] }), S.NOT_FOUND, names(unknown));
    await rejectsWith(call(runtime, "ReopenContainerLog", { container_id: unknown }), S.NOT_FOUND, names(unknown));
    await rejectsWith(call(runtime, "PodSandboxStatus", { pod_sandbox_id: unknown }), S.NOT_FOUND, names(unknown));

    await call(runtime, "StartContainer", { container_id: runner });
    noteShims(env, d);
    await waitState(runtime, runner, "CONTAINER_RUNNING");
    await rejectsWith(call(runtime, "StartContainer", { container_id: runner }), S.FAILED_PRECONDITION, names(runner));
    await rejectsWith(call(runtime, "ExecSync", { container_id: runner, cmd: [] }), S.INVALID_ARGUMENT, new RegExp(`${runner}.*cmd is empty`));
    await rejectsWith(call(runtime, "ExecSync", { container_id: runner, cmd: [""] }), S.INVALID_ARGUMENT, new RegExp(`${runner}.*cmd is empty`));

    const { container_id: quick } = await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("quick", ["true"]) });
    await call(runtime, "StartContainer", { container_id: quick });
    await waitState(runtime, quick, "CONTAINER_EXITED");
    await rejectsWith(call(runtime, "StartContainer", { container_id: quick }), S.FAILED_PRECONDITION, names(quick));
    await rejectsWith(call(runtime, "ExecSync", { container_id: quick, cmd: ["true"] }), S.FAILED_PRECONDITION, names(quick));
    await rejectsWith(call(runtime, "ReopenContainerLog", { container_id: quick }), S.FAILED_PRECONDITION, names(quick));
    await call(runtime, "RemoveContainer", { container_id: quick });
  });

  await t.test("StartContainer with a log path that cannot be opened", async () => {
    await mkdir(path.join(logDir, "adir"), { recursive: true });
    for (const [name, logPath] of [["logdir", "adir"], ["longlog", `${"n".repeat(300)}.log`]] as const) {
      const { container_id: id } = await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: { ...ctrConfig(name, ["true"]), log_path: logPath } });
      await rejectsWith(call(runtime, "StartContainer", { container_id: id }), S.FAILED_PRECONDITION, names(id));
      const st = (await call(runtime, "ContainerStatus", { container_id: id })).status;
      assert.equal(st.state, "CONTAINER_EXITED");
      assert.equal(st.reason, "StartError");
      await call(runtime, "RemoveContainer", { container_id: id });
    }
  });

  await t.test("ids far longer than any real id are refused with a short message", async () => {
    const long = "é".repeat(20_000);
    await rejectsWith(call(runtime, "ContainerStatus", { container_id: long }), S.INVALID_ARGUMENT, /container: id "é+…" \(20000 characters\) is too long/);
    await rejectsWith(call(runtime, "PodSandboxStatus", { pod_sandbox_id: long }), S.INVALID_ARGUMENT, /pod sandbox: id .* is too long/);
  });

  // Error messages echo request strings; percent-encoded in grpc-message, a ~20,000-character
  // name would overflow the HTTP/2 trailers (the client saw RST_STREAM) unless the one error
  // mapping clips it (src/cri/instrument.ts).
  await t.test("a huge name echoed in an error still yields the status", async () => {
    const huge = "é".repeat(20_000);
    await rejectsWith(
      call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: { ...ctrConfig(huge, ["true"]), image: { image: "" } } }),
      S.INVALID_ARGUMENT,
      /image is empty/,
    );
  });

  await t.test("log paths stay inside the pod's log directory", async () => {
    await rejectsWith(
      call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: { ...ctrConfig("esc", ["true"]), log_path: "../../escape.log" } }),
      S.INVALID_ARGUMENT,
      /log_path "\.\.\/\.\.\/escape\.log" must stay inside/,
    );
    await rejectsWith(
      call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: { ...ctrConfig("abs", ["true"]), log_path: "/etc/escape.log" } }),
      S.INVALID_ARGUMENT,
      /must stay inside/,
    );
  });

  await t.test("Stop and Remove of unknown ids succeed", async () => {
    const before = await footprint(env, d, runtime);
    const unknown = "d".repeat(64);
    await call(runtime, "StopContainer", { container_id: unknown, timeout: 0 });
    await call(runtime, "RemoveContainer", { container_id: unknown });
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: unknown });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: unknown });
    assert.deepEqual(await footprint(env, d, runtime), before);
  });

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  assert.ok(await d.cri.monitor.queue.drain(15_000), "the daemon finished the teardown");
  const after = await footprint(env, d, runtime);
  assert.deepEqual(
    after,
    { pods: [], containers: [], podRecords: [], containerRecords: [], shims: [], netns: [], snapshots: [], podDirs: [] },
  );
});
