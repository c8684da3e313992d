/**
 * Recursive removal of a directory tree, however deep. Node's `fs.rm` walks by full path and
 * fails with ENAMETOOLONG once a path passes PATH_MAX (a container can make such a tree in its
 * own snapshot, e.g. runc creating a working dir 11,000 levels deep); GNU rm walks relative to
 * each directory and has no such limit, so it takes over then. It stays on one file system:
 * nothing mounted below is followed.
 */
import { rm } from "node:fs/promises";
import { runChecked } from "./exec.js";

/** Removes `dir` and everything below it; a missing `dir` is fine. */
export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENAMETOOLONG") throw err;
    await runChecked("rm", ["-rf", "--one-file-system", "--", dir]);
  }
}
