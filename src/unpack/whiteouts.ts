/**
 * Converts OCI whiteouts, as extracted by tar, to overlayfs form:
 * - `.wh.<name>` → a 0:0 character device at `<name>` (the marker is removed);
 * - `.wh..wh..opq` → xattr `trusted.overlay.opaque=y` on its directory (marker removed);
 * - other `.wh..wh.*` entries (aufs bookkeeping) → removed.
 * The names come from the tar parser (no directory walk). Their parents were checked not to be
 * symlinks, and removals never follow symlinks, so nothing outside `dest` is touched.
 * Node has no mknod(2): one bash process runs every mknod/setfattr, fed NUL-separated paths
 * on stdin (any byte can be in a name; nothing is interpreted by a shell).
 */
import { rm } from "node:fs/promises";
import { internal } from "../errors.js";
import { run } from "../util/exec.js";

export interface WhiteoutList {
  whiteouts: readonly string[];
  opaques: readonly string[];
  aufsMeta: readonly string[];
}

const SCRIPT = `
while IFS= read -r -d '' op && IFS= read -r -d '' p; do
  case "$op" in
    w) mknod -- "$p" c 0 0 || exit 1 ;;
    o) setfattr -h -n trusted.overlay.opaque -v y -- "$p" || exit 1 ;;
  esac
done`;

/** `dest` plus a binary (latin1) relative path, as the bytes the kernel will see. */
export function destPath(dest: string, rel: string): Buffer {
  return rel === "" ? Buffer.from(dest) : Buffer.concat([Buffer.from(dest + "/"), Buffer.from(rel, "latin1")]);
}

export async function applyWhiteouts(dest: string, list: WhiteoutList, signal?: AbortSignal): Promise<void> {
  const ops: Buffer[] = [];
  const op = (kind: string, p: Buffer) => ops.push(Buffer.from(kind + "\0"), p, Buffer.from("\0"));
  for (const marker of new Set(list.whiteouts)) {
    const slash = marker.lastIndexOf("/");
    const dir = slash === -1 ? "" : marker.slice(0, slash + 1);
    const target = destPath(dest, dir + marker.slice(slash + 1 + ".wh.".length));
    await rm(destPath(dest, marker), { recursive: true, force: true });
    await rm(target, { recursive: true, force: true }); // the same layer may also have created it
    op("w", target);
  }
  for (const dir of new Set(list.opaques)) {
    await rm(destPath(dest, dir === "" ? ".wh..wh..opq" : `${dir}/.wh..wh..opq`), { force: true });
    op("o", destPath(dest, dir));
  }
  for (const meta of list.aufsMeta) await rm(destPath(dest, meta), { recursive: true, force: true });
  if (ops.length === 0) return;
  const res = await run("bash", ["-c", SCRIPT], { input: Buffer.concat(ops), signal });
  if (res.code !== 0) throw internal(`whiteouts in ${dest}: ${res.stderr.toString().trim() || `exit ${res.code}`}`);
}
