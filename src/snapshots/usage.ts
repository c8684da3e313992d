/**
 * Disk usage of a tree, like `du -s --inodes` and `du -s -B1` combined: allocated blocks, hard
 * links counted once, symlinks not followed, mount points not crossed. Async, one directory at
 * a time, so a large tree never blocks the event loop.
 */
import { lstat, readdir } from "node:fs/promises";
import * as path from "node:path";
import { throwIfAborted } from "../util/signal.js";
import type { Usage } from "./snapshotter.js";

export async function diskUsage(dir: string, signal?: AbortSignal): Promise<Usage> {
  const root = await lstat(dir);
  const seen = new Set<string>();
  let size = 0;
  let inodes = 0;
  const stack = [dir];
  const count = (st: { dev: number; ino: number; nlink: number; blocks: number }) => {
    if (st.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) return;
      seen.add(id);
    }
    inodes++;
    size += st.blocks * 512;
  };
  count(root);
  while (stack.length) {
    throwIfAborted(signal, "disk usage");
    const d = stack.pop()!;
    for (const name of await readdir(d)) {
      const p = path.join(d, name);
      const st = await lstat(p);
      if (st.dev !== root.dev) continue;
      count(st);
      if (st.isDirectory()) stack.push(p);
    }
  }
  return { size, inodes };
}
