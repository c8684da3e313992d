/**
 * overlayfs snapshotter (containerd's "overlayfs"): `<root>/snapshots/overlayfs/snapshots/<id>/`
 * holds `fs` (the layer; overlay upperdir while active) and `work` (overlay workdir).
 * Committed snapshots are plain directories stacked as lowerdirs; nothing is ever copied.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { run } from "../util/exec.js";
import { DirSnapshotter } from "./base.js";
import type { Kind, Mount } from "./snapshotter.js";

export class OverlaySnapshotter extends DirSnapshotter {
  readonly name = "overlayfs";

  /** `root` is the daemon root; this snapshotter lives in `<root>/snapshots/overlayfs`. */
  constructor(root: string) {
    const dir = path.resolve(root, "snapshots", "overlayfs");
    // ',' separates mount options and ':' lowerdirs; overlay has no escaping for either.
    if (/[,:]/.test(dir)) throw invalidArgument(`overlay snapshotter root ${dir} must not contain ',' or ':'`);
    super(dir);
  }

  protected async populate(id: string, kind: Kind): Promise<void> {
    await mkdir(this.fsDir(id), { mode: 0o755 });
    if (kind === "active") await mkdir(path.join(this.snapshotDir(id), "work"), { mode: 0o711 });
  }

  /**
   * As containerd's overlay snapshotter: no parents → bind of the own fs (rw, or ro for a view);
   * a view of one layer → ro bind of that layer; otherwise overlay with the parents as lowerdirs
   * (nearest first), plus upperdir/workdir when active. The mount option string is limited to a
   * page (4 KiB), which bounds the layer count to roughly 80 at the default root.
   */
  protected mountsOf(id: string, kind: Kind, parents: string[]): Mount[] {
    if (parents.length === 0) {
      return [{ type: "bind", source: this.fsDir(id), options: [kind === "view" ? "ro" : "rw", "rbind"] }];
    }
    const options = ["index=off"];
    if (kind === "active") {
      options.push(`workdir=${path.join(this.snapshotDir(id), "work")}`, `upperdir=${this.fsDir(id)}`);
    } else if (parents.length === 1) {
      return [{ type: "bind", source: this.fsDir(parents[0]!), options: ["ro", "rbind"] }];
    }
    options.push(`lowerdir=${parents.map((p) => this.fsDir(p)).join(":")}`);
    return [{ type: "overlay", source: "overlay", options }];
  }
}

/**
 * Whether overlayfs can be mounted with upper/work dirs on the file system holding `dir`
 * (it cannot on overlayfs itself, some FUSE file systems, or without privileges).
 * Test-mounts a tiny overlay in a temp dir under `dir`; leaves nothing behind.
 */
export async function overlaySupported(dir: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const tmp = await mkdtemp(path.join(dir, ".overlay-check-"));
  let clean = true;
  try {
    const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((n) => path.join(tmp, n)) as [
      string,
      string,
      string,
      string,
    ];
    for (const d of [lower, upper, work, merged]) await mkdir(d);
    const res = await run(
      "mount",
      ["-t", "overlay", "overlay", "-o", `index=off,lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged],
      opts,
    );
    if (res.code !== 0) return false;
    try {
      await unmountAll(merged, { signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      clean = false;
      throw err;
    }
    return true;
  } finally {
    if (clean) await rm(tmp, { recursive: true, force: true });
  }
}
