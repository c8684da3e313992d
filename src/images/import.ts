/**
 * Importing image archives: an OCI image layout tar (`oci-layout`, `index.json`,
 * `blobs/sha256/…`) or a `docker save` tar (`manifest.json`, `<id>.json` configs, layer tars),
 * plain or compressed.
 *
 * All or nothing for names: every manifest, config and layer is verified against its digest
 * (layers by the content writer, JSON blobs before they are parsed) and written to the content
 * store under a lease before the first name is recorded, so a corrupt archive records nothing.
 * Blobs written before a failure are not referenced by any image and go at the next `gc()`.
 *
 * Legacy docker archives have no manifest: one is made (OCI manifest, Docker config and layer
 * media types, layers stored as they are in the archive). Their layers are named by diffID only,
 * so an uncompressed layer is verified against its diffID, a gzip'd one by decompressing it.
 */
import { createHash, randomUUID } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { type Digest, sha256Digest } from "../content/digest.js";
import type { ContentStore } from "../content/store.js";
import { invalidArgument } from "../errors.js";
import type { ImageRecord, ImageStore } from "../metadata/images.js";
import { ArchiveReader, safeName } from "./archive.js";
import { type ImageConfig, parseImageConfig } from "./config.js";
import {
  type Descriptor,
  isIndexType,
  isManifestType,
  MediaType,
  parseIndex,
  parseManifest,
  selectPlatform,
} from "./oci.js";
import { normalizeName } from "./reference.js";

export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";

export interface ImportOptions {
  content: ContentStore;
  images: ImageStore;
  /** Name for the archive's image, replacing the names it carries; the archive must hold exactly one image. */
  name?: string;
  /** Labels recorded on every imported name. */
  labels?: Record<string, string>;
  /** Where the archive is extracted (default: the OS temp dir). */
  tmpDir?: string;
  signal?: AbortSignal;
}

/** An image read and verified from the archive, not yet written. */
interface Pending {
  names: string[];
  manifest: Descriptor;
  manifestBytes: Buffer;
  configDigest: Digest;
  configBytes: Buffer;
  config: ImageConfig;
  /** Layer descriptors and the archive member holding each. */
  layers: { desc: Descriptor; member: string }[];
}

/** Imports `archive`; returns one record per recorded name. */
export async function importArchive(archive: string, opts: ImportOptions): Promise<ImageRecord[]> {
  const reader = await ArchiveReader.open(archive, { tmpDir: opts.tmpDir, signal: opts.signal });
  try {
    await reader.extract(["oci-layout", "index.json", "manifest.json"]);
    let pending: Pending[];
    if (reader.has("index.json")) pending = await readOciLayout(reader);
    else if (reader.has("manifest.json")) pending = await readDockerArchive(reader);
    else throw invalidArgument(`archive ${archive}: neither an OCI layout (index.json) nor a docker save archive (manifest.json)`);
    if (pending.length === 0) throw invalidArgument(`archive ${archive}: holds no image`);
    if (opts.name !== undefined) {
      if (pending.length !== 1) throw invalidArgument(`archive ${archive}: a name can only be given for an archive of one image`);
      pending[0]!.names = [normalizeName(opts.name)];
    }
    for (const p of pending) {
      if (p.names.length === 0) throw invalidArgument(`archive ${archive}: image ${p.manifest.digest} has no name; give one`);
    }
    return await writeAndRecord(reader, pending, opts);
  } finally {
    await reader.close();
  }
}

