/**
 * CRI image conversion: image records (one per name) → `runtime.v1.Image` (one per image id), and
 * a pull's `AuthConfig` → registry credentials. Pure functions; safe anywhere.
 *
 * What containerd 1.6's CRI reports, and so do we:
 * - id: "sha256:<config digest>"; pinned: false; spec unset (containerd 1.6.20 leaves it nil).
 * - repo_tags: every name that is a tag; repo_digests: every name that is a digest reference
 *   (`repo@sha256:…`). PullImage records `repo@<manifest>` beside the tag, as containerd's CRI
 *   does; imported images (the built-ins) have none, as in containerd.
 * - size: bytes of manifest + config + layers as stored (compressed), the content size.
 * - uid / username: from the config's `User` (before any ":group"): a number is the uid, anything
 *   else the username; an empty user sets neither.
 */
import { create } from "@bufbuild/protobuf";
import { type AuthConfig, type Image, ImageSchema } from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import { parseReference } from "../images/reference.js";
import type { ImageRecord } from "../metadata/images.js";
import type { Credentials } from "../registry/hosts.js";

/** The reference in a request's ImageSpec; InvalidArgument naming the RPC when it is empty. */
export function requireImageRef(spec: { image: string } | undefined, rpc: string): string {
  const ref = spec?.image ?? "";
  if (ref === "") throw invalidArgument(`${rpc}: image is empty`);
  return ref;
}

/** Records grouped by image id (config digest), in first-seen order. */
export function groupById(records: ImageRecord[]): ImageRecord[][] {
  const byId = new Map<string, ImageRecord[]>();
  for (const r of records) {
    const g = byId.get(r.configDigest);
    if (g) g.push(r);
    else byId.set(r.configDigest, [r]);
  }
  return [...byId.values()];
}

/** Tags and digest references of `records` (names of one image id), each sorted and unique. */
export function repoTagsAndDigests(records: ImageRecord[]): { repoTags: string[]; repoDigests: string[] } {
  const tags = new Set<string>();
  const digests = new Set<string>();
  for (const r of records) {
    let ref;
    try {
      ref = parseReference(r.name);
    } catch {
      // A name the parser refuses (stored by an older version?) is still shown as a tag.
      tags.add(r.name);
      continue;
    }
    if (ref.digest !== undefined) digests.add(`${ref.repository}@${ref.digest}`);
    else tags.add(r.name);
  }
  return { repoTags: [...tags].sort(), repoDigests: [...digests].sort() };
}

/** uid (numeric user) or username from an image config `User` ("name", "1000", "1000:1000"). */
export function imageUser(user: string): { uid?: bigint; username?: string } {
  if (user === "") return {};
  const name = user.split(":")[0]!;
  // containerd: strconv.ParseInt(user, 10, 64); a value out of int64 range is a name there too.
  if (/^-?\d+$/.test(name)) {
    const n = BigInt(name);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return { uid: n };
  }
  return { username: name };
}

/** The CRI image for the records of one image id (all must share `configDigest`; at least one). */
export function toCriImage(records: ImageRecord[]): Image {
  const first = records[0];
  if (first === undefined) throw new Error("toCriImage: no records");
  const { uid, username } = imageUser(first.config.user);
  return create(ImageSchema, {
    id: first.configDigest,
    ...repoTagsAndDigests(records),
    size: BigInt(first.size),
    ...(uid !== undefined ? { uid: { value: uid } } : {}),
    username: username ?? "",
    pinned: false,
  });
}

/**
 * Registry credentials of a pull: username/password; or `auth`, base64 of "user:password" (the
 * password may contain ":"); or a registry / identity token, sent as a bearer token. Undefined
 * when the AuthConfig is absent or empty. InvalidArgument (naming `ref`) for a malformed `auth`.
 */
export function credentialsOf(a: AuthConfig | undefined, ref: string): Credentials | undefined {
  if (!a) return undefined;
  if (a.registryToken) return { token: a.registryToken };
  if (a.identityToken) return { token: a.identityToken };
  if (a.username || a.password) return { username: a.username, password: a.password };
  if (a.auth) {
    const text = Buffer.from(a.auth, "base64").toString("utf8");
    const i = text.indexOf(":");
    if (i < 0) throw invalidArgument(`pull ${JSON.stringify(ref)}: auth is not base64 of "user:password"`);
    return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  return undefined;
}
