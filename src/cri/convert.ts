/**
 * runtime.v1 messages ↔ the CRI layer's domain types. Requests are validated here: missing or
 * malformed fields and options skiff does not support yet (or this host lacks: AppArmor, SELinux)
 * are InvalidArgument errors naming the object (never silently ignored).
 */
import { create } from "@bufbuild/protobuf";
import { invalidArgument } from "../errors.js";
import {
  ContainerSchema,
  ContainerState as PbContainerState,
  ContainerStatusSchema,
  MountSchema,
  PodSandboxSchema,
  PodSandboxState,
  PodSandboxStatusSchema,
  Protocol,
  SecurityProfile_ProfileType,
  type Container as PbContainer,
  type ContainerConfig,
  type ContainerStatus as PbContainerStatus,
  type PodSandbox as PbPodSandbox,
  type PodSandboxConfig,
  type PodSandboxStatus as PbPodSandboxStatus,
  type SecurityProfile,
} from "../gen/runtime/v1/api_pb.js";
import type { ContainerRecord, ContainerState, MountRecord, NamespaceMode, SandboxRecord } from "./records.js";
import type { RunPodRequest } from "./pods.js";
import type { CreateContainerRequest } from "./ctrs.js";
import { capabilityChange } from "./security.js";
import { seccompRequest, type SeccompRequest } from "./seccomp.js";
import { resourcesFromProto } from "./resources.js";
import { selinuxEnabled } from "./selinux-linux.js";

const PROTOCOLS: Record<number, "tcp" | "udp" | "sctp"> = { [Protocol.TCP]: "tcp", [Protocol.UDP]: "udp", [Protocol.SCTP]: "sctp" };

function nsMode(v: number, what: string): NamespaceMode {
  if (v === 0 || v === 1 || v === 2 || v === 3) return v;
  throw invalidArgument(`${what}: unknown namespace mode ${v}`);
}

/** A uid or gid: the OCI spec's uint32 (runc refused larger ones with Unknown; found by fuzzing). */
function id32(v: bigint, what: string): number {
  if (v < 0n || v > 0xffff_ffffn) throw invalidArgument(`${what}: ${v} is not a valid id (0 to 4294967295)`);
  return Number(v);
}

const PROFILE_TYPES = {
  [SecurityProfile_ProfileType.RuntimeDefault]: "RuntimeDefault",
  [SecurityProfile_ProfileType.Unconfined]: "Unconfined",
  [SecurityProfile_ProfileType.Localhost]: "Localhost",
} as const;

function seccompOf(p: SecurityProfile | undefined, legacyPath: string, what: string): SeccompRequest {
  if (!p) return seccompRequest(undefined, legacyPath, what);
  const type = PROFILE_TYPES[p.profileType];
  if (!type) throw invalidArgument(`${what}: unknown seccomp profile type ${p.profileType}`);
  return seccompRequest({ type, localhostRef: p.localhostRef }, "", what);
}

/** This host has no AppArmor: only "unconfined" (or nothing) can be honoured. */
function checkAppArmor(p: SecurityProfile | undefined, legacyName: string, what: string): void {
  if (p && p.profileType !== SecurityProfile_ProfileType.Unconfined) {
    const name = PROFILE_TYPES[p.profileType] ?? String(p.profileType);
    throw invalidArgument(`${what}: AppArmor profile ${name}${p.localhostRef ? ` "${p.localhostRef.slice(0, 256)}"` : ""} requested, but AppArmor is not enabled on this host`);
  }
  if (!p && legacyName && legacyName !== "unconfined") {
    throw invalidArgument(`${what}: AppArmor profile "${legacyName.slice(0, 256)}" requested, but AppArmor is not enabled on this host`);
  }
}

/** This host has no SELinux: an empty SELinuxOption is fine, a label is refused. */
function checkSelinux(o: { user: string; role: string; type: string; level: string } | undefined, what: string): void {
  if (o && (o.user || o.role || o.type || o.level)) {
    throw invalidArgument(`${what}: selinux_options requested, but SELinux is not enabled on this host`);
  }
}

