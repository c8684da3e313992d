/**
 * Content-addressed blob store: `<root>/content/blobs/sha256/<hex>`, ingests under
 * `<root>/content/ingest/<sha256(ref)>/{data,ref}`, leases in `<root>/content/leases.json`.
 *
 * Blobs are immutable and only ever appear through `Writer.commit` (see writer.ts). All file
 * system work is async. Safe to use concurrently; one writer per ingest ref at a time.
 */
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { open, readdir, readFile, rm, stat, unlink } from "node:fs/promises";
import * as path from "node:path";
import { alreadyExists, invalidArgument, isAlreadyExists, notFound } from "../errors.js";
import { throwIfAborted } from "../util/signal.js";
import { type Digest, digestHex, parseDigest } from "./digest.js";
import { errnoCode } from "./fs-atomic.js";
import { type Lease, LeaseManager } from "./leases.js";
import { childrenOf, MAX_REF_BLOB } from "./refs.js";
import { type Expected, type IngestRef, isIngestLocked, readRefFile, Writer } from "./writer.js";

export interface Info {
  digest: Digest;
  size: number;
  /** When the blob's bytes were written (file mtime). */
  createdAt: Date;
}

export interface IngestStatus {
  ref: string;
  offset: number;
  startedAt: Date;
  updatedAt: Date;
  expected?: Expected;
  locked: boolean;
}

export interface GcOptions {
  /** Digests in use (image targets, …); everything they reference is kept too. */
  roots: Iterable<string>;
  /** Unlocked ingests not touched for this long are removed (default 24 h). */
  ingestMaxAgeMs?: number;
  signal?: AbortSignal;
  now?: Date;
}

export interface GcResult {
  blobs: Digest[];
  ingests: string[];
  leases: string[];
}

const DAY_MS = 24 * 3600 * 1000;

export class ContentStore {
  readonly dir: string;
  readonly #blobs: string;
  readonly #ingest: string;
  readonly #leases: LeaseManager;

  /** `root` is the daemon root; content lives in `<root>/content`. */
  constructor(root: string) {
    this.dir = path.join(root, "content");
    this.#blobs = path.join(this.dir, "blobs", "sha256");
    this.#ingest = path.join(this.dir, "ingest");
    this.#leases = new LeaseManager(path.join(this.dir, "leases.json"));
  }

