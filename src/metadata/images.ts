/**
 * Image records (table `images`): one row per image name (a normalized reference such as
 * `docker.io/library/busybox:latest` or `name@sha256:…`), pointing at a target manifest in the
 * content store. Many names may share one target; deleting a name never touches the others.
 *
 * Invariants: the target's blobs are in the content store before a row naming it is written
 * (the importer writes blobs first); blobs are garbage-collected only when no row's target
 * reaches them. Methods are synchronous and each is one transaction. Not safe after `close()`.
 */
import { parseDigest } from "../content/digest.js";
import { invalidArgument, notFound } from "../errors.js";
import type { ImageConfig } from "../images/config.js";
import { parseJson } from "./codec.js";
import type { Database } from "./db.js";

export interface ImageTarget {
  digest: string;
  mediaType: string;
  size: number;
}

export interface ImageRecord {
  name: string;
  /** The image manifest. */
  target: ImageTarget;
  /** Digest of the config blob: the image id CRI reports. */
  configDigest: string;
  config: ImageConfig;
  /** Bytes of manifest + config + layers as stored (compressed). */
  size: number;
  labels: Record<string, string>;
  /** ms since epoch. */
  createdAt: number;
  /** ms since epoch. */
  updatedAt: number;
}

/** What `put` needs; timestamps default to now (createdAt is kept when the name exists). */
export type NewImage = Pick<ImageRecord, "name" | "target" | "configDigest" | "config" | "size"> &
  Partial<Pick<ImageRecord, "labels">>;

export interface ImageFilter {
  /** Only names with this target digest. */
  targetDigest?: string;
  /** Only images with this config digest (image id). */
  configDigest?: string;
  /** Only images carrying every one of these labels. */
  labels?: Record<string, string>;
}

interface Row {
  name: string;
  target_digest: string;
  target_media_type: string;
  target_size: number;
  config_digest: string;
  config: string;
  size: number;
  labels: string;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  "name, target_digest, target_media_type, target_size, config_digest, config, size, labels, created_at, updated_at";

export class ImageStore {
  readonly #now: () => number;
  readonly #upsert;
  readonly #select;
  readonly #selectAll;
  readonly #byTarget;
  readonly #byConfig;
  readonly #delete;

  constructor(db: Database, now: () => number = Date.now) {
    this.#now = now;
    this.#upsert = db.prepare<Row, Row>(
      `INSERT INTO images (${COLUMNS})
       VALUES (@name, @target_digest, @target_media_type, @target_size, @config_digest, @config, @size, @labels,
               @created_at, @updated_at)
       ON CONFLICT (name) DO UPDATE SET target_digest = excluded.target_digest,
         target_media_type = excluded.target_media_type, target_size = excluded.target_size,
         config_digest = excluded.config_digest, config = excluded.config, size = excluded.size,
         labels = excluded.labels, updated_at = excluded.updated_at
       RETURNING ${COLUMNS}`,
    );
    this.#select = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM images WHERE name = ?`);
    this.#selectAll = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM images ORDER BY name`);
    this.#byTarget = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM images WHERE target_digest = ? ORDER BY name`);
    this.#byConfig = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM images WHERE config_digest = ? ORDER BY name`);
    this.#delete = db.prepare<[string]>("DELETE FROM images WHERE name = ?");
  }

  /** Records `name` → target, replacing what the name pointed at before (createdAt is kept). */
  put(img: NewImage): ImageRecord {
    validate(img);
    const now = this.#now();
    const row = this.#upsert.get({
      name: img.name,
      target_digest: img.target.digest,
      target_media_type: img.target.mediaType,
      target_size: img.target.size,
      config_digest: img.configDigest,
      config: JSON.stringify(img.config),
      size: img.size,
      labels: JSON.stringify(img.labels ?? {}),
      created_at: now,
      updated_at: now,
    });
    return fromRow(row!);
  }

  /** The image, or NotFound. */
  get(name: string): ImageRecord {
    const img = this.find(name);
    if (!img) throw notFound(`image "${name}" not found`);
    return img;
  }

  /** The image, or undefined. */
  find(name: string): ImageRecord | undefined {
    const row = this.#select.get(name);
    return row && fromRow(row);
  }

  /** Every image (optionally filtered), sorted by name. */
  list(filter: ImageFilter = {}): ImageRecord[] {
    const rows =
      filter.targetDigest !== undefined
        ? this.#byTarget.all(filter.targetDigest)
        : filter.configDigest !== undefined
          ? this.#byConfig.all(filter.configDigest)
          : this.#selectAll.all();
    return rows.map(fromRow).filter((img) => {
      if (filter.configDigest !== undefined && img.configDigest !== filter.configDigest) return false;
      return Object.entries(filter.labels ?? {}).every(([k, v]) => img.labels[k] === v);
    });
  }

  /** Names whose target is `digest`, sorted. */
  findByDigest(digest: string): string[] {
    return this.#byTarget.all(digest).map((r) => r.name);
  }

  /** Removes one name; NotFound if missing. Other names of the same target stay. */
  delete(name: string): void {
    if (this.#delete.run(name).changes === 0) throw notFound(`image "${name}" not found`);
  }
}

function validate(img: NewImage): void {
  if (img.name === "") throw invalidArgument("image name must not be empty");
  parseDigest(img.target.digest);
  parseDigest(img.configDigest);
  if (img.target.mediaType === "") throw invalidArgument(`image "${img.name}": target media type must not be empty`);
  for (const [what, n] of [
    ["target size", img.target.size],
    ["size", img.size],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(`image "${img.name}": ${what} ${n} is not a size`);
  }
}

function fromRow(r: Row): ImageRecord {
  return {
    name: r.name,
    target: { digest: r.target_digest, mediaType: r.target_media_type, size: r.target_size },
    configDigest: r.config_digest,
    config: parseJson<ImageConfig>(r.config, `image "${r.name}" config`),
    size: r.size,
    labels: parseJson<Record<string, string>>(r.labels, `image "${r.name}" labels`),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
