/**
 * OCI / Docker descriptors, manifests and indexes: media types and validating parsers.
 * Parsers take blobs whose digest the caller has already verified; they check shape, not trust.
 */
import { type Digest, parseDigest } from "../content/digest.js";
import { invalidArgument } from "../errors.js";

export const MediaType = {
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface Manifest {
  config: Descriptor;
  layers: Descriptor[];
}

export const isIndexType = (t: string) => t === MediaType.OciIndex || t === MediaType.DockerManifestList;
export const isManifestType = (t: string) => t === MediaType.OciManifest || t === MediaType.DockerManifest;

/** The compression a layer media type implies; unknown types are InvalidArgument. */
export function layerCompression(mediaType: string): "none" | "gzip" | "zstd" {
  switch (mediaType) {
    case MediaType.OciLayer:
    case MediaType.DockerLayer:
      return "none";
    case MediaType.OciLayerGzip:
    case MediaType.DockerLayerGzip:
      return "gzip";
    case MediaType.OciLayerZstd:
      return "zstd";
    default:
      throw invalidArgument(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  }
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (typeof v !== "object" || v === null) throw invalidArgument(`${what}: descriptor is not an object`);
  const o = v as Record<string, unknown>;
  if (typeof o.mediaType !== "string" || o.mediaType === "") throw invalidArgument(`${what}: missing mediaType`);
  if (typeof o.digest !== "string") throw invalidArgument(`${what}: missing digest`);
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw invalidArgument(`${what}: invalid size ${String(o.size)}`);
  }
  const d: Descriptor = { mediaType: o.mediaType, digest: parseDigest(o.digest), size: o.size };
  if (typeof o.annotations === "object" && o.annotations !== null) {
    d.annotations = Object.fromEntries(
      Object.entries(o.annotations).filter((e): e is [string, string] => typeof e[1] === "string"),
    );
  }
  if (typeof o.platform === "object" && o.platform !== null) d.platform = o.platform as Descriptor["platform"];
  return d;
}

function parseJsonObject(blob: Uint8Array, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(blob).toString("utf8"));
  } catch (err) {
    throw invalidArgument(`${what}: invalid JSON`, err);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalidArgument(`${what}: not a JSON object`);
  return doc as Record<string, unknown>;
}

export function parseManifest(blob: Uint8Array, what = "manifest"): Manifest {
  const o = parseJsonObject(blob, what);
  if (!Array.isArray(o.layers)) throw invalidArgument(`${what}: missing layers`);
  return {
    config: parseDescriptor(o.config, `${what} config`),
    layers: o.layers.map((l, i) => parseDescriptor(l, `${what} layer ${i}`)),
  };
}

export function parseIndex(blob: Uint8Array, what = "index"): Descriptor[] {
  const o = parseJsonObject(blob, what);
  if (!Array.isArray(o.manifests)) throw invalidArgument(`${what}: missing manifests`);
  return o.manifests.map((m, i) => parseDescriptor(m, `${what} entry ${i}`));
}

/** The host platform in OCI terms. */
export function hostPlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" };
  return { os: "linux", architecture: arch[process.arch] ?? process.arch };
}

/** The entry of an index for the host platform (entries without a platform match any). */
export function selectPlatform(entries: Descriptor[], what: string): Descriptor {
  const host = hostPlatform();
  const match = entries.find(
    (e) => isManifestType(e.mediaType) && (!e.platform || (e.platform.os === host.os && e.platform.architecture === host.architecture)),
  );
  if (!match) throw invalidArgument(`${what}: no manifest for ${host.os}/${host.architecture}`);
  return match;
}
