/**
 * CRI security contexts in the OCI spec, with containerd 1.6's rules: the capability set (the
 * default set, add/drop with "ALL"), privileged containers (every capability the daemon holds,
 * the host's devices, writable sysfs and cgroupfs, no masked or readonly paths, no seccomp) and
 * the seccomp profile (seccomp.ts). AppArmor and SELinux are refused by the RPC layer: the hosts
 * skiff runs on have neither.
 *
 * Invariant: everything that can fail on the request (an unknown capability, a privileged
 * container in an unprivileged pod, an unreadable seccomp profile) fails in `resolve*`, before
 * the pod or container exists; `apply*` only edits the spec.
 */
import { lstat, readFile, readdir } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import { DEFAULT_CAPABILITIES } from "../oci/spec.js";
import { loadSeccomp, seccompForSpec, UNCONFINED, type ResolvedSeccomp, type SeccompRequest } from "./seccomp.js";
import type { Spec } from "./spec-util.js";

/** Linux capabilities by number (capability.h, through CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
  "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
].map((c) => `CAP_${c}`); // prettier-ignore

/** Capability changes as requested, names normalized to "CAP_*". */
export interface CapabilityChange {
  addAll: boolean;
  dropAll: boolean;
  add: string[];
  drop: string[];
  ambient: string[];
}

export const NO_CAPABILITY_CHANGE: CapabilityChange = { addAll: false, dropAll: false, add: [], drop: [], ambient: [] };

/** A container's security options as the RPC layer validated them (no file read yet). */
export interface ContainerSecurity {
  privileged: boolean;
  capabilities: CapabilityChange;
  seccomp: SeccompRequest;
}

/** A pod's security options that shape the pause container and its members. */
export interface PodSecurity {
  privileged: boolean;
  seccomp: SeccompRequest;
}

export const DEFAULT_CONTAINER_SECURITY: ContainerSecurity = { privileged: false, capabilities: NO_CAPABILITY_CHANGE, seccomp: UNCONFINED };
export const DEFAULT_POD_SECURITY: PodSecurity = { privileged: false, seccomp: UNCONFINED };

export interface CapabilitySets {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface ResolvedSecurity {
  privileged: boolean;
  capabilities: CapabilitySets;
  seccomp: ResolvedSeccomp;
  /** The host's devices (privileged containers only). */
  devices: HostDevice[];
  /**
   * Mount /sys read-write. The kernel shares one sysfs superblock per network namespace and the
   * first mount decides whether it is read-only, so a privileged pod's pause (the first to mount
   * it) needs this too, or its privileged containers would get a read-only /sys.
   */
  writableSysfs: boolean;
}

export interface HostDevice {
  path: string;
  type: "c" | "b";
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/**
 * "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN (containerd only prefixes
 * and upper-cases; runc then refuses a name it does not know at start). Unknown is
 * InvalidArgument naming it, before anything is made.
 */
export function capabilityName(name: string, what: string): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(full)) throw invalidArgument(`${what}: unknown capability "${name.slice(0, 64)}"`);
  return full;
}

/** Normalizes CRI's add/drop/ambient lists; "ALL" (any case) in add or drop is a flag. */
export function capabilityChange(add: string[], drop: string[], ambient: string[], what: string): CapabilityChange {
  const isAll = (c: string) => c.trim().toUpperCase() === "ALL";
  return {
    addAll: add.some(isAll),
    dropAll: drop.some(isAll),
    add: add.filter((c) => !isAll(c)).map((c) => capabilityName(c, what)),
    drop: drop.filter((c) => !isAll(c)).map((c) => capabilityName(c, what)),
    ambient: ambient.map((c) => capabilityName(c, what)),
  };
}

/**
 * The process capabilities as containerd 1.6 computes them: the default set, then "ALL" added
 * (every capability the daemon holds), then "ALL" dropped, then single adds, then single drops.
 * Bounding, effective and permitted are the same set; inheritable stays empty (containerd ≥ 1.6.2,
 * after CVE-2022-24769) except for the ambient capabilities, which the kernel requires there.
 */
export function capabilitySets(change: CapabilityChange, hostCaps: string[], privileged: boolean): CapabilitySets {
  let set: string[] = privileged ? [...hostCaps] : [...DEFAULT_CAPABILITIES];
  if (!privileged) {
    if (change.addAll) set = [...hostCaps];
    if (change.dropAll) set = [];
    for (const c of change.add) if (!set.includes(c)) set.push(c);
    set = set.filter((c) => !change.drop.includes(c));
  }
  const ambient = [...new Set(change.ambient)];
  return { bounding: set, effective: [...set], permitted: [...set], inheritable: [...ambient], ambient };
}