async function writeAndRecord(reader: ArchiveReader, pending: Pending[], opts: ImportOptions): Promise<ImageRecord[]> {
  const lease = `import-${randomUUID()}`;
  await opts.content.lease(lease, { expiresAt: new Date(Date.now() + 24 * 3600 * 1000) });
  try {
    for (const p of pending) {
      for (const { desc, member } of p.layers) {
        const f = await reader.openFile(member);
        try {
          // A ref of this import's own: a failed write of an untrusted archive must never be
          // resumed by a later import (its ingest may hold a corrupt prefix); gc removes it.
          await opts.content.writeBlob(
            f.stream(),
            { digest: desc.digest, size: desc.size },
            { lease, signal: opts.signal, ref: `${lease}-${desc.digest}` },
          );
        } finally {
          await f.close();
        }
      }
      await opts.content.writeBlob(p.configBytes, { digest: p.configDigest, size: p.configBytes.length }, { lease, signal: opts.signal });
      await opts.content.writeBlob(p.manifestBytes, { digest: p.manifest.digest, size: p.manifest.size }, { lease, signal: opts.signal });
    }
    const out: ImageRecord[] = [];
    for (const p of pending) {
      const size = p.manifest.size + p.configBytes.length + p.layers.reduce((n, l) => n + l.desc.size, 0);
      for (const name of p.names) {
        out.push(
          opts.images.put({
            name,
            target: { digest: p.manifest.digest, mediaType: p.manifest.mediaType, size: p.manifest.size },
            configDigest: p.configDigest,
            config: p.config,
            size,
            labels: opts.labels ?? {},
          }),
        );
      }
    }
    return out;
  } finally {
    await opts.content.releaseLease(lease);
  }
}

const blobMember = (d: string) => `blobs/sha256/${d.slice("sha256:".length)}`;

async function readOciLayout(reader: ArchiveReader): Promise<Pending[]> {
  if (reader.has("oci-layout")) {
    const layout = JSON.parse((await reader.readSmall("oci-layout")).toString("utf8")) as { imageLayoutVersion?: unknown };
    if (typeof layout.imageLayoutVersion !== "string") throw invalidArgument("oci-layout: missing imageLayoutVersion");
  }
  await reader.extract(reader.names().filter((n) => /^blobs\/sha256\/[a-f0-9]{64}$/.test(n)));
  const entries = parseIndex(await reader.readSmall("index.json"), "index.json");
  const out: Pending[] = [];
  for (const entry of entries) {
    let desc = entry;
    if (isIndexType(desc.mediaType)) {
      const nested = parseIndex(await reader.readVerified(blobMember(desc.digest), desc.digest, desc.size), `index ${desc.digest}`);
      desc = selectPlatform(nested, `index ${desc.digest}`);
    }
    if (!isManifestType(desc.mediaType)) throw invalidArgument(`index.json: unsupported media type ${desc.mediaType}`);
    const manifestBytes = await reader.readVerified(blobMember(desc.digest), desc.digest, desc.size);
    const manifest = parseManifest(manifestBytes, `manifest ${desc.digest}`);
    const configBytes = await reader.readVerified(blobMember(manifest.config.digest), manifest.config.digest, manifest.config.size);
    const config = parseImageConfig(configBytes);
    checkLayerCount(config, manifest.layers.length, desc.digest);
    out.push({
      names: namesFromAnnotations(entry.annotations ?? {}),
      manifest: { mediaType: desc.mediaType, digest: desc.digest, size: desc.size },
      manifestBytes,
      configDigest: manifest.config.digest,
      configBytes,
      config,
      layers: manifest.layers.map((l) => ({ desc: l, member: blobMember(l.digest) })),
    });
  }
  return out;
}

/** containerd's full name annotation wins; the OCI ref name counts only if it is a full reference (not just a tag). */
function namesFromAnnotations(ann: Record<string, string>): string[] {
  const full = ann[ANNOTATION_IMAGE_NAME];
  if (full) return [normalizeName(full)];
  const ref = ann[ANNOTATION_REF_NAME];
  if (ref && /[/:@]/.test(ref)) return [normalizeName(ref)];
  return [];
}

function checkLayerCount(config: ImageConfig, layers: number, what: string): void {
  if (config.diffIds.length !== layers) {
    throw invalidArgument(`image ${what}: ${layers} layers but ${config.diffIds.length} diff_ids in its config`);
  }
}