export function runPodRequest(config: PodSandboxConfig | undefined, runtimeHandler: string): RunPodRequest {
  if (!config) throw invalidArgument("RunPodSandbox: config is required");
  const m = config.metadata;
  if (!m) throw invalidArgument("RunPodSandbox: config.metadata is required");
  if (!m.name) throw invalidArgument("RunPodSandbox: config.metadata.name is empty");
  if (!m.namespace) throw invalidArgument(`pod sandbox "${m.name}": metadata.namespace is empty`);
  const what = `pod sandbox "${m.namespace}/${m.name}"`;
  if (config.logDirectory && !config.logDirectory.startsWith("/")) {
    throw invalidArgument(`${what}: log_directory "${config.logDirectory.slice(0, 256)}" must be an absolute path`);
  }
  const linux = config.linux;
  const sc = linux?.securityContext;
  checkSelinux(sc?.selinuxOptions, what);
  if (sc?.namespaceOptions?.usernsOptions) throw invalidArgument(`${what}: user namespaces are not supported yet`);
  const seccomp = seccompOf(sc?.seccomp, sc?.seccompProfilePath ?? "", what);
  checkAppArmor(sc?.apparmor, "", what);
  if (config.windows) throw invalidArgument(`${what}: Windows options on a Linux runtime`);
  // sethostname(2) takes at most 64 bytes; runc's refusal surfaced as Unknown (found by fuzzing).
  if (Buffer.byteLength(config.hostname) > 64) throw invalidArgument(`${what}: hostname is longer than 64 bytes`);
  const nso = sc?.namespaceOptions;
  const portMappings = config.portMappings.map((p, i) => {
    const protocol = PROTOCOLS[p.protocol];
    if (!protocol) throw invalidArgument(`${what}: port_mappings[${i}]: unknown protocol ${p.protocol}`);
    if (p.containerPort <= 0 || p.containerPort > 65535) throw invalidArgument(`${what}: port_mappings[${i}]: container_port ${p.containerPort} out of range`);
    if (p.hostPort < 0 || p.hostPort > 65535) throw invalidArgument(`${what}: port_mappings[${i}]: host_port ${p.hostPort} out of range`);
    return { protocol, containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIp };
  });
  return {
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    attempt: m.attempt,
    hostname: config.hostname,
    logDirectory: config.logDirectory,
    ...(config.dnsConfig ? { dns: { servers: config.dnsConfig.servers, searches: config.dnsConfig.searches, options: config.dnsConfig.options } } : {}),
    // Only mappings with a host port reach the portmap plugin (as in containerd).
    portMappings: portMappings.filter((p) => p.hostPort > 0),
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    cgroupParent: linux?.cgroupParent ?? "",
    sysctls: { ...(linux?.sysctls ?? {}) },
    namespaces: {
      network: nsMode(nso?.network ?? 0, what),
      pid: nsMode(nso?.pid ?? 0, what),
      ipc: nsMode(nso?.ipc ?? 0, what),
    },
    ...(sc?.runAsUser ? { runAsUser: id32(sc.runAsUser.value, `${what}: run_as_user`) } : {}),
    ...(sc?.runAsGroup ? { runAsGroup: id32(sc.runAsGroup.value, `${what}: run_as_group`) } : {}),
    readonlyRootfs: sc?.readonlyRootfs ?? false,
    supplementalGroups: (sc?.supplementalGroups ?? []).map((g) => id32(g, `${what}: supplemental_groups`)),
    security: { privileged: sc?.privileged ?? false, seccomp },
    runtimeHandler,
  };
}

const PROPAGATION: Record<number, 0 | 1 | 2> = { 0: 0, 1: 1, 2: 2 };

