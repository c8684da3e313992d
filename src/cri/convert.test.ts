import { test } from "node:test";
import { existsSync } from "node:fs";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ContainerConfigSchema, ContainerState, PodSandboxConfigSchema, PodSandboxState, SecurityProfile_ProfileType } from "../gen/runtime/v1/api_pb.js";
import { isInvalidArgument } from "../errors.js";
import { containerStatusToProto, containerToProto, createContainerRequest, podStatusToProto, podToProto, runPodRequest } from "./convert.js";
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
  rejects(() => runPodRequest(pod({ linux: { securityContext: { selinuxOptions: { type: "spc_t" } } } }), ""), /"ns\/p": selinux_options requested, but SELinux is not enabled/);
  rejects(
    () => runPodRequest(pod({ linux: { securityContext: { apparmor: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } } }), ""),
    /AppArmor profile RuntimeDefault requested, but AppArmor is not enabled on this host/,
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
  const withStdin = createContainerRequest("p", ctr({ stdin: true, stdinOnce: true }));
  assert.deepEqual([withStdin.stdin, withStdin.stdinOnce], [true, true]);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { capabilities: { addCapabilities: ["NET_WIZARD"] } } } })), /"c": unknown capability "NET_WIZARD"/);
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

test("createContainerRequest: config and metadata required, named by the pod; more refusals", () => {
  rejects(() => createContainerRequest("p1", undefined), /CreateContainer: config is required/);
  rejects(() => createContainerRequest("p1", create(ContainerConfigSchema, { image: { image: "busybox" } })), /pod sandbox "p1": config.metadata is required/);
  rejects(() => createContainerRequest("p", ctr({ image: undefined })), /"c": image is empty/);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { capabilities: { dropCapabilities: ["CAP_"] } } } })), /"c": unknown capability "CAP_"/);
  rejects(
    () => createContainerRequest("p", ctr({ linux: { securityContext: { seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: "rel.json" } } } })),
    /"c": seccomp profile path "rel.json" is not absolute/,
  );
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { seccompProfilePath: "docker/strict" } } })), /unsupported seccomp profile "docker\/strict"/);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { apparmorProfile: "localhost/k8s" } } })), /"c": AppArmor profile "localhost\/k8s" requested/);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { selinuxOptions: { level: "s0" } } } })), /"c": selinux_options requested/);
  rejects(() => createContainerRequest("p", ctr({ CDIDevices: [{ name: "vendor.com/gpu=0" }] })), /devices are not supported yet/);
  rejects(() => createContainerRequest("p", ctr({ envs: [{ key: "", value: "x" }] })), /empty key/);
  rejects(() => createContainerRequest("p", ctr({ mounts: [{ containerPath: "", hostPath: "/srv" }] })), /mounts\[0\]: container_path is empty/);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { runAsUser: { value: -1n } } } })), /run_as_user: -1 is not a valid id/);
  rejects(() => createContainerRequest("p", ctr({ linux: { securityContext: { runAsGroup: { value: 5n } } } })), /"c": run_as_group 5 is set without run_as_user or run_as_username/);
  assert.equal(createContainerRequest("p", ctr({ linux: { securityContext: { runAsUsername: "daemon", runAsGroup: { value: 5n } } } })).runAsGroup, 5);
});

test("createContainerRequest: selinux_relabel on a mount is ignored on a host without SELinux, refused with it", () => {
  const req = ctr({ mounts: [{ containerPath: "/data", hostPath: "/srv", selinuxRelabel: true }] });
  if (existsSync("/sys/fs/selinux/enforce")) {
    rejects(() => createContainerRequest("p", req), /"c": mounts\[0\]: SELinux relabeling is not supported/);
  } else {
    assert.deepEqual(createContainerRequest("p", req).mounts, [{ containerPath: "/data", hostPath: "/srv", readonly: false, propagation: 0 }]);
  }
});

test("createContainerRequest: user, resources and namespace options carried over", () => {
  const r = createContainerRequest(
    "p",
    ctr({
      command: ["sh"],
      args: ["-c", "true"],
      tty: true,
      linux: {
        securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 0n }, supplementalGroups: [5n], readonlyRootfs: true, noNewPrivs: true, namespaceOptions: { pid: 1 } },
        resources: { cpuQuota: -1n, cpuShares: 2n, memoryLimitInBytes: 8388608n, oomScoreAdj: -10n },
      },
    }),
  );
  assert.deepEqual([r.command, r.args, r.tty], [["sh"], ["-c", "true"], true]);
  assert.deepEqual([r.runAsUser, r.runAsGroup, r.supplementalGroups], [1000, 0, [5]]);
  assert.deepEqual([r.readonlyRootfs, r.noNewPrivs], [true, true]);
  assert.deepEqual(r.namespaces, { pid: 1, targetId: "" });
  assert.deepEqual(r.resources, { cpuPeriod: 0, cpuQuota: -1, cpuShares: 2, memoryLimitInBytes: 8388608, oomScoreAdj: -10, cpusetCpus: "", cpusetMems: "" });
  assert.equal(createContainerRequest("p", ctr()).resources, undefined);
});

