/**
 * A full file system under a daemon's state (or root) dir: a small tmpfs mounted on the dir and
 * filled to ENOSPC with one file, freed again by truncating it. Mount before the daemon starts
 * (it must find the dir already mounted) and unmount after it stopped and its shims are gone.
 */
import { open, mkdir, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { run, runChecked } from "../../src/util/exec.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";

export const FILL_FILE = ".skiff-fault-fill";

export interface SmallFs {
  readonly dir: string;
  readonly sizeBytes: number;
  /** Writes one file until the file system is full; returns how many bytes it took. */
  fill(): Promise<number>;
  /** Removes the fill file. */
  free(): Promise<void>;
  /** Unmounts (lazily if busy, so nothing under it survives a test); idempotent. */
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `sizeBytes` on `dir` (created if missing; must not be a mount point yet). */
export async function mountSmallFs(dir: string, sizeBytes: number): Promise<SmallFs> {
  await mkdir(dir, { recursive: true });
  if ((await mountsUnder(dir)).length) throw new Error(`${dir} is already (or has) a mount point`);
  await runChecked("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0711`, "skiff-fault-tmpfs", dir]);
  let mounted = true;
  return {
    dir,
    sizeBytes,
    fill: () => fillDir(dir),
    free: () => freeDir(dir),
    async unmount() {
      if (!mounted) return;
      const r = await run("umount", [dir]);
      if (r.code !== 0) await runChecked("umount", ["-l", dir]);
      mounted = false;
    },
  };
}

/** Writes `dir/FILL_FILE` until its file system is full; returns the file's size. */
export async function fillDir(dir: string): Promise<number> {
  const fillPath = path.join(dir, FILL_FILE);
  const fh = await open(fillPath, "a");
  let written = (await stat(fillPath)).size;
  try {
    // Big writes first, then page-sized ones, then single bytes: the last partial page is what a
    // small write (a config.json, a pid file) would need.
    for (const chunk of [1 << 20, 4096, 1]) {
      const buf = Buffer.alloc(chunk);
      for (;;) {
        try {
          const { bytesWritten } = await fh.write(buf);
          written += bytesWritten;
          if (bytesWritten < chunk) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw err;
        }
      }
    }
  } finally {
    await fh.close();
  }
  return written;
}

/** Removes what fillDir wrote. */
export async function freeDir(dir: string): Promise<void> {
  await rm(path.join(dir, FILL_FILE), { force: true });
}
