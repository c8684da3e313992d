/**
 * ImageService: the image API of the core (what CRI's ImageService and the CLI use).
 *
 * Invariants:
 * - Names live in the image store; blobs in the content store. Removing a name never deletes
 *   blobs itself: `gc()` deletes what no recorded target reaches (and no lease holds), so a
 *   blob shared by two images stays while either is named.
 * - `unpack` holds a lease on the image's blobs while it runs, so a concurrent `gc()` after a
 *   `remove` cannot pull a layer from under it. Committed snapshots are named by chain ID and
 *   skipped when present, so concurrent or repeated unpacks of shared layers are cheap and safe.
 * Safe to use concurrently. Owns nothing that needs closing.
 */
import { randomUUID } from "node:crypto";
import { parseDigest } from "../content/digest.js";
import type { ContentStore, GcResult } from "../content/store.js";
import { invalidArgument, isInvalidArgument, notFound } from "../errors.js";
import type { ImageFilter, ImageRecord, ImageStore } from "../metadata/images.js";
import { snapshotExists, type Snapshotter, type Usage } from "../snapshots/snapshotter.js";
import { diskUsage } from "../snapshots/usage.js";
import { applyLayer, chainIds } from "../unpack/apply.js";
import { exportArchive } from "./export.js";
import { importArchive, type ImportOptions } from "./import.js";
import { layerCompression, parseManifest } from "./oci.js";
import { normalizeName } from "./reference.js";

export interface ImageServiceOptions {
  content: ContentStore;
  images: ImageStore;
  /** Directory holding the snapshotters' data (counted by `usage`). */
  snapshotsDir: string;
  /** Temp dir for archive import/export (default: the OS temp dir). */
  tmpDir?: string;
}

export interface ImageFsUsage {
  /** The content store (`<root>/content`). */
  content: Usage & { dir: string };
  /** The snapshots (`<root>/snapshots`). */
  snapshots: Usage & { dir: string };
}

export class ImageService {
  readonly #content: ContentStore;
  readonly #images: ImageStore;
  readonly #snapshotsDir: string;
  readonly #tmpDir: string | undefined;

  constructor(opts: ImageServiceOptions) {
    this.#content = opts.content;
    this.#images = opts.images;
    this.#snapshotsDir = opts.snapshotsDir;
    this.#tmpDir = opts.tmpDir;
  }

  list(filter?: ImageFilter): ImageRecord[] {
    return this.#images.list(filter);
  }

  /**
   * The image called `ref` (as given, or normalized), or else the one whose config digest (image
   * id) is `ref` or starts with it, with or without `sha256:` (`crictl rmi 0c797`), as containerd
   * resolves ids. A name wins over an id prefix; a prefix of two images' ids is InvalidArgument.
   */
  find(ref: string): ImageRecord | undefined {
    const exact = this.#images.find(ref);
    if (exact) return exact;
    if (/^sha256:[a-f0-9]{64}$/.test(ref)) return this.#images.list({ configDigest: ref })[0];
    let named: ImageRecord | undefined;
    try {
      named = this.#images.find(normalizeName(ref));
    } catch (err) {
      if (!isInvalidArgument(err)) throw err;
    }
    return named ?? this.#findByIdPrefix(ref);
  }

  #findByIdPrefix(ref: string): ImageRecord | undefined {
    const m = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(ref);
    if (!m) return undefined;
    const prefix = `sha256:${m[1]}`;
    const ids = new Map<string, ImageRecord>();
    for (const img of this.#images.list()) if (img.configDigest.startsWith(prefix) && !ids.has(img.configDigest)) ids.set(img.configDigest, img);
    if (ids.size > 1) {
      throw invalidArgument(`image id prefix "${ref}" is ambiguous: it matches ${ids.size} images (${[...ids.keys()].map((d) => d.slice(7, 19)).join(", ")})`);
    }
    return ids.values().next().value;
  }

  /** Like `find`; NotFound (the CRI layer answers with an unset image) when missing. */
  get(ref: string): ImageRecord {
    const img = this.find(ref);
    if (!img) throw notFound(`image "${ref}" not found`);
    return img;
  }

  /** Removes one name (its blobs stay until `gc`); NotFound if no such image. */
  remove(ref: string): void {
    this.#images.delete(this.get(ref).name);
  }