export function createContainerRequest(podId: string, config: ContainerConfig | undefined): CreateContainerRequest {
  if (!podId) throw invalidArgument("CreateContainer: pod_sandbox_id is empty");
  if (!config) throw invalidArgument("CreateContainer: config is required");
  const m = config.metadata;
  if (!m) throw invalidArgument(`CreateContainer in pod sandbox "${podId}": config.metadata is required`);
  if (!m.name) throw invalidArgument(`CreateContainer in pod sandbox "${podId}": config.metadata.name is empty`);
  const what = `container "${m.name}"`;
  if (!config.image?.image) throw invalidArgument(`${what}: image is empty`);
  if (config.devices.length || config.CDIDevices.length) throw invalidArgument(`${what}: devices are not supported yet`);
  if (config.windows) throw invalidArgument(`${what}: Windows options on a Linux runtime`);
  const sc = config.linux?.securityContext;
  if (sc?.runAsGroup && !sc.runAsUser && !sc.runAsUsername) {
    throw invalidArgument(`${what}: run_as_group ${sc.runAsGroup.value} is set without run_as_user or run_as_username`);
  }
  const caps = sc?.capabilities;
  const capabilities = capabilityChange(caps?.addCapabilities ?? [], caps?.dropCapabilities ?? [], caps?.addAmbientCapabilities ?? [], what);
  checkSelinux(sc?.selinuxOptions, what);
  const seccomp = seccompOf(sc?.seccomp, sc?.seccompProfilePath ?? "", what);
  checkAppArmor(sc?.apparmor, sc?.apparmorProfile ?? "", what);
  const r = config.linux?.resources;
  // Syntax and ranges here; host facts (hugepage sizes, cgroup version) when the container is made.
  const resources = r ? resourcesFromProto(r, what) : undefined;
  const mounts: MountRecord[] = config.mounts.map((mt, i) => {
    // Without SELinux there is no label to set: ignored, as containerd and CRI-O do (kubelet sets
    // it on every volume of a pod with an SELinux context). With SELinux skiff cannot relabel.
    if (mt.selinuxRelabel && selinuxEnabled()) throw invalidArgument(`${what}: mounts[${i}]: SELinux relabeling is not supported by skiff`);
    if (mt.uidMappings.length || mt.gidMappings.length) throw invalidArgument(`${what}: mounts[${i}]: id-mapped mounts are not supported yet`);
    if (mt.image) throw invalidArgument(`${what}: mounts[${i}]: image volumes are not supported yet`);
    const propagation = PROPAGATION[mt.propagation];
    if (propagation === undefined) throw invalidArgument(`${what}: mounts[${i}]: unknown propagation ${mt.propagation}`);
    if (!mt.containerPath) throw invalidArgument(`${what}: mounts[${i}]: container_path is empty`);
    return { containerPath: mt.containerPath, hostPath: mt.hostPath, readonly: mt.readonly || mt.recursiveReadOnly, propagation };
  });
  const nso = sc?.namespaceOptions;
  return {
    podId,
    name: m.name,
    attempt: m.attempt,
    image: config.image.image,
    command: config.command,
    args: config.args,
    workingDir: config.workingDir,
    envs: config.envs.map((e) => {
      if (!e.key) throw invalidArgument(`${what}: an env entry has an empty key`);
      return [e.key, e.value] as [string, string];
    }),
    mounts,
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    logPath: config.logPath,
    stdin: config.stdin,
    stdinOnce: config.stdinOnce,
    tty: config.tty,
    ...(sc?.runAsUser ? { runAsUser: id32(sc.runAsUser.value, `${what}: run_as_user`) } : {}),
    runAsUsername: sc?.runAsUsername ?? "",
    ...(sc?.runAsGroup ? { runAsGroup: id32(sc.runAsGroup.value, `${what}: run_as_group`) } : {}),
    supplementalGroups: (sc?.supplementalGroups ?? []).map((g) => id32(g, `${what}: supplemental_groups`)),
    readonlyRootfs: sc?.readonlyRootfs ?? false,
    noNewPrivs: sc?.noNewPrivs ?? false,
    maskedPaths: sc?.maskedPaths ?? [],
    readonlyPaths: sc?.readonlyPaths ?? [],
    security: { privileged: sc?.privileged ?? false, capabilities, seccomp },
    namespaces: { pid: nsMode(nso?.pid ?? 0, what), targetId: nso?.targetId ?? "" },
    ...(resources ? { resources } : {}),
  };
}

const POD_STATE = { creating: PodSandboxState.SANDBOX_NOTREADY, ready: PodSandboxState.SANDBOX_READY, notready: PodSandboxState.SANDBOX_NOTREADY, removing: PodSandboxState.SANDBOX_NOTREADY } as const;