test("runPodRequest: unknown protocol and out-of-range ports refused; dns, user and namespaces carried over", () => {
  rejects(() => runPodRequest(pod({ portMappings: [{ protocol: 7, containerPort: 80, hostPort: 80 }] }), ""), /"ns\/p": port_mappings\[0\]: unknown protocol 7/);
  rejects(() => runPodRequest(pod({ portMappings: [{ containerPort: 0, hostPort: 80 }] }), ""), /container_port 0 out of range/);
  rejects(() => runPodRequest(pod({ portMappings: [{ containerPort: 80, hostPort: 70000 }] }), ""), /host_port 70000 out of range/);
  rejects(() => runPodRequest(pod({ hostname: "h".repeat(65) }), ""), /longer than 64 bytes/);
  const r = runPodRequest(
    pod({
      hostname: "web-0",
      dnsConfig: { servers: ["10.0.0.10"], searches: ["svc"], options: ["ndots:5"] },
      portMappings: [{ protocol: 1, containerPort: 53, hostPort: 5353, hostIp: "127.0.0.1" }],
      linux: { cgroupParent: "/kubepods", securityContext: { runAsUser: { value: 65535n }, namespaceOptions: { network: 2, pid: 2, ipc: 0 } } },
    }),
    "",
  );
  assert.deepEqual(r.dns, { servers: ["10.0.0.10"], searches: ["svc"], options: ["ndots:5"] });
  assert.deepEqual(r.portMappings, [{ protocol: "udp", containerPort: 53, hostPort: 5353, hostIp: "127.0.0.1" }]);
  assert.deepEqual(r.namespaces, { network: 2, pid: 2, ipc: 0 });
  assert.deepEqual([r.hostname, r.cgroupParent, r.runAsUser, r.runAsGroup], ["web-0", "/kubepods", 65535, undefined]);
  assert.equal(runPodRequest(pod(), "").dns, undefined, "no dns_config: the host's resolv.conf");
});

const sandbox = (o: Partial<SandboxRecord> = {}): SandboxRecord =>
  ({
    id: "p1",
    nameKey: "p_ns_u_1",
    name: "p",
    namespace: "ns",
    uid: "u",
    attempt: 1,
    state: "ready",
    createdAtNs: "1795834762334272655",
    runtimeHandler: "",
    labels: { app: "x" },
    annotations: { a: "b" },
    namespaces: { network: 0, pid: 1, ipc: 2 },
    ips: ["10.88.0.5", "fd00::5"],
    ...o,
  }) as SandboxRecord;

test("podStatusToProto / podToProto: metadata, state, nanosecond timestamps, IPs only while ready", () => {
  const s = podStatusToProto(sandbox());
  assert.equal(s.id, "p1");
  assert.deepEqual([s.metadata?.name, s.metadata?.namespace, s.metadata?.uid, s.metadata?.attempt], ["p", "ns", "u", 1]);
  assert.equal(s.state, PodSandboxState.SANDBOX_READY);
  assert.equal(s.createdAt, 1795834762334272655n);
  assert.equal(s.network?.ip, "10.88.0.5");
  assert.deepEqual(s.network?.additionalIps.map((x) => x.ip), ["fd00::5"]);
  assert.deepEqual([s.linux?.namespaces?.options?.network, s.linux?.namespaces?.options?.pid, s.linux?.namespaces?.options?.ipc], [0, 1, 2]);
  assert.deepEqual([s.labels, s.annotations], [{ app: "x" }, { a: "b" }]);
  const down = podStatusToProto(sandbox({ state: "notready" }));
  assert.equal(down.state, PodSandboxState.SANDBOX_NOTREADY);
  assert.deepEqual([down.network?.ip, down.network?.additionalIps.length], ["", 0]);
  assert.equal(podStatusToProto(sandbox({ state: "creating" })).state, PodSandboxState.SANDBOX_NOTREADY);
  const p = podToProto(sandbox({ runtimeHandler: "runc" }));
  assert.deepEqual([p.id, p.metadata?.name, p.state, p.createdAt, p.runtimeHandler], ["p1", "p", PodSandboxState.SANDBOX_READY, 1795834762334272655n, "runc"]);
});

const container = (o: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id: "c1",
  nameKey: "c_p_ns_u_0",
  sandboxId: "p1",
  name: "c",
  attempt: 2,
  image: "busybox",
  imageId: `sha256:${"b".repeat(64)}`,
  imageRef: `docker.io/library/busybox@sha256:${"a".repeat(64)}`,
  labels: { l: "1" },
  annotations: { a: "2" },
  mounts: [{ containerPath: "/data", hostPath: "/srv", readonly: true, propagation: 2 }],
  logPath: "c/2.log",
  tty: false,
  stdin: false,
  state: "exited",
  createdAtNs: "1000000000000000001",
  startedAtNs: "1000000000000000002",
  finishedAtNs: "1000000000000000003",
  exitCode: 137,
  reason: "OOMKilled",
  message: "out of memory",
  pid: 0,
  stopSignal: 15,
  resources: { cpuPeriod: 100000, cpuQuota: 5000, cpuShares: 2, memoryLimitInBytes: 1 << 20, oomScoreAdj: 999, cpusetCpus: "0", cpusetMems: "" },
  oomKilled: true,
  ...o,
});

