/**
 * A CRI container's OCI spec from its ContainerConfig, its image and its pod: process (command,
 * args, env, working dir, user), the pod's namespaces joined through the pause process, the pod
 * files and the requested bind mounts with their propagation, the resources, and the security
 * context (security.ts: capabilities, seccomp, privileged; masked and readonly paths given by the
 * request replace the defaults). Options skiff lacks are refused by the RPC layer, never ignored.
 */
import { readFile } from "node:fs/promises";
import { hostname as nodeHostname } from "node:os";
import * as path from "node:path";
import type { ImageRecord } from "../metadata/index.js";
import { DEFAULT_PATH_ENV, defaultSpec, mergeEnv } from "../oci/spec.js";
import { invalidArgument } from "../errors.js";
import { NS_CONTAINER, NS_NODE, NS_POD, type MountRecord, type NamespaceMode, type SandboxRecord } from "./records.js";
import { CONTAINER_TYPE_ANNOTATION } from "./pod-spec.js";
import { cgroupsPath, checkExecutable, setNamespace, type Spec } from "./spec-util.js";
import type { ResolvedUser } from "./image-user.js";
import { applySecurity, type ResolvedSecurity } from "./security.js";
import { applyResources, type ContainerResources } from "./resources.js";
import { bindDevShm } from "./pod-files.js";

export type { ContainerResources } from "./resources.js";

export interface ContainerSpecInput {
  id: string;
  name: string;
  command: string[];
  args: string[];
  workingDir: string;
  envs: [string, string][];
  mounts: MountRecord[];
  tty: boolean;
  stdin: boolean;
  user: ResolvedUser;
  readonlyRootfs: boolean;
  noNewPrivs: boolean;
  maskedPaths: string[];
  readonlyPaths: string[];
  namespaces: { pid: NamespaceMode; ipc: NamespaceMode; network: NamespaceMode; targetPid?: number };
  /** Capabilities, seccomp, privileged (resolveContainerSecurity); absent: the defaults. */
  security?: ResolvedSecurity;
  resources?: ContainerResources;
  /** The pod's shared /dev/shm to bind (podShmSource); absent: a private tmpfs (a pod made before pods had one). */
  devShm?: string;
}

const PROPAGATION = ["rprivate", "rslave", "rshared"] as const;

/** The daemon's own oom_score_adj: a container may not go below it (no CAP_SYS_RESOURCE needed). */
export async function ownOomScoreAdj(): Promise<number> {
  try {
    return Number((await readFile("/proc/self/oom_score_adj", "utf8")).trim()) || 0;
  } catch {
    return 0;
  }
}

/** `process.args` as containerd builds it: command replaces the entrypoint, args replace cmd. */
export function containerArgs(image: ImageRecord, command: string[], args: string[], what = `container of image "${image.name}"`): string[] {
  const c = image.config;
  const out = command.length ? [...command, ...args] : [...c.entrypoint, ...(args.length ? args : c.cmd)];
  if (out.length === 0) throw invalidArgument(`image "${image.name}" has no entrypoint or cmd, and the container gives no command`);
  checkExecutable(out[0]!, what);
  return out;
}

/**
 * The process environment as containerd and CRI-O build it: HOSTNAME (the pod's hostname, the
 * node's for a host-network pod), then the image's (which may set HOSTNAME itself), then the
 * container config's, each overriding the earlier ones by name.
 */
export function containerEnv(image: ImageRecord, pod: SandboxRecord, envs: [string, string][]): string[] {
  const hostname = pod.namespaces.network === NS_NODE ? nodeHostname() : pod.hostname;
  const imageEnv = image.config.env.length ? image.config.env : [DEFAULT_PATH_ENV];
  return mergeEnv(mergeEnv([`HOSTNAME=${hostname}`], imageEnv), envs.map(([k, v]) => `${k}=${v}`));
}

