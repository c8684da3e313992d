/**
 * OCI digests. skiff stores and verifies sha256 only (what every registry and image uses);
 * other algorithms are rejected as Unimplemented rather than silently accepted unverified.
 */
import { createHash } from "node:crypto";
import { invalidArgument, unimplemented } from "../errors.js";

export type Digest = `sha256:${string}`;

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const ANY_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Validates `d` and returns it typed; InvalidArgument if malformed, Unimplemented if not sha256. */
export function parseDigest(d: string): Digest {
  if (SHA256_RE.test(d)) return d as Digest;
  if (ANY_RE.test(d) && !d.startsWith("sha256:")) throw unimplemented(`digest ${d}: unsupported algorithm`);
  throw invalidArgument(`invalid digest ${JSON.stringify(d)}`);
}

/** The hex part of a sha256 digest (the blob's file name). */
export function digestHex(d: Digest): string {
  return d.slice("sha256:".length);
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}
