/**
 * Mount table helpers. Node cannot call mount(2)/umount2(2): unmounting spawns umount(8).
 * Reading /proc/self/mountinfo is async.
 */
import { readFile } from "node:fs/promises";
import { run } from "../util/exec.js";
import { internal } from "../errors.js";

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export async function readMounts(): Promise<MountInfo[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const l = left.split(" ");
    const r = right.split(" ");
    out.push({ mountPoint: unescape(l[4] ?? ""), fsType: r[0] ?? "", source: unescape(r[1] ?? "") });
  }
  return out;
}

/** Mount points equal to `dir` or below it, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith("/") ? dir : dir + "/";
  const points = (await readMounts()).map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Unmounts everything at or below `dir` (lazily if busy). Idempotent: nothing mounted is success.
 */
export async function unmountAll(dir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  for (let round = 0; round < 8; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) {
      const res = await run("umount", [p], opts);
      if (res.code !== 0) {
        const lazy = await run("umount", ["-l", p], opts);
        if (lazy.code !== 0 && (await mountsUnder(p)).includes(p)) {
          throw internal(`unmount ${p}: ${lazy.stderr.toString().trim() || res.stderr.toString().trim()}`);
        }
      }
    }
  }
  const left = await mountsUnder(dir);
  if (left.length) throw internal(`unmount ${dir}: still mounted: ${left.join(", ")}`);
}
