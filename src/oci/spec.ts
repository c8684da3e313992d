/**
 * A default OCI runtime spec (config.json) for a process in its own namespaces, close to what
 * `runc spec` and containerd's defaults produce. The CRI layer builds on it; the debug CLI and
 * tests use it directly.
 */

export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

export const DEFAULT_MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
];

export const DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

export const DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface SpecOptions {
  args: string[];
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  hostname?: string;
  annotations?: Record<string, string>;
  uid?: number;
  gid?: number;
  readonlyRootfs?: boolean;
  /** cgroups path (v1: relative to each controller's root). */
  cgroupsPath?: string;
}

export function defaultSpec(o: SpecOptions): Record<string, unknown> {
  const caps = [...DEFAULT_CAPABILITIES];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: o.terminal ?? false,
      user: { uid: o.uid ?? 0, gid: o.gid ?? 0 },
      args: o.args,
      env: o.env ?? [DEFAULT_PATH_ENV],
      cwd: o.cwd ?? "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: o.readonlyRootfs ?? false },
    hostname: o.hostname ?? "",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    ],
    ...(o.annotations ? { annotations: o.annotations } : {}),
    linux: {
      ...(o.cgroupsPath ? { cgroupsPath: o.cgroupsPath } : {}),
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: DEFAULT_MASKED_PATHS,
      readonlyPaths: DEFAULT_READONLY_PATHS,
    },
  };
}

/** A bind mount of a host directory as the task's rootfs (the shim mounts it at bundle/rootfs). */
export function bindRootfs(dir: string, readonly = false): { type: string; source: string; target: string; options: string[] }[] {
  return [{ type: "bind", source: dir, target: "", options: ["rbind", readonly ? "ro" : "rw"] }];
}

/** Appends `extra` env entries; one whose NAME matches an entry of `base` replaces it. */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const name = (e: string) => {
    const i = e.indexOf("=");
    return i < 0 ? e : e.slice(0, i);
  };
  const overridden = new Set(extra.map(name));
  return [...base.filter((e) => !overridden.has(name(e))), ...extra];
}