  /** Path of a blob's file (it may not exist). Callers must treat the file as read-only. */
  blobPath(digest: string): string {
    return path.join(this.#blobs, digestHex(parseDigest(digest)));
  }

  async info(digest: string): Promise<Info> {
    const d = parseDigest(digest);
    try {
      const st = await stat(this.blobPath(d));
      return { digest: d, size: st.size, createdAt: st.mtime };
    } catch (err) {
      throw mapNotFound(err, d);
    }
  }

  async has(digest: string): Promise<boolean> {
    try {
      await this.info(digest);
      return true;
    } catch (err) {
      if (errnoCode((err as Error).cause) === "ENOENT") return false;
      throw err;
    }
  }

  /** Opens the blob first, so a NotFound is reported here and not as a stream error. */
  async readStream(digest: string): Promise<Readable> {
    const d = parseDigest(digest);
    try {
      const fh = await open(this.blobPath(d), "r");
      return fh.createReadStream();
    } catch (err) {
      throw mapNotFound(err, d);
    }
  }

  async readAll(digest: string): Promise<Buffer> {
    const d = parseDigest(digest);
    try {
      return await readFile(this.blobPath(d));
    } catch (err) {
      throw mapNotFound(err, d);
    }
  }

  async list(): Promise<Info[]> {
    const out: Info[] = [];
    for (const hex of await readdirOrEmpty(this.#blobs)) {
      if (!/^[a-f0-9]{64}$/.test(hex)) continue;
      try {
        out.push(await this.info(`sha256:${hex}`));
      } catch {
        // removed concurrently
      }
    }
    return out;
  }

  async delete(digest: string): Promise<void> {
    const d = parseDigest(digest);
    try {
      await unlink(this.blobPath(d));
    } catch (err) {
      throw mapNotFound(err, d);
    }
  }

  /**
   * Opens (or resumes) the ingest `ref`. If `expected.digest` is already stored, fails with
   * AlreadyExists at once (nothing to download). With `lease`, the digest is added to the lease
   * before the blob becomes visible, so GC can never collect it in between.
   */
  async writer(ref: string, expected: Expected = {}, opts: { lease?: string } = {}): Promise<Writer> {
    if (expected.digest !== undefined && (await this.has(expected.digest))) {
      if (opts.lease) await this.#leases.add(opts.lease, expected.digest);
      throw alreadyExists(`content ${expected.digest}: already exists`);
    }
    const lease = opts.lease;
    return Writer.open(ref, expected, {
      ingestRoot: this.#ingest,
      blobsDir: this.#blobs,
      beforeLink: lease ? (d) => this.#leases.add(lease, d) : undefined,
    });
  }

  /**
   * Writes a whole blob. An existing blob counts as success (its Info is returned). With a
   * digest-derived ref (the default when `expected.digest` is set) an interrupted write is
   * resumed next time: the first `offset` input bytes are skipped.
   */
  async writeBlob(
    data: Uint8Array | string | AsyncIterable<Uint8Array>,
    expected: Expected = {},
    opts: { signal?: AbortSignal; lease?: string; ref?: string } = {},
  ): Promise<Info> {
    throwIfAborted(opts.signal, "write blob");
    const stable = opts.ref !== undefined || expected.digest !== undefined;
    const ref = opts.ref ?? `writeblob-${expected.digest ?? randomUUID()}`;
    let w: Writer;
    try {
      w = await this.writer(ref, expected, { lease: opts.lease });
    } catch (err) {
      if (isAlreadyExists(err) && expected.digest) return this.info(expected.digest);
      throw err;
    }
    let digest: Digest;
    try {
      let skip = w.offset;
      const chunks = typeof data === "string" || data instanceof Uint8Array ? [Buffer.from(data)] : data;
      for await (const chunk of chunks) {
        throwIfAborted(opts.signal, "write blob");
        if (skip >= chunk.length) {
          skip -= chunk.length;
          continue;
        }
        await w.write(skip ? chunk.subarray(skip) : chunk);
        skip = 0;
      }
      if (skip > 0) {
        await w.abort(); // the resumed ingest was not a prefix of this input: start over next time
        throw invalidArgument(`write blob ${ref}: input shorter than the ${w.offset} bytes already ingested`);
      }
      digest = await w.commit({ signal: opts.signal });
    } catch (err) {
      await (stable ? w.close() : w.abort());
      if (isAlreadyExists(err) && w.verifiedDigest) return this.info(w.verifiedDigest);
      throw err;
    }
    return this.info(digest);
  }

  async ingests(): Promise<IngestStatus[]> {
    const out: IngestStatus[] = [];
    for (const name of await readdirOrEmpty(this.#ingest)) {
      const dir = path.join(this.#ingest, name);
      const rec = await readRefFile(path.join(dir, "ref")).catch(() => undefined);
      const st = await stat(path.join(dir, "data")).catch(() => undefined);
      if (!rec) continue;
      const s: IngestStatus = {
        ref: rec.ref,
        offset: st?.size ?? 0,
        startedAt: new Date(rec.startedAt),
        updatedAt: st?.mtime ?? new Date(rec.startedAt),
        locked: isIngestLocked(dir),
      };
      if (rec.expected) s.expected = rec.expected;
      out.push(s);
    }
    return out;
  }

  lease(id: string, opts: { expiresAt?: Date } = {}): Promise<Lease> {
    return this.#leases.lease(id, opts);
  }
  releaseLease(id: string): Promise<boolean> {
    return this.#leases.release(id);
  }
  addToLease(id: string, digest: string): Promise<void> {
    return this.#leases.add(id, digest);
  }
  leases(): Promise<Lease[]> {
    return this.#leases.list();
  }

  /**
   * Deletes blobs reachable neither from `roots` nor from an unexpired lease, and unlocked
   * ingests idle for longer than `ingestMaxAgeMs`. Blobs are listed before leases are read, so a
   * blob committed under a lease during GC is never collected. Content written without a lease
   * and not yet referenced by a root is collectable at once: write under a lease.
   */
  async gc(opts: GcOptions): Promise<GcResult> {
    const now = opts.now ?? new Date();
    const present = new Set((await readdirOrEmpty(this.#blobs)).filter((h) => /^[a-f0-9]{64}$/.test(h)));
    const { digests: leased, expired } = await this.#leases.held(now);
    const keep = new Set<string>();
    const queue = [...[...opts.roots].map(parseDigest), ...leased];
    while (queue.length) {
      throwIfAborted(opts.signal, "content gc");
      const d = queue.pop()!;
      if (keep.has(d)) continue;
      keep.add(d);
      const hex = digestHex(d);
      if (!present.has(hex)) continue;
      const st = await stat(path.join(this.#blobs, hex)).catch(() => undefined);
      if (!st || st.size > MAX_REF_BLOB) continue;
      const blob = await readFile(path.join(this.#blobs, hex)).catch(() => undefined);
      if (blob) queue.push(...childrenOf(blob));
    }
    const blobs: Digest[] = [];
    for (const hex of present) {
      throwIfAborted(opts.signal, "content gc");
      const d: Digest = `sha256:${hex}`;
      if (keep.has(d)) continue;
      await rm(path.join(this.#blobs, hex), { force: true });
      blobs.push(d);
    }
    const ingests: string[] = [];
    const maxAge = opts.ingestMaxAgeMs ?? DAY_MS;
    for (const name of await readdirOrEmpty(this.#ingest)) {
      const dir = path.join(this.#ingest, name);
      if (isIngestLocked(dir)) continue;
      const times = await Promise.all(
        [dir, path.join(dir, "data"), path.join(dir, "ref")].map((p) => stat(p).then((s) => s.mtimeMs, () => 0)),
      );
      if (now.getTime() - Math.max(...times) <= maxAge) continue;
      const rec: IngestRef | undefined = await readRefFile(path.join(dir, "ref")).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      ingests.push(rec?.ref ?? name);
    }
    return { blobs, ingests, leases: expired };
  }
}

function mapNotFound(err: unknown, d: Digest): unknown {
  return errnoCode(err) === "ENOENT" ? notFound(`content ${d}: not found`, err) : err;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return [];
    throw err;
  }
}
