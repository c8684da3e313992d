/**
 * A process's cgroup membership, from /proc/<pid>/cgroup ("hierarchy-id:controllers:path" lines;
 * v2 is the line with id 0 and no controllers). This is where runc really put a container,
 * whatever its spec said (no cgroupsPath means a path of runc's choosing).
 */
import { readFile } from "node:fs/promises";

export interface ProcCgroups {
  /** v1 controller (and "name=systemd"-style named hierarchies) → path. */
  v1: Map<string, string>;
  /** The path in the cgroup2 hierarchy, if listed. */
  v2?: string;
}

export function parseProcCgroup(text: string): ProcCgroups {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const a = line.indexOf(":");
    const b = line.indexOf(":", a + 1);
    if (a < 0 || b < 0) continue;
    const id = line.slice(0, a);
    const controllers = line.slice(a + 1, b);
    const p = line.slice(b + 1);
    if (id === "0" && controllers === "") v2 = p;
    else for (const c of controllers.split(",")) if (c) v1.set(c, p);
  }
  return { v1, ...(v2 !== undefined ? { v2 } : {}) };
}

/** The cgroups of a live process; undefined when it is gone (ENOENT / ESRCH). */
export async function readProcCgroup(pid: number): Promise<ProcCgroups | undefined> {
  try {
    return parseProcCgroup(await readFile(`/proc/${pid}/cgroup`, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return undefined;
    throw err;
  }
}