let hostCapsCache: Promise<string[]> | undefined;

/** The daemon's own effective capabilities ("ALL" and privileged mean these, as in containerd). */
export function hostCapabilities(): Promise<string[]> {
  hostCapsCache ??= readFile("/proc/self/status", "utf8").then(
    (s) => capabilitiesFromMask(/^CapEff:\s*([0-9a-f]+)$/m.exec(s)?.[1] ?? "0"),
    (err: unknown) => {
      hostCapsCache = undefined;
      throw err;
    },
  );
  return hostCapsCache;
}

/** Names of the known capabilities set in a /proc/<pid>/status hex mask. */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

/** Directories of /dev that are not devices of the host to copy (as containerd skips them). */
const SKIP_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/** The host's character and block devices under `dir` (/dev), for privileged containers. */
export async function hostDevices(dir = "/dev"): Promise<HostDevice[]> {
  const out: HostDevice[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await walk(p);
        continue;
      }
      // The console is the container's own (runc binds it when a terminal is asked for).
      if (e.name === "console" || !(e.isCharacterDevice() || e.isBlockDevice())) continue;
      const st = await lstat(p, { bigint: true }).catch(() => undefined);
      if (!st) continue; // gone meanwhile
      const rdev = st.rdev;
      out.push({
        path: p.replace(dir, "/dev"),
        type: e.isCharacterDevice() ? "c" : "b",
        major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
        minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
        fileMode: Number(st.mode & 0o777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
      });
    }
  };
  await walk(dir);
  return out;
}

/**
 * Everything the container's security context needs from the host, checked against its pod.
 * InvalidArgument (nothing made yet) for a privileged container in an unprivileged pod or an
 * unusable seccomp profile.
 */
export async function resolveContainerSecurity(
  sec: ContainerSecurity,
  pod: { privileged?: boolean },
  what: string,
  signal?: AbortSignal,
): Promise<ResolvedSecurity> {
  if (sec.privileged && !pod.privileged) throw invalidArgument(`${what}: no privileged container allowed in sandbox (the pod is not privileged)`);
  const hostCaps = sec.privileged || sec.capabilities.addAll ? await hostCapabilities() : [];
  return {
    privileged: sec.privileged,
    capabilities: capabilitySets(sec.capabilities, hostCaps, sec.privileged),
    seccomp: sec.privileged ? UNCONFINED : await loadSeccomp(sec.seccomp, what, signal),
    devices: sec.privileged ? await hostDevices() : [],
    writableSysfs: sec.privileged,
  };
}

/**
 * The pause container's: default capabilities, the pod's seccomp (none when privileged), and a
 * writable /sys in a privileged pod (see `writableSysfs`).
 */
export async function resolvePodSecurity(sec: PodSecurity, what: string, signal?: AbortSignal): Promise<ResolvedSecurity> {
  return {
    privileged: false,
    capabilities: capabilitySets(NO_CAPABILITY_CHANGE, [], false),
    seccomp: sec.privileged ? UNCONFINED : await loadSeccomp(sec.seccomp, what, signal),
    devices: [],
    writableSysfs: sec.privileged,
  };
}

/**
 * Applies a resolved security context to a spec built by `defaultSpec` (masked and readonly
 * paths already chosen by the caller; a privileged container clears them).
 */
export function applySecurity(spec: Spec, sec: ResolvedSecurity): void {
  const caps = sec.capabilities;
  spec.process.capabilities = {
    bounding: caps.bounding,
    effective: caps.effective,
    permitted: caps.permitted,
    ...(caps.inheritable.length ? { inheritable: caps.inheritable } : {}),
    ...(caps.ambient.length ? { ambient: caps.ambient } : {}),
  };
  const seccomp = seccompForSpec(sec.seccomp, sec.privileged, caps.bounding);
  if (seccomp) spec.linux.seccomp = seccomp;
  else delete spec.linux.seccomp;
  const writable = (type: string) => {
    for (const m of spec.mounts as { type: string; options?: string[] }[]) {
      if (m.type === type && m.options) m.options = m.options.map((o) => (o === "ro" ? "rw" : o));
    }
  };
  if (sec.writableSysfs) writable("sysfs");
  if (!sec.privileged) return;
  delete spec.linux.maskedPaths;
  delete spec.linux.readonlyPaths;
  writable("cgroup");
  spec.linux.devices = sec.devices.map((d) => ({ ...d }));
  spec.linux.resources ??= {};
  spec.linux.resources.devices = [{ allow: true, access: "rwm" }];
}
