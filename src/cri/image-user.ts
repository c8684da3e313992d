/**
 * Resolving a container's user against its image: `/etc/passwd` and `/etc/group` are read from
 * the image's layers (the snapshot's mounts) without mounting anything, upper layer first.
 * A whiteout of the file in an upper layer is not honoured (an image that deletes /etc/passwd
 * but has one in a lower layer would still resolve against it).
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import type { RootfsMount } from "../containers/service.js";

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

/** Layer directories of a snapshot's mounts, topmost first. */
export function layerDirs(mounts: RootfsMount[]): string[] {
  const dirs: string[] = [];
  for (const m of mounts) {
    if (m.type === "bind" || m.type === "rbind") {
      dirs.push(m.source);
      continue;
    }
    if (m.type === "overlay") {
      const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
      const upper = opt("upperdir");
      if (upper) dirs.push(upper);
      dirs.push(...(opt("lowerdir")?.split(":") ?? []));
    }
  }
  return dirs;
}

/** The first layer's copy of `file` (absolute path inside the image), or undefined. */
export async function readImageFile(mounts: RootfsMount[], file: string): Promise<string | undefined> {
  for (const dir of layerDirs(mounts)) {
    try {
      return await readFile(path.join(dir, file), "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
    }
  }
  return undefined;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || line.startsWith("#")) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) out.push({ name: f[0]!, uid, gid });
  }
  return out;
}

function parseGroups(text: string): { name: string; gid: number; members: string[] }[] {
  const out = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || line.startsWith("#")) continue;
    const gid = Number(f[2]);
    if (Number.isInteger(gid)) out.push({ name: f[0]!, gid, members: f[3]!.split(",").filter(Boolean) });
  }
  return out;
}

export interface UserRequest {
  /** run_as_user; wins over everything else. */
  uid?: number;
  /** run_as_username. */
  username?: string;
  /** run_as_group. */
  gid?: number;
  supplementalGroups?: number[];
  /** The image config's User ("", "name", "uid", "name:group", "uid:gid"). */
  imageUser: string;
}

/**
 * The uid, gid and additional groups a container runs with, resolved as containerd does:
 * an explicit uid or username, else the image's user; the gid from run_as_group, the image's
 * `user:group`, or the passwd entry; additional groups from /etc/group memberships, with the
 * primary group always among them (as Docker and containerd give it: `id` shows
 * `groups=0(root),10(wheel)` for busybox's root), plus the requested supplemental groups.
 */
export async function resolveUser(mounts: RootfsMount[], req: UserRequest, what: string): Promise<ResolvedUser> {
  let userPart = "";
  let groupPart = "";
  if (req.uid !== undefined) userPart = String(req.uid);
  else if (req.username) userPart = req.username;
  else if (req.imageUser) [userPart = "", groupPart = ""] = req.imageUser.split(":");
  // Read even when uid and gid are both given: the user's name is what /etc/group lists (a uid
  // with run_as_group otherwise lost its additional groups; containerd keeps them).
  const passwd = await readImageFile(mounts, "/etc/passwd");
  const entries = passwd ? parsePasswd(passwd) : [];
  let uid = 0;
  let gid = 0;
  let name = "";
  if (userPart === "") {
    const root = entries.find((e) => e.uid === 0);
    name = root?.name ?? "root";
  } else if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const e = entries.find((x) => x.uid === uid);
    if (e) ((gid = e.gid), (name = e.name));
  } else {
    const e = entries.find((x) => x.name === userPart);
    if (!e) throw invalidArgument(`${what}: user "${userPart}" not found in the image's /etc/passwd`);
    ((uid = e.uid), (gid = e.gid), (name = e.name));
  }
  const groupsText = groupPart || name ? await readImageFile(mounts, "/etc/group") : undefined;
  const groups = groupsText ? parseGroups(groupsText) : [];
  if (groupPart) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`${what}: group "${groupPart}" not found in the image's /etc/group`);
      gid = g.gid;
    }
  }
  if (req.gid !== undefined) gid = req.gid;
  // The groups that list the user as a member (not the one named like the user), in the file's
  // order; the primary group first unless it is among them; then the requested ones.
  const additional = new Set<number>();
  if (name) for (const g of groups) if (g.name !== name && g.members.includes(name)) additional.add(g.gid);
  const ordered = additional.has(gid) ? [...additional] : [gid, ...additional];
  for (const g of req.supplementalGroups ?? []) if (!ordered.includes(g)) ordered.push(g);
  return { uid, gid, additionalGids: ordered };
}