export const CONTAINER_STATE: Record<ContainerState, PbContainerState> = {
  created: PbContainerState.CONTAINER_CREATED,
  running: PbContainerState.CONTAINER_RUNNING,
  exited: PbContainerState.CONTAINER_EXITED,
  unknown: PbContainerState.CONTAINER_UNKNOWN,
};

export function podStateOf(p: SandboxRecord): PodSandboxState {
  return POD_STATE[p.state];
}

function podMetadata(p: SandboxRecord) {
  return { name: p.name, uid: p.uid, namespace: p.namespace, attempt: p.attempt };
}

export function podToProto(p: SandboxRecord): PbPodSandbox {
  return create(PodSandboxSchema, {
    id: p.id,
    metadata: podMetadata(p),
    state: podStateOf(p),
    createdAt: BigInt(p.createdAtNs),
    labels: p.labels,
    annotations: p.annotations,
    runtimeHandler: p.runtimeHandler,
  });
}

export function podStatusToProto(p: SandboxRecord): PbPodSandboxStatus {
  const [ip = "", ...more] = p.state === "ready" ? p.ips : [];
  return create(PodSandboxStatusSchema, {
    id: p.id,
    metadata: podMetadata(p),
    state: podStateOf(p),
    createdAt: BigInt(p.createdAtNs),
    network: { ip, additionalIps: more.map((x) => ({ ip: x })) },
    linux: { namespaces: { options: { network: p.namespaces.network, pid: p.namespaces.pid, ipc: p.namespaces.ipc } } },
    labels: p.labels,
    annotations: p.annotations,
    runtimeHandler: p.runtimeHandler,
  });
}

function imageSpec(c: ContainerRecord) {
  return { image: c.image, userSpecifiedImage: c.image };
}

export function containerToProto(c: ContainerRecord): PbContainer {
  return create(ContainerSchema, {
    id: c.id,
    podSandboxId: c.sandboxId,
    metadata: { name: c.name, attempt: c.attempt },
    image: imageSpec(c),
    imageRef: c.imageRef,
    imageId: c.imageId,
    state: CONTAINER_STATE[c.state],
    createdAt: BigInt(c.createdAtNs),
    labels: c.labels,
    annotations: c.annotations,
  });
}

export function containerStatusToProto(c: ContainerRecord): PbContainerStatus {
  return create(ContainerStatusSchema, {
    id: c.id,
    metadata: { name: c.name, attempt: c.attempt },
    state: CONTAINER_STATE[c.state],
    createdAt: BigInt(c.createdAtNs),
    startedAt: BigInt(c.startedAtNs),
    finishedAt: BigInt(c.finishedAtNs),
    exitCode: c.exitCode,
    image: imageSpec(c),
    imageRef: c.imageRef,
    imageId: c.imageId,
    reason: c.reason,
    message: c.message,
    labels: c.labels,
    annotations: c.annotations,
    mounts: c.mounts.map((m) =>
      create(MountSchema, { containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly, propagation: m.propagation }),
    ),
    logPath: c.logPath,
    resources: {
      linux: {
        cpuPeriod: BigInt(c.resources?.cpuPeriod ?? 0),
        cpuQuota: BigInt(c.resources?.cpuQuota ?? 0),
        cpuShares: BigInt(c.resources?.cpuShares ?? 0),
        memoryLimitInBytes: BigInt(c.resources?.memoryLimitInBytes ?? 0),
        oomScoreAdj: BigInt(c.resources?.oomScoreAdj ?? 0),
        cpusetCpus: c.resources?.cpusetCpus ?? "",
        cpusetMems: c.resources?.cpusetMems ?? "",
        memorySwapLimitInBytes: BigInt(c.resources?.memorySwapLimitInBytes ?? 0),
        hugepageLimits: (c.resources?.hugepageLimits ?? []).map((h) => ({ pageSize: h.pageSize, limit: BigInt(h.limit) })),
        unified: { ...(c.resources?.unified ?? {}) },
      },
    },
  });
}
