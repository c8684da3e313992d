/**
 * The CRI layer's domain records: pods and containers as CRI sees them, stored as documents
 * (metadata/cri.ts). Protobuf types never appear here; convert.ts maps both ways.
 */
import type { CriDoc } from "../metadata/index.js";
import type { ContainerResources } from "./resources.js";

/** NamespaceMode values of the CRI API (POD=0, CONTAINER=1, NODE=2, TARGET=3). */
export type NamespaceMode = 0 | 1 | 2 | 3;
export const NS_POD = 0;
export const NS_CONTAINER = 1;
export const NS_NODE = 2;

/**
 * `creating` and `removing` pods are invisible to CRI: the first while RunPodSandbox runs (a crash
 * there is rolled back at start-up), the second once RemovePodSandbox returned while the daemon
 * still tears the pod down (a crash there is finished at start-up).
 */
export type SandboxState = "creating" | "ready" | "notready" | "removing";

/** Whether CRI calls see the pod (lists, status, lookups by id). */
export const podVisible = (p: { state: SandboxState }): boolean => p.state !== "creating" && p.state !== "removing";

export interface PortMappingRecord {
  protocol: "tcp" | "udp" | "sctp";
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface SandboxRecord extends CriDoc {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  state: SandboxState;
  /** ns since epoch, decimal. */
  createdAtNs: string;
  /** As requested ("" = the default handler, reported as "" like containerd). */
  runtimeHandler: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logDirectory: string;
  hostname: string;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode };
  /** The pod's named network namespace; null with host networking. */
  netns: { name: string; path: string } | null;
  /** True once CNI has been set up and not yet torn down. */
  networkAttached: boolean;
  ips: string[];
  portMappings: PortMappingRecord[];
  /** The pause process (0 when not running). */
  pid: number;
  /** Holds hostname, hosts and resolv.conf for the pod's containers. */
  podDir: string;
  cgroupParent: string;
  /** The pod's security context allows privileged containers (absent in older records: no). */
  privileged?: boolean;
}

export type ContainerState = "created" | "running" | "exited" | "unknown";

export interface MountRecord {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  /** MountPropagation: 0 private, 1 rslave (host to container), 2 rshared (bidirectional). */
  propagation: 0 | 1 | 2;
}

export interface ContainerRecord extends CriDoc {
  sandboxId: string;
  name: string;
  attempt: number;
  /** The image as the request named it. */
  image: string;
  /** sha256:<config digest>. */
  imageId: string;
  /** repo@sha256:<manifest digest> (or the id when no repository is known). */
  imageRef: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mounts: MountRecord[];
  /** Absolute path of the CRI log, "" for none. */
  logPath: string;
  tty: boolean;
  stdin: boolean;
  /** Absent in records written before attach existed: false. */
  stdinOnce?: boolean;
  state: ContainerState;
  createdAtNs: string;
  startedAtNs: string;
  finishedAtNs: string;
  exitCode: number;
  reason: string;
  message: string;
  pid: number;
  /** Signal number sent by StopContainer before SIGKILL. */
  stopSignal: number;
  /** The Linux resources applied at create, then by UpdateContainerResources (null: none requested). */
  resources: ContainerResources | null;
  /** Set by an OOM event; turns the exit reason into OOMKilled. */
  oomKilled: boolean;
}

/**
 * Label on the core container of every CRI pod ("sandbox") and container ("container"): a core
 * container with it but no CRI record was being removed when the daemon stopped.
 */
export const CRI_KIND_LABEL = "io.skiff.cri.kind";

/** The name CRI reserves for a pod: name_namespace_uid_attempt (containerd's form). */
export function sandboxNameKey(m: { name: string; namespace: string; uid: string; attempt: number }): string {
  return [m.name, m.namespace, m.uid, String(m.attempt)].join("_");
}

/** The name CRI reserves for a container: name_podname_podnamespace_poduid_attempt. */
export function containerNameKey(name: string, attempt: number, pod: SandboxRecord): string {
  return [name, pod.name, pod.namespace, pod.uid, String(attempt)].join("_");
}

/** ns since epoch as a decimal string (ms precision from the clock). */
export function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

/** RFC 3339 with up to nanoseconds → ns since epoch, decimal. */
export function rfc3339ToNs(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(s);
  // A well-formed but impossible date (month 13) falls back too: BigInt(NaN) would throw.
  if (!m || Number.isNaN(Date.parse(`${m[1]}Z`))) return (BigInt(Date.parse(s) || Date.now()) * 1_000_000n).toString();
  const seconds = BigInt(Date.parse(`${m[1]}Z`) / 1000);
  return (seconds * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0") || "0")).toString();
}
