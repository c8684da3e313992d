/**
 * Image names: Docker-style references normalized the way containerd's CRI stores them
 * (`busybox` → `docker.io/library/busybox:latest`; a digest reference keeps only the digest).
 */
import { parseDigest } from "../content/digest.js";
import { invalidArgument } from "../errors.js";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

export interface Reference {
  /** e.g. `docker.io/library/busybox` */
  repository: string;
  tag?: string;
  digest?: string;
}

/** Parses and normalizes `ref`; InvalidArgument if it is not a valid reference. */
export function parseReference(ref: string): Reference {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalidArgument(`image reference ${JSON.stringify(ref)}: invalid tag`);
  }
  const parts = rest.split("/");
  let domain = "docker.io";
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    if (!DOMAIN.test(first)) throw invalidArgument(`image reference ${JSON.stringify(ref)}: invalid domain`);
    domain = first === "index.docker.io" ? "docker.io" : first;
    parts.shift();
  }
  if (domain === "docker.io" && parts.length === 1) parts.unshift("library");
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) {
    throw invalidArgument(`image reference ${JSON.stringify(ref)}: invalid repository name`);
  }
  const out: Reference = { repository: `${domain}/${parts.join("/")}` };
  if (digest !== undefined) out.digest = digest;
  else out.tag = tag ?? "latest";
  return out;
}

/** The normalized name string: `repo@digest` for digest references, else `repo:tag`. */
export function normalizeName(ref: string): string {
  const r = parseReference(ref);
  return r.digest !== undefined ? `${r.repository}@${r.digest}` : `${r.repository}:${r.tag}`;
}
