/**
 * Which blobs a blob references, for garbage collection: an OCI/Docker index points at
 * manifests, a manifest at its config and layers. Only small JSON blobs are read; anything
 * else (layers, unparsable data) has no children.
 */
import { type Digest } from "./digest.js";

/** Blobs above this size are never parsed for references (manifests are far smaller). */
export const MAX_REF_BLOB = 4 << 20;

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

interface Descriptor {
  digest?: unknown;
}

export function childrenOf(blob: Uint8Array): Digest[] {
  if (blob.length > MAX_REF_BLOB) return [];
  let i = 0;
  while (i < blob.length && (blob[i] === 0x20 || blob[i] === 0x0a || blob[i] === 0x0d || blob[i] === 0x09)) i++;
  if (blob[i] !== 0x7b /* { */) return [];
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(blob.buffer, blob.byteOffset, blob.length).toString("utf8"));
  } catch {
    return [];
  }
  if (typeof doc !== "object" || doc === null) return [];
  const d = doc as { manifests?: unknown; config?: unknown; layers?: unknown; blobs?: unknown };
  const descs: unknown[] = [];
  for (const list of [d.manifests, d.layers, d.blobs]) if (Array.isArray(list)) descs.push(...(list as unknown[]));
  if (d.config !== undefined) descs.push(d.config);
  const out: Digest[] = [];
  for (const desc of descs) {
    const dg = typeof desc === "object" && desc !== null ? (desc as Descriptor).digest : undefined;
    if (typeof dg === "string" && SHA256_RE.test(dg)) out.push(dg as Digest);
  }
  return out;
}