export function containerSpec(image: ImageRecord, pod: SandboxRecord, c: ContainerSpecInput, minOomScoreAdj: number): Spec {
  const env = containerEnv(image, pod, c.envs);
  const spec: Spec = defaultSpec({
    args: containerArgs(image, c.command, c.args, `container "${c.name}"`),
    env,
    cwd: c.workingDir || image.config.workingDir || "/",
    terminal: c.tty,
    uid: c.user.uid,
    gid: c.user.gid,
    readonlyRootfs: c.readonlyRootfs,
    annotations: {
      [CONTAINER_TYPE_ANNOTATION]: "container",
      "io.kubernetes.cri.container-name": c.name,
      "io.kubernetes.cri.sandbox-id": pod.id,
      "io.kubernetes.cri.sandbox-name": pod.name,
      "io.kubernetes.cri.sandbox-namespace": pod.namespace,
      "io.kubernetes.cri.sandbox-uid": pod.uid,
      "io.kubernetes.cri.image-name": image.name,
    },
  });
  if (c.user.additionalGids.length) spec.process.user.additionalGids = c.user.additionalGids;
  spec.process.noNewPrivileges = c.noNewPrivs;
  if (c.maskedPaths.length) spec.linux.maskedPaths = c.maskedPaths;
  if (c.readonlyPaths.length) spec.linux.readonlyPaths = c.readonlyPaths;
  // After the paths: a privileged container clears them, whatever the request listed.
  if (c.security) applySecurity(spec, c.security);

  // Namespaces: network, IPC and UTS are the pod's (through the pause process) unless the host's.
  const pauseNs = (t: string) => ({ path: `/proc/${pod.pid}/ns/${t}` });
  setNamespace(spec, "network", pod.netns ? { path: pod.netns.path } : null);
  setNamespace(spec, "uts", pod.namespaces.network === NS_NODE ? null : pauseNs("uts"));
  setNamespace(spec, "ipc", pod.namespaces.ipc === NS_NODE ? null : pauseNs("ipc"));
  switch (c.namespaces.pid) {
    case NS_POD:
      setNamespace(spec, "pid", pod.namespaces.pid === NS_NODE ? null : pauseNs("pid"));
      break;
    case NS_CONTAINER:
      setNamespace(spec, "pid", "new");
      break;
    case NS_NODE:
      setNamespace(spec, "pid", null);
      break;
    case 3:
      if (!c.namespaces.targetPid) throw invalidArgument(`container "${c.name}": pid namespace TARGET needs a running target container`);
      setNamespace(spec, "pid", { path: `/proc/${c.namespaces.targetPid}/ns/pid` });
      break;
    default: {
      const never: never = c.namespaces.pid;
      throw invalidArgument(`container "${c.name}": unknown pid namespace mode ${String(never)}`);
    }
  }

  // Mounts: requested binds first win over the pod files at the same path.
  const wanted = new Set(c.mounts.map((m) => path.posix.normalize(m.containerPath)));
  // A default mount (e.g. /dev/shm) at a path the request mounts gives way to it, as in containerd.
  spec.mounts = (spec.mounts as { destination: string }[]).filter((m) => !wanted.has(path.posix.normalize(m.destination)));
  const mounts = spec.mounts as { destination: string; type: string; source: string; options: string[] }[];
  for (const f of ["hostname", "hosts", "resolv.conf"]) {
    const dest = `/etc/${f}`;
    if (wanted.has(dest)) continue;
    mounts.push({ destination: dest, type: "bind", source: path.join(pod.podDir, f), options: ["rbind", "rprivate", c.readonlyRootfs ? "ro" : "rw"] });
  }
  if (c.devShm && !wanted.has("/dev/shm")) bindDevShm(spec, c.devShm, false);
  let rootProp = "";
  for (const m of c.mounts) {
    const prop = PROPAGATION[m.propagation];
    mounts.push({ destination: m.containerPath, type: "bind", source: m.hostPath, options: ["rbind", prop, m.readonly ? "ro" : "rw"] });
    if (prop === "rshared") rootProp = "rshared";
    else if (prop === "rslave" && rootProp === "") rootProp = "rslave";
  }
  if (rootProp) spec.linux.rootfsPropagation = rootProp;

  const cg = cgroupsPath(pod.cgroupParent, c.id);
  if (cg) spec.linux.cgroupsPath = cg;
  if (c.resources) applyResources(spec, c.resources, minOomScoreAdj);
  return spec;
}