  /**
   * Records `name` (normalized) as one more name of the image `ref` resolves to (same target,
   * config and labels); an existing `name` is repointed. NotFound if `ref` is unknown,
   * InvalidArgument if `name` is not a valid reference.
   */
  tag(ref: string, name: string): ImageRecord {
    const img = this.get(ref);
    const { target, configDigest, config, size, labels } = img;
    return this.#images.put({ name: normalizeName(name), target, configDigest, config, size, labels });
  }

  /** Deletes blobs no image target reaches and no lease holds. */
  gc(opts: { signal?: AbortSignal } = {}): Promise<GcResult> {
    const roots = new Set(this.#images.list().map((i) => i.target.digest));
    return this.#content.gc({ roots, signal: opts.signal });
  }

  /**
   * Removes committed snapshots that no image's layer chain reaches and nothing is built on,
   * leaves first, until none is left to remove. Active snapshots (containers) are never removed
   * here, and their parents stay while they exist. Returns the removed names.
   */
  async gcSnapshots(sn: Snapshotter): Promise<string[]> {
    const keep = new Set<string>();
    for (const img of this.#images.list()) {
      for (const c of chainIds(img.config.diffIds.map(parseDigest))) keep.add(c);
    }
    const removed: string[] = [];
    for (;;) {
      const infos = await sn.list();
      const parents = new Set(infos.map((i) => i.parent).filter((p): p is string => !!p));
      const victims = infos.filter((i) => i.kind === "committed" && !keep.has(i.name) && !parents.has(i.name));
      if (victims.length === 0) return removed;
      for (const v of victims) {
        await sn.remove(v.name);
        removed.push(v.name);
      }
    }
  }

  import(archive: string, opts: Omit<ImportOptions, "content" | "images"> = {}): Promise<ImageRecord[]> {
    return importArchive(archive, { tmpDir: this.#tmpDir, ...opts, content: this.#content, images: this.#images });
  }

  export(refs: string[], out: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const names = refs.map((r) => this.get(r).name);
    return exportArchive(names, out, { content: this.#content, images: this.#images, tmpDir: this.#tmpDir, ...opts });
  }

  /**
   * Applies the image's layers to `sn` (each a committed snapshot named by its chain ID,
   * existing ones skipped) and returns the top chain ID: the parent for a container's snapshot.
   */
  async unpack(ref: string, sn: Snapshotter, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const img = this.get(ref);
    const lease = `unpack-${randomUUID()}`;
    await this.#content.lease(lease, { expiresAt: new Date(Date.now() + 24 * 3600 * 1000) });
    try {
      await this.#content.addToLease(lease, img.target.digest);
      const manifest = parseManifest(await this.#content.readAll(img.target.digest), `manifest ${img.target.digest}`);
      for (const l of manifest.layers) await this.#content.addToLease(lease, l.digest);
      const diffIds = img.config.diffIds.map(parseDigest);
      if (diffIds.length !== manifest.layers.length) {
        throw invalidArgument(`image "${img.name}": ${manifest.layers.length} layers but ${diffIds.length} diff_ids`);
      }
      if (diffIds.length === 0) throw invalidArgument(`image "${img.name}" has no layers`);
      const chain = chainIds(diffIds);
      for (const [i, layer] of manifest.layers.entries()) {
        const name = chain[i]!;
        if (await snapshotExists(sn, name)) continue;
        await applyLayer(sn, name, chain[i - 1], await this.#content.readStream(layer.digest), {
          compression: layerCompression(layer.mediaType),
          expectedDiffId: diffIds[i]!,
          signal: opts.signal,
        });
      }
      return chain.at(-1)!;
    } finally {
      await this.#content.releaseLease(lease);
    }
  }

  /** Bytes and inodes used by the content store and the snapshots (CRI ImageFsInfo). */
  async usage(opts: { signal?: AbortSignal } = {}): Promise<ImageFsUsage> {
    const of = async (dir: string) => {
      try {
        return { dir, ...(await diskUsage(dir, opts.signal)) };
      } catch (err) {
        if ((err as { code?: string }).code === "ENOENT") return { dir, size: 0, inodes: 0 };
        throw err;
      }
    };
    const [content, snapshots] = await Promise.all([of(this.#content.dir), of(this.#snapshotsDir)]);
    return { content, snapshots };
  }
}
