/**
 * Reference → manifest resolution against a registry's endpoints (mirrors first, then upstream).
 *
 * HEAD `/v2/<repo>/manifests/<tag|digest>` with an Accept header listing OCI index, OCI manifest,
 * Docker manifest list and Docker schema 2, then GET the manifest by digest. Every manifest body is
 * verified against its digest (the one pulled by, or the registry's Docker-Content-Digest). An
 * endpoint answering 404 (or unreachable, for a mirror) is skipped; when none has the reference →
 * NotFound naming it. Schema 1 manifests → InvalidArgument "unsupported".
 */
import { type Digest, sha256Digest } from "../content/digest.js";
import { invalidArgument, isFailedPrecondition, isInvalidArgument, notFound, unavailable } from "../errors.js";
import { throwIfAborted } from "../util/signal.js";
import type { Authorizer } from "./auth.js";
import { readBody } from "./client.js";
import { type Endpoint, formatReference, type Reference } from "./hosts.js";

export const MediaType = {
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  DockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(", ");

/** Manifests and indexes larger than this are rejected (containerd uses 4 MiB as well). */
export const MAX_MANIFEST = 4 << 20;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  /** The endpoint that served it; blobs are fetched from there first. */
  endpoint: Endpoint;
}

export const isIndexType = (mt: string) => mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
export const isManifestType = (mt: string) => mt === MediaType.OciManifest || mt === MediaType.DockerManifest;

export interface ResolveContext {
  auth: Authorizer;
  endpoints: Endpoint[];
  signal?: AbortSignal;
}

/** Resolves `ref` (tag or digest) to its top-level descriptor and bytes. */
export async function resolve(ref: Reference, ctx: ResolveContext): Promise<FetchedManifest> {
  const name = formatReference(ref);
  const want = ref.digest ?? ref.tag!;
  let lastErr: unknown;
  for (const ep of ctx.endpoints) {
    throwIfAborted(ctx.signal, `resolve ${name}`);
    try {
      return await fetchManifest(ref, want, ep, ctx);
    } catch (err) {
      // From the upstream, auth failures and bad content are answers, not absence: report them.
      // A mirror that fails in any way falls through to the next endpoint (as containerd does).
      if (ctx.signal?.aborted) throw err;
      if (!ep.mirror && (isFailedPrecondition(err) || isInvalidArgument(err))) throw err;
      lastErr = err;
    }
  }
  if (lastErr && !(lastErr instanceof NotFoundHere)) throw lastErr;
  throw notFound(`image ${name}: not found`, lastErr);
}

/** Fetches the manifest `digest` of `ref`'s repository from `ep` (children of an index). */
export async function fetchManifestByDigest(ref: Reference, digest: Digest, ep: Endpoint, ctx: ResolveContext): Promise<FetchedManifest> {
  return fetchManifest({ ...ref, digest }, digest, ep, ctx);
}

class NotFoundHere extends Error {
  readonly notFound = true;
}

async function fetchManifest(ref: Reference, want: string, ep: Endpoint, ctx: ResolveContext): Promise<FetchedManifest> {
  const name = formatReference(ref);
  const path = (r: string) => `/v2/${ref.repository}/manifests/${r}`;
  const headers = { accept: MANIFEST_ACCEPT };
  let digest: Digest | undefined = ref.digest;
  if (!digest) {
    const head = await ctx.auth.fetch(ep, ref.repository, path(want), { method: "HEAD", headers, signal: ctx.signal });
    head.body.resume();
    if (head.status === 404) throw new NotFoundHere(`${ep.host}: ${name} not found`);
    if (head.status === 200) {
      const d = head.headers["docker-content-digest"];
      if (typeof d === "string" && /^sha256:[a-f0-9]{64}$/.test(d)) digest = d as Digest;
    }
    // Some registries reject HEAD (405) or omit the digest header: fall back to GET by tag.
    else if (head.status >= 500) throw unavailable(`${ep.host}: HEAD ${name}: HTTP ${head.status}`);
  }
  const res = await ctx.auth.fetch(ep, ref.repository, path(digest ?? want), { headers, signal: ctx.signal });
  if (res.status === 404) {
    res.body.resume();
    throw new NotFoundHere(`${ep.host}: ${name} not found`);
  }
  if (res.status !== 200) {
    res.body.resume();
    throw unavailable(`${ep.host}: GET manifest ${name}: HTTP ${res.status}`);
  }
  const bytes = await readBody(res, MAX_MANIFEST);
  const actual = sha256Digest(bytes);
  if (!digest) {
    const d = res.headers["docker-content-digest"];
    digest = typeof d === "string" && d.startsWith("sha256:") ? (d as Digest) : actual;
  }
  if (actual !== digest) {
    throw invalidArgument(`image ${name}: manifest from ${ep.host} does not match its digest: expected ${digest}, got ${actual}`);
  }
  const mediaType = manifestMediaType(bytes, String(res.headers["content-type"] ?? ""), name);
  return { descriptor: { mediaType, digest, size: bytes.length }, bytes, endpoint: ep };
}

/** The manifest's media type (the body's own `mediaType` wins over Content-Type). */
function manifestMediaType(bytes: Buffer, contentType: string, name: string): string {
  let doc: { schemaVersion?: unknown; mediaType?: unknown; manifests?: unknown; config?: unknown };
  try {
    doc = JSON.parse(bytes.toString("utf8")) as typeof doc;
  } catch (err) {
    throw invalidArgument(`image ${name}: manifest is not valid JSON`, err);
  }
  const ct = contentType.split(";")[0]!.trim();
  if (doc.schemaVersion === 1 || ct === MediaType.DockerSchema1 || ct === MediaType.DockerSchema1Signed) {
    throw invalidArgument(`image ${name}: unsupported manifest schema 1 (Docker image manifest v2, schema 1)`);
  }
  const mt = typeof doc.mediaType === "string" ? doc.mediaType : ct;
  if (isIndexType(mt) || isManifestType(mt)) return mt;
  // OCI allows omitting mediaType: infer from the shape.
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  if (doc.config) return MediaType.OciManifest;
  throw invalidArgument(`image ${name}: unsupported manifest media type ${JSON.stringify(mt)}`);
}

const ARCH_ALIASES: Record<string, string> = { x86_64: "amd64", "x86-64": "amd64", aarch64: "arm64" };
const normArch = (a: string) => ARCH_ALIASES[a] ?? a;

/** Does `p` satisfy `want`? An absent variant on either side matches any. */
export function platformMatches(p: Platform | undefined, want: Platform): boolean {
  if (!p) return false;
  if (p.os !== want.os || normArch(p.architecture) !== normArch(want.architecture)) return false;
  return want.variant === undefined || p.variant === undefined || p.variant === want.variant;
}

export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

/** Picks the index entry for `want` (prefers an exact variant match). NotFound if none. */
export function selectManifest(index: Index, want: Platform, name: string): Descriptor {
  const candidates = (index.manifests ?? []).filter((d) => isManifestType(d.mediaType) && platformMatches(d.platform, want));
  const best = candidates.find((d) => d.platform?.variant === want.variant) ?? candidates[0];
  if (!best) {
    const p = `${want.os}/${want.architecture}${want.variant ? `/${want.variant}` : ""}`;
    throw notFound(`image ${name}: no manifest for platform ${p} in the index`);
  }
  return best;
}