test("containerStatusToProto / containerToProto: field mapping", () => {
  const s = containerStatusToProto(container());
  assert.deepEqual([s.id, s.metadata?.name, s.metadata?.attempt, s.state], ["c1", "c", 2, ContainerState.CONTAINER_EXITED]);
  assert.deepEqual([s.createdAt, s.startedAt, s.finishedAt], [1000000000000000001n, 1000000000000000002n, 1000000000000000003n]);
  assert.deepEqual([s.exitCode, s.reason, s.message, s.logPath], [137, "OOMKilled", "out of memory", "c/2.log"]);
  assert.deepEqual([s.image?.image, s.image?.userSpecifiedImage, s.imageRef, s.imageId], ["busybox", "busybox", container().imageRef, container().imageId]);
  assert.deepEqual(s.mounts.map((m) => [m.containerPath, m.hostPath, m.readonly, m.propagation]), [["/data", "/srv", true, 2]]);
  const lr = s.resources?.linux;
  assert.deepEqual([lr?.cpuPeriod, lr?.cpuQuota, lr?.cpuShares, lr?.memoryLimitInBytes, lr?.oomScoreAdj, lr?.cpusetCpus], [100000n, 5000n, 2n, 1048576n, 999n, "0"]);
  assert.equal(containerStatusToProto(container({ resources: null })).resources?.linux?.memoryLimitInBytes, 0n);
  for (const [state, want] of [["created", ContainerState.CONTAINER_CREATED], ["running", ContainerState.CONTAINER_RUNNING], ["unknown", ContainerState.CONTAINER_UNKNOWN]] as const) {
    assert.equal(containerStatusToProto(container({ state })).state, want);
  }
  const c = containerToProto(container({ state: "running" }));
  assert.deepEqual([c.id, c.podSandboxId, c.metadata?.name, c.metadata?.attempt, c.state, c.createdAt], ["c1", "p1", "c", 2, ContainerState.CONTAINER_RUNNING, 1000000000000000001n]);
  assert.deepEqual([c.image?.image, c.imageRef, c.imageId, c.labels, c.annotations], ["busybox", container().imageRef, container().imageId, { l: "1" }, { a: "2" }]);
});

test("security contexts: privileged, capabilities, seccomp in both fields, unconfined AppArmor", () => {
  const P = SecurityProfile_ProfileType;
  const sc = (securityContext: object) => createContainerRequest("p", ctr({ linux: { securityContext } })).security!;
  assert.deepEqual(createContainerRequest("p", ctr()).security, {
    privileged: false,
    capabilities: { addAll: false, dropAll: false, add: [], drop: [], ambient: [] },
    seccomp: { kind: "unconfined" },
  });
  assert.deepEqual(sc({ privileged: true, capabilities: { addCapabilities: ["all", "net_admin"], dropCapabilities: ["CAP_CHOWN", "ALL"], addAmbientCapabilities: ["NET_RAW"] } }), {
    privileged: true,
    capabilities: { addAll: true, dropAll: true, add: ["CAP_NET_ADMIN"], drop: ["CAP_CHOWN"], ambient: ["CAP_NET_RAW"] },
    seccomp: { kind: "unconfined" },
  });
  assert.deepEqual(sc({ seccomp: { profileType: P.RuntimeDefault } }).seccomp, { kind: "runtime-default" });
  assert.deepEqual(sc({ seccomp: { profileType: P.Localhost, localhostRef: "/etc/s.json" } }).seccomp, { kind: "localhost", path: "/etc/s.json" });
  // The field wins over the deprecated path.
  assert.deepEqual(sc({ seccomp: { profileType: P.Unconfined }, seccompProfilePath: "runtime/default" }).seccomp, { kind: "unconfined" });
  assert.deepEqual(sc({ seccompProfilePath: "docker/default" }).seccomp, { kind: "runtime-default" });
  assert.deepEqual(sc({ seccompProfilePath: "localhost//etc/s.json" }).seccomp, { kind: "localhost", path: "/etc/s.json" });
  assert.deepEqual(sc({ apparmor: { profileType: P.Unconfined }, apparmorProfile: "unconfined", selinuxOptions: {} }).privileged, false);
  const r = runPodRequest(pod({ linux: { securityContext: { privileged: true, seccompProfilePath: "runtime/default" } } }), "");
  assert.deepEqual(r.security, { privileged: true, seccomp: { kind: "runtime-default" } });
  assert.deepEqual(runPodRequest(pod(), "").security, { privileged: false, seccomp: { kind: "unconfined" } });
});
