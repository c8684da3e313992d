/**
 * The pause container's OCI spec: the image's process, the pod's namespaces (its own network,
 * IPC and UTS unless the host's are asked for; its own PID namespace unless NODE), hostname,
 * sysctls, cgroup parent and the CRI annotations containerd sets.
 */
import type { ImageRecord } from "../metadata/index.js";
import { specFromImage } from "../containers/from-image.js";
import { invalidArgument } from "../errors.js";
import { NS_NODE, type SandboxRecord } from "./records.js";
import { cgroupsPath, setNamespace, type Spec } from "./spec-util.js";
import { applySecurity, type ResolvedSecurity } from "./security.js";
import { bindDevShm, podShmSource } from "./pod-files.js";

export const CONTAINER_TYPE_ANNOTATION = "io.kubernetes.cri.container-type";

export interface PauseSpecOptions {
  sysctls: Record<string, string>;
  runAsUser?: number;
  runAsGroup?: number;
  readonlyRootfs: boolean;
  supplementalGroups: number[];
  /** The pod's seccomp and the pause's capabilities (resolvePodSecurity); absent: the defaults. */
  security?: ResolvedSecurity;
}

/** Sysctls that live in a namespace the pod may own; the rest would change the host. */
export function checkSysctls(sysctls: Record<string, string>, pod: Pick<SandboxRecord, "namespaces">): void {
  for (const [k, v] of Object.entries(sysctls)) {
    if (!/^[a-z0-9_]+([./][a-z0-9_-]+)+$/i.test(k)) throw invalidArgument(`sysctl "${k}": invalid name`);
    if (/[\n\0]/.test(v)) throw invalidArgument(`sysctl "${k}": invalid value`);
    const ipc = k.startsWith("kernel.shm") || k.startsWith("kernel.msg") || k === "kernel.sem" || k.startsWith("fs.mqueue.");
    const net = k.startsWith("net.");
    if (!ipc && !net) throw invalidArgument(`sysctl "${k}" is not namespaced (only net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* are)`);
    if (net && pod.namespaces.network === NS_NODE) throw invalidArgument(`sysctl "${k}" cannot be set with the host network`);
    if (ipc && pod.namespaces.ipc === NS_NODE) throw invalidArgument(`sysctl "${k}" cannot be set with the host IPC namespace`);
  }
}

export function pauseSpec(image: ImageRecord, pod: SandboxRecord, o: PauseSpecOptions): Spec {
  const hostNet = pod.namespaces.network === NS_NODE;
  const spec: Spec = specFromImage(image, {
    annotations: {
      [CONTAINER_TYPE_ANNOTATION]: "sandbox",
      "io.kubernetes.cri.sandbox-id": pod.id,
      "io.kubernetes.cri.sandbox-name": pod.name,
      "io.kubernetes.cri.sandbox-namespace": pod.namespace,
      "io.kubernetes.cri.sandbox-uid": pod.uid,
      "io.kubernetes.cri.sandbox-log-directory": pod.logDirectory,
    },
    ...(hostNet ? {} : { hostname: pod.hostname }),
  });
  if (o.runAsUser !== undefined) spec.process.user.uid = o.runAsUser;
  if (o.runAsGroup !== undefined) spec.process.user.gid = o.runAsGroup;
  if (o.supplementalGroups.length) spec.process.user.additionalGids = o.supplementalGroups;
  spec.root.readonly = o.readonlyRootfs;
  if (o.security) applySecurity(spec, o.security);
  setNamespace(spec, "network", pod.netns ? { path: pod.netns.path } : null);
  if (hostNet) setNamespace(spec, "uts", null);
  if (pod.namespaces.pid === NS_NODE) setNamespace(spec, "pid", null);
  if (pod.namespaces.ipc === NS_NODE) setNamespace(spec, "ipc", null);
  // The pod's shared /dev/shm (or the host's), read-only for the pause process, as containerd binds it.
  bindDevShm(spec, podShmSource(pod.podDir, pod.namespaces.ipc === NS_NODE), true);
  if (Object.keys(o.sysctls).length) spec.linux.sysctl = { ...o.sysctls };
  const cg = cgroupsPath(pod.cgroupParent, pod.id);
  if (cg) spec.linux.cgroupsPath = cg;
  return spec;
}
