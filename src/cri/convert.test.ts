import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ContainerConfigSchema, PodSandboxConfigSchema, SecurityProfile_ProfileType } from "../gen/runtime/v1/api_pb.js";
import { isInvalidArgument } from "../errors.js";
import { createContainerRequest, runPodRequest } from "./convert.js";
import { filterContainers, filterPods } from "./runtime-rpcs.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

const pod = (extra: object = {}) =>
  create(PodSandboxConfigSchema, { metadata: { name: "p", namespace: "ns", uid: "u", attempt: 1 }, logDirectory: "/var/log/pods/x", ...extra });
const ctr = (extra: object = {}) => create(ContainerConfigSchema, { metadata: { name: "c" }, image: { image: "busybox" }, ...extra });
const rejects = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: Error) => isInvalidArgument(e) && re.test(e.message));

test("runPodRequest: required fields, unsupported options refused, host ports only", () => {
  rejects(() => runPodRequest(undefined, ""), /config is required/);
  rejects(() => runPodRequest(create(PodSandboxConfigSchema, {}), ""), /metadata is required/);
  rejects(() => runPodRequest(create(PodSandboxConfigSchema, { metadata: { namespace: "ns" } }), ""), /name is empty/);
  rejects(() => runPodRequest(create(PodSandboxConfigSchema, { metadata: { name: "p" } }), ""), /"p".*namespace is empty/);
  rejects(() => runPodRequest(pod({ logDirectory: "relative" }), ""), /log_directory "relative" must be an absolute path/);
  rejects(() => runPodRequest(pod({ linux: { securityContext: { privileged: true } } }), ""), /privileged pods are not supported yet/);
  rejects(
    () => runPodRequest(pod({ linux: { securityContext: { seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } } }), ""),
    /seccomp profiles are not supported yet/,
  );
  const r = runPodRequest(
    pod({ portMappings: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81 }], linux: { sysctls: { "net.core.somaxconn": "1024" } } }),
    "runc",
  );
  assert.deepEqual(r.portMappings, [{ protocol: "tcp", containerPort: 80, hostPort: 8080, hostIp: "" }]);
  assert.deepEqual(r.sysctls, { "net.core.somaxconn": "1024" });
  assert.deepEqual(r.namespaces, { network: 0, pid: 0, ipc: 0 });
  assert.equal(r.runtimeHandler, "runc");
});

test("createContainerRequest: required fields, mounts, refusals", () => {
  rejects(() => createContainerRequest("", ctr()), /pod_sandbox_id is empty/);
  rejects(() => createContainerRequest("p", ctr({ metadata: { name: "" } })), /metadata.name is empty/);
  rejects(() => createContainerRequest("p", ctr({ image: { image: "" } })), /"c": image is empty/);
  rejects(() => createContainerRequest("p", ctr({ stdin: true })), /stdin .* not supported yet/);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { capabilities: { addCapabilities: ["NET_ADMIN"] } } } })), /capability/);
  rejects(() => createContainerRequest("p", ctr({ linux: { resources: { cpuShares: -2n } } })), /cpu_shares -2 is negative/);
  rejects(() => createContainerRequest("p", ctr({ devices: [{ containerPath: "/dev/x", hostPath: "/dev/null" }] })), /devices/);
  const r = createContainerRequest(
    "p",
    ctr({ mounts: [{ containerPath: "/data", hostPath: "/srv", readonly: true, propagation: 1 }], envs: [{ key: "A", value: "1" }] }),
  );
  assert.deepEqual(r.mounts, [{ containerPath: "/data", hostPath: "/srv", readonly: true, propagation: 1 }]);
  assert.deepEqual(r.envs, [["A", "1"]]);
});

test("list filters: id prefix, state, pod, labels; pods being created never listed", () => {
  const p = (id: string, state: SandboxRecord["state"], labels = {}) => ({ id, state, labels }) as SandboxRecord;
  const pods = [p("aa11", "ready", { app: "x" }), p("aa22", "notready"), p("bb33", "creating")];
  assert.deepEqual(filterPods(pods, undefined).map((x) => x.id), ["aa11", "aa22"]);
  assert.deepEqual(filterPods(pods, { id: "aa", labelSelector: { app: "x" } } as never).map((x) => x.id), ["aa11"]);
  assert.deepEqual(filterPods(pods, { id: "", state: { state: 1 }, labelSelector: {} } as never).map((x) => x.id), ["aa22"]);
  const c = (id: string, sandboxId: string, state: ContainerRecord["state"]) => ({ id, sandboxId, state, labels: {} }) as unknown as ContainerRecord;
  const cs = [c("c1", "aa11", "running"), c("c2", "aa22", "exited")];
  assert.deepEqual(filterContainers(cs, { id: "", podSandboxId: "aa2", labelSelector: {} } as never).map((x) => x.id), ["c2"]);
  assert.deepEqual(filterContainers(cs, { id: "", podSandboxId: "", state: { state: 1 }, labelSelector: {} } as never).map((x) => x.id), ["c1"]);
});
