/**
 * Copying snapshotter (containerd's "native"), the fallback where overlayfs is unavailable:
 * every snapshot is a full tree at `<root>/snapshots/native/snapshots/<id>/fs`, made by copying
 * the parent with `cp -a` (owners, modes, xattrs, hard links, devices preserved). Mounts are
 * bind mounts of that tree. Slow and space-hungry, but works on any file system.
 */
import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import { runChecked } from "../util/exec.js";
import { DirSnapshotter } from "./base.js";
import type { Kind, Mount } from "./snapshotter.js";

export class NativeSnapshotter extends DirSnapshotter {
  readonly name = "native";

  /** `root` is the daemon root; this snapshotter lives in `<root>/snapshots/native`. */
  constructor(root: string) {
    super(path.resolve(root, "snapshots", "native"));
  }

  protected async populate(id: string, _kind: Kind, parents: string[], signal?: AbortSignal): Promise<void> {
    const fs = this.fsDir(id);
    const parent = parents[0];
    if (parent === undefined) {
      await mkdir(fs, { mode: 0o755 });
      return;
    }
    // `cp -a src/. dst` copies the tree including the root dir's own mode/owner/xattrs.
    await mkdir(fs, { mode: 0o755 });
    await runChecked("cp", ["-a", "--", `${this.fsDir(parent)}/.`, fs], { signal });
  }

  protected mountsOf(id: string, kind: Kind): Mount[] {
    return [{ type: "bind", source: this.fsDir(id), options: [kind === "view" ? "ro" : "rw", "rbind"] }];
  }
}
