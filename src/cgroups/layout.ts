/**
 * Where the cgroup hierarchies of this host are mounted, from /proc/self/mountinfo: cgroup v1
 * (one mount per controller, possibly co-mounted as "cpu,cpuacct"; "hybrid" hosts add a cgroup2
 * mount without controllers) or cgroup v2 alone ("unified"). The version is the one resource
 * controllers live on: a hybrid host counts as v1, as runc and containerd see it.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";

export type CgroupVersion = 1 | 2;

export interface V1Mount {
  /** Where the hierarchy is mounted on the host. */
  mountpoint: string;
  /** The cgroup the mount shows at its top ("/" unless mounted from inside a cgroup namespace). */
  root: string;
}

export interface CgroupLayout {
  version: CgroupVersion;
  /** v1 controllers ("memory", "cpuacct", "hugetlb", …) → their mount. Empty on v2. */
  v1: Map<string, V1Mount>;
  /** The cgroup2 mount (unified on v2, the controller-less one on hybrid hosts), if any. */
  v2?: V1Mount;
}

/** Mount options of a v1 cgroup mount that are not controller names. */
const NON_CONTROLLER_OPTIONS = new Set(["rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "xattr", "clone_children", "noprefix"]);

/** mountinfo escapes space, tab, newline and backslash as octal (\040 …). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Parses mountinfo text (proc(5): "id parent major:minor root mountpoint options [optional…] -
 * fstype source superoptions"). Unparsable lines are skipped: the kernel writes this file, and one
 * odd line must not hide the cgroup mounts.
 */
export function parseCgroupMounts(mountinfo: string): CgroupLayout {
  const v1 = new Map<string, V1Mount>();
  let v2: V1Mount | undefined;
  for (const line of mountinfo.split("\n")) {
    const dash = line.indexOf(" - ");
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(" ");
    const right = line.slice(dash + 3).split(" ");
    if (left.length < 5 || right.length < 3) continue;
    const mount = { mountpoint: unescapeMountinfo(left[4]!), root: unescapeMountinfo(left[3]!) };
    const fstype = right[0]!;
    if (fstype === "cgroup2") {
      v2 ??= mount;
    } else if (fstype === "cgroup") {
      for (const opt of right[2]!.split(",")) {
        if (NON_CONTROLLER_OPTIONS.has(opt) || opt.includes("=")) continue;
        if (!v1.has(opt)) v1.set(opt, mount);
      }
    }
  }
  // Resource controllers on v1 mounts make the host v1 (hybrid included); otherwise v2.
  const version: CgroupVersion = v1.has("memory") || v1.has("cpu") || v1.has("cpuacct") ? 1 : 2;
  return { version, v1, ...(v2 ? { v2 } : {}) };
}

/** Host directory of cgroup `cgPath` (as /proc/<pid>/cgroup or a spec's cgroupsPath shows it) in a mount. */
export function cgroupDir(mount: V1Mount, cgPath: string): string {
  const p = path.posix.normalize(`/${cgPath}`);
  const root = mount.root === "/" ? "" : mount.root;
  const rel = root && (p === root || p.startsWith(`${root}/`)) ? p.slice(root.length) : p;
  return path.join(mount.mountpoint, rel);
}

let cached: Promise<CgroupLayout> | undefined;

/** The host's layout, read once per process (mounts of /sys/fs/cgroup do not change under a daemon). */
export function hostCgroupLayout(): Promise<CgroupLayout> {
  cached ??= readFile("/proc/self/mountinfo", "utf8").then(parseCgroupMounts, (err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}
