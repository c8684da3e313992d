/**
 * Process and temp-dir helpers for tests. Linux only (reads /proc); async fs only.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountsUnder } from "./leaks.js";

/**
 * The one-letter state of `pid` from /proc/PID/stat ("R", "S", "Z", …), or undefined when the
 * process does not exist. The command name may contain spaces and parentheses, so the state is
 * read after the last ")".
 */
export async function procState(pid: number): Promise<string | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT") || isErrno(err, "ESRCH")) return undefined;
    throw err;
  }
  const close = stat.lastIndexOf(")");
  return stat.slice(close + 2, close + 3) || undefined;
}

/** Liveness and exit waits are the runtime's own (zombies count as exited). */
export { isAlive } from "../util/proc.js";
import { waitForExit } from "../util/proc.js";

/** Resolves true once `pid` has exited, false when `timeoutMs` passed first. */
export function waitForPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  return waitForExit(pid, timeoutMs);
}

export interface TmpDir {
  /** Absolute path of the new, empty directory (mode 0700). */
  readonly path: string;
  /**
   * Removes the directory tree. Idempotent. Refuses (rejects, removing nothing) while anything
   * is still mounted under it: a recursive delete would walk into the mount and destroy what it
   * shows, and a leftover mount is a leak the test should report, not hide.
   */
  cleanup(): Promise<void>;
}

/**
 * Creates a fresh directory under os.tmpdir() named `<prefix>XXXXXX`. Keep prefixes short:
 * unix socket paths inside it must fit in 108 bytes.
 */
export async function tmpDir(prefix: string): Promise<TmpDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  let done = false;
  return {
    path,
    async cleanup() {
      if (done) return;
      const mounts = await mountsUnder([path]);
      if (mounts.length > 0) {
        const list = mounts.map((m) => `  ${m.mountPoint} (${m.fsType})`).join("\n");
        throw new Error(`tmpDir cleanup: refusing to remove ${path}, still mounted:\n${list}`);
      }
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
      done = true;
    },
  };
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
