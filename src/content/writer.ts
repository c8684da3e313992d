/**
 * Ingest writer: the only way bytes become a blob.
 *
 * Bytes go to `<ingest>/<sha256(ref)>/data`; on commit the data file is fsynced, verified against
 * the expected size and digest, made read-only and hard-linked into `blobs/sha256/<hex>` (link
 * fails with EEXIST instead of replacing, which makes "already exists" exact even between two
 * writers racing on different refs), then the blobs dir is fsynced and the ingest removed.
 * Nothing half-written is ever visible under blobs/.
 *
 * Resumable: an ingest left behind (crash, `close()`) is continued by the next writer for the
 * same ref; the digest state is rebuilt by re-hashing the bytes already on disk.
 *
 * One writer per ref at a time within the process (a second gets Unavailable "locked"). A writer
 * holds its lock until `commit`, `abort` or `close`: always call one of them (in `finally`).
 */
import { createHash, type Hash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { chmod, link, mkdir, open, readFile, rm, type FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { alreadyExists, internal, invalidArgument, unavailable } from "../errors.js";
import { throwIfAborted } from "../util/signal.js";
import { type Digest, digestHex, parseDigest } from "./digest.js";
import { errnoCode, fsyncDir, writeFileAtomic } from "./fs-atomic.js";

export interface Expected {
  digest?: string;
  size?: number;
}

export interface CommitOptions {
  signal?: AbortSignal;
  /** Override the size/digest given when the writer was opened. */
  size?: number;
  digest?: string;
}

/** Contents of the `ref` file beside an ingest's data. */
export interface IngestRef {
  ref: string;
  startedAt: string;
  expected?: Expected;
}

/** Ingest dirs locked by a live writer, process-wide (two stores on one root share them). */
const locked = new Set<string>();

export function isIngestLocked(dir: string): boolean {
  return locked.has(dir);
}

export function ingestDirName(ref: string): string {
  return createHash("sha256").update(ref).digest("hex");
}

export interface WriterDeps {
  ingestRoot: string;
  blobsDir: string;
  /** Called with the verified digest just before it becomes visible (e.g. to add it to a lease). */
  beforeLink?: (digest: Digest) => Promise<void>;
}

export class Writer {
  readonly ref: string;
  readonly #dir: string;
  readonly #deps: WriterDeps;
  readonly #expected: Expected;
  #fh: FileHandle | undefined;
  #hash: Hash;
  #offset: number;
  #pending = new Set<Promise<unknown>>();
  #broken: unknown;
  #done = false;
  #verified: Digest | undefined;

  private constructor(ref: string, dir: string, deps: WriterDeps, expected: Expected, fh: FileHandle, hash: Hash, offset: number) {
    this.ref = ref;
    this.#dir = dir;
    this.#deps = deps;
    this.#expected = expected;
    this.#fh = fh;
    this.#hash = hash;
    this.#offset = offset;
  }

  /** Opens (or resumes) the ingest for `ref`. */
  static async open(ref: string, expected: Expected, deps: WriterDeps): Promise<Writer> {
    if (!ref) throw invalidArgument("ingest ref must not be empty");
    if (expected.digest !== undefined) parseDigest(expected.digest);
    if (expected.size !== undefined && !(Number.isSafeInteger(expected.size) && expected.size >= 0)) {
      throw invalidArgument(`ingest ${ref}: invalid expected size ${expected.size}`);
    }
    const dir = path.join(deps.ingestRoot, ingestDirName(ref));
    if (locked.has(dir)) throw unavailable(`ingest ${ref}: locked by another writer`);
    locked.add(dir);
    let fh: FileHandle | undefined;
    try {
      await mkdir(dir, { recursive: true });
      const refFile = path.join(dir, "ref");
      const stored = await readRefFile(refFile);
      if (stored && stored.ref !== ref) throw internal(`ingest ${ref}: dir holds ref ${stored.ref}`);
      if (!stored) {
        const rec: IngestRef = { ref, startedAt: new Date().toISOString(), expected };
        await writeFileAtomic(refFile, JSON.stringify(rec));
      }
      const dataFile = path.join(dir, "data");
      fh = await open(dataFile, constants.O_RDWR | constants.O_CREAT, 0o644);
      let { hash, size } = await hashFile(dataFile);
      if (expected.size !== undefined && size > expected.size) {
        // Cannot be a prefix of the expected blob: start over.
        await fh.truncate(0);
        ({ hash, size } = { hash: createHash("sha256"), size: 0 });
      }
      return new Writer(ref, dir, deps, expected, fh, hash, size);
    } catch (err) {
      await fh?.close().catch(() => {});
      locked.delete(dir);
      throw err;
    }
  }

  /** The digest, once `commit` has verified it (set even if the blob then already existed). */
  get verifiedDigest(): Digest | undefined {
    return this.#verified;
  }

  /** Bytes accepted so far (including those resumed from disk). */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Appends `chunk`. Calls may overlap (each reserves its position at call time), but the caller
   * must not modify `chunk` until the returned promise settles. A failed write breaks the writer:
   * every later call throws; `abort()` it.
   */
  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    const fh = this.#fh!;
    const pos = this.#offset;
    const limit = this.#expected.size;
    if (limit !== undefined && pos + chunk.length > limit) {
      this.#broken = invalidArgument(`ingest ${this.ref}: more than the expected ${limit} bytes`);
      throw this.#broken;
    }
    this.#offset += chunk.length;
    this.#hash.update(chunk);
    const p = (async () => {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, pos + done);
        done += bytesWritten;
      }
    })();
    this.#pending.add(p);
    try {
      await p;
    } catch (err) {
      this.#broken ??= internal(`ingest ${this.ref}: write: ${(err as Error).message}`, err);
      throw this.#broken;
    } finally {
      this.#pending.delete(p);
    }
  }

  /**
   * Verifies and publishes the blob. On a size/digest mismatch (InvalidArgument) or an existing
   * blob (AlreadyExists) the ingest is discarded; either way the writer is finished.
   */
  async commit(opts: CommitOptions = {}): Promise<Digest> {
    throwIfAborted(opts.signal, `commit ${this.ref}`);
    this.#check();
    await Promise.allSettled([...this.#pending]);
    if (this.#broken) throw this.#broken;
    try {
      await this.#fh!.sync();
      await this.#closeFile();
      const actual: Digest = `sha256:${this.#hash.digest("hex")}`;
      const wantSize = opts.size ?? this.#expected.size;
      const wantDigest = opts.digest ?? this.#expected.digest;
      if (wantDigest !== undefined && parseDigest(wantDigest) !== actual) {
        throw invalidArgument(`commit ${this.ref}: unexpected digest: expected ${wantDigest}, actual ${actual} (${this.#offset} bytes)`);
      }
      if (wantSize !== undefined && wantSize !== this.#offset) {
        throw invalidArgument(`commit ${this.ref}: unexpected size: expected ${wantSize}, got ${this.#offset} (digest ${actual})`);
      }
      this.#verified = actual;
      await this.#deps.beforeLink?.(actual);
      const data = path.join(this.#dir, "data");
      await chmod(data, 0o444);
      await mkdir(this.#deps.blobsDir, { recursive: true });
      try {
        await link(data, path.join(this.#deps.blobsDir, digestHex(actual)));
      } catch (err) {
        if (errnoCode(err) === "EEXIST") throw alreadyExists(`content ${actual}: already exists`);
        throw err;
      }
      await fsyncDir(this.#deps.blobsDir);
      return actual;
    } finally {
      await this.#finish(true);
    }
  }

  /** Discards the ingest and releases the lock. Idempotent. */
  async abort(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    await this.#finish(true);
  }

  /** Releases the lock but keeps the bytes, so a later writer for the same ref resumes. Idempotent. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    await this.#finish(false);
  }

  #check(): void {
    if (this.#done) throw invalidArgument(`ingest ${this.ref}: writer already finished`);
    if (this.#broken) throw this.#broken;
  }

  async #closeFile(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }

  async #finish(discard: boolean): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      await this.#closeFile().catch(() => {});
      if (discard) await rm(this.#dir, { recursive: true, force: true });
    } finally {
      locked.delete(this.#dir);
    }
  }
}

export async function readRefFile(file: string): Promise<IngestRef | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as IngestRef;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

async function hashFile(file: string): Promise<{ hash: Hash; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hash, size };
}
