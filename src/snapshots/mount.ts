/**
 * Performing the mounts a snapshotter returns (tests, image unpack checks, tools; the shim mounts
 * container rootfs itself), and finding the directory a layer is written into.
 * Node cannot call mount(2): this spawns mount(8).
 */
import { invalidArgument } from "../errors.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { runChecked } from "../util/exec.js";
import type { Mount } from "./snapshotter.js";

/** Mounts `mounts` in order at `target`; on failure, whatever was mounted there is unmounted. */
export async function mountAll(mounts: Mount[], target: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  try {
    for (const m of mounts) {
      const args: string[] = [];
      let options = m.options;
      if (m.type === "bind") {
        if (!options.includes("bind") && !options.includes("rbind")) options = [...options, "bind"];
      } else args.push("-t", m.type);
      if (options.length) args.push("-o", options.join(","));
      await runChecked("mount", [...args, m.source, target], opts);
    }
  } catch (err) {
    await unmountAll(target, { signal: AbortSignal.timeout(30_000) }).catch(() => {});
    throw err;
  }
}

/**
 * The directory holding the writable layer of an active snapshot, given its mounts: the overlay
 * `upperdir`, or the source of a read-write bind mount. Layers are unpacked straight into it
 * (no mount needed), as containerd's overlay applier does.
 */
export function upperDir(mounts: Mount[]): string {
  if (mounts.length !== 1) throw invalidArgument(`expected one mount, got ${mounts.length}`);
  const m = mounts[0]!;
  if (m.type === "overlay") {
    const up = m.options.find((o) => o.startsWith("upperdir="));
    if (up) return up.slice("upperdir=".length);
  } else if (m.type === "bind" && !m.options.includes("ro")) {
    return m.source;
  }
  throw invalidArgument(`mount ${m.type} ${m.options.join(",")} has no writable layer`);
}