interface DockerEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

async function readDockerArchive(reader: ArchiveReader): Promise<Pending[]> {
  let doc: unknown;
  try {
    doc = JSON.parse((await reader.readSmall("manifest.json")).toString("utf8"));
  } catch (err) {
    throw invalidArgument("manifest.json: invalid JSON", err);
  }
  if (!Array.isArray(doc)) throw invalidArgument("manifest.json: not a list");
  const entries = (doc as DockerEntry[]).map((e, i) => {
    if (typeof e !== "object" || e === null || typeof e.Config !== "string" || !Array.isArray(e.Layers)) {
      throw invalidArgument(`manifest.json entry ${i}: missing Config or Layers`);
    }
    const layers = (e.Layers as unknown[]).map((l) => {
      if (typeof l !== "string") throw invalidArgument(`manifest.json entry ${i}: layer is not a path`);
      return safeName(l);
    });
    const tags = Array.isArray(e.RepoTags) ? (e.RepoTags as unknown[]).filter((t): t is string => typeof t === "string") : [];
    return { config: safeName(e.Config), layers, names: tags.map(normalizeName) };
  });
  await reader.extract(entries.flatMap((e) => [e.config, ...e.layers]));

  const out: Pending[] = [];
  for (const e of entries) {
    const configBytes = await reader.readSmall(e.config);
    const configDigest = sha256Digest(configBytes);
    const named = /([a-f0-9]{64})(?:\.json)?$/.exec(e.config)?.[1];
    if (named !== undefined && `sha256:${named}` !== configDigest) {
      throw invalidArgument(`docker archive: config ${e.config} has digest ${configDigest}`);
    }
    const config = parseImageConfig(configBytes);
    checkLayerCount(config, e.layers.length, e.config);
    const layers: Pending["layers"] = [];
    for (const [i, member] of e.layers.entries()) {
      layers.push({ desc: await dockerLayer(reader, member, config.diffIds[i]!), member });
    }
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.DockerConfig, digest: configDigest, size: configBytes.length },
        layers: layers.map(({ desc }) => ({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size })),
      }),
    );
    out.push({
      names: [...new Set(e.names)],
      manifest: { mediaType: MediaType.OciManifest, digest: sha256Digest(manifestBytes), size: manifestBytes.length },
      manifestBytes,
      configDigest,
      configBytes,
      config,
      layers,
    });
  }
  return out;
}

/**
 * The descriptor of a docker-archive layer. Uncompressed: its digest must be the diffID (the
 * content writer checks it). Gzip'd: decompressed here and checked against the diffID.
 */
async function dockerLayer(reader: ArchiveReader, member: string, diffId: Digest): Promise<Descriptor> {
  const f = await reader.openFile(member);
  try {
    const head = await f.stream().take(1).toArray().catch(() => [] as Buffer[]);
    const first = (head[0] as Buffer | undefined) ?? Buffer.alloc(0);
    if (!(first[0] === 0x1f && first[1] === 0x8b)) return { mediaType: MediaType.DockerLayer, digest: diffId, size: f.size };
    const outer = createHash("sha256");
    const inner = createHash("sha256");
    const gunzip = createGunzip();
    gunzip.on("data", (c: Buffer) => inner.update(c));
    const src = f.stream();
    src.on("data", (c) => outer.update(c));
    await pipeline(src, gunzip).catch((err: unknown) => {
      throw invalidArgument(`docker archive: layer ${member} is not valid gzip`, err);
    });
    const actual = `sha256:${inner.digest("hex")}`;
    if (actual !== diffId) throw invalidArgument(`docker archive: layer ${member} has diffID ${actual}, config says ${diffId}`);
    return { mediaType: MediaType.DockerLayerGzip, digest: `sha256:${outer.digest("hex")}`, size: f.size };
  } finally {
    await f.close();
  }
}
