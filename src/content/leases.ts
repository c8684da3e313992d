/**
 * Leases protect content from garbage collection while an operation (a pull, an import) is
 * between "blob written" and "image record references it". Kept in memory and mirrored to one
 * JSON file written atomically after every change; safe to call concurrently (one mutex).
 */
import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument, notFound } from "../errors.js";
import { type Digest, parseDigest } from "./digest.js";
import { errnoCode, writeFileAtomic } from "./fs-atomic.js";
import { Mutex } from "./mutex.js";

export interface Lease {
  id: string;
  createdAt: Date;
  /** After this instant the lease no longer protects anything and GC drops it. */
  expiresAt?: Date;
  digests: Digest[];
}

interface LeaseRecord {
  id: string;
  createdAt: string;
  expiresAt?: string;
  digests: Digest[];
}

export class LeaseManager {
  readonly #file: string;
  readonly #mu = new Mutex();
  #leases: Map<string, LeaseRecord> | undefined;

  constructor(file: string) {
    this.#file = file;
  }

  /** Creates the lease, or returns it unchanged if it exists (idempotent). */
  lease(id: string, opts: { expiresAt?: Date } = {}): Promise<Lease> {
    if (!id) return Promise.reject(invalidArgument("lease id must not be empty"));
    return this.#mu.run(async () => {
      const leases = await this.#load();
      let rec = leases.get(id);
      if (!rec) {
        rec = { id, createdAt: new Date().toISOString(), digests: [] };
        if (opts.expiresAt) rec.expiresAt = opts.expiresAt.toISOString();
        await this.#save(new Map(leases).set(id, rec));
      }
      return toLease(rec);
    });
  }

  /** Drops the lease; true if it existed. Idempotent. */
  release(id: string): Promise<boolean> {
    return this.#mu.run(async () => {
      const leases = await this.#load();
      if (!leases.has(id)) return false;
      const next = new Map(leases);
      next.delete(id);
      await this.#save(next);
      return true;
    });
  }

  /** Adds `digest` to lease `id` (NotFound if the lease does not exist). */
  add(id: string, digest: string): Promise<void> {
    const d = parseDigest(digest);
    return this.#mu.run(async () => {
      const leases = await this.#load();
      const rec = leases.get(id);
      if (!rec) throw notFound(`lease ${id}: not found`);
      if (rec.digests.includes(d)) return;
      await this.#save(new Map(leases).set(id, { ...rec, digests: [...rec.digests, d] }));
    });
  }

  list(): Promise<Lease[]> {
    return this.#mu.run(async () => [...(await this.#load()).values()].map(toLease));
  }

  /** Digests held by unexpired leases; expired leases are removed as a side effect. */
  held(now = new Date()): Promise<{ digests: Set<Digest>; expired: string[] }> {
    return this.#mu.run(async () => {
      const leases = await this.#load();
      const digests = new Set<Digest>();
      const expired: string[] = [];
      for (const rec of leases.values()) {
        if (rec.expiresAt && Date.parse(rec.expiresAt) <= now.getTime()) expired.push(rec.id);
        else for (const d of rec.digests) digests.add(d);
      }
      if (expired.length) {
        const next = new Map(leases);
        for (const id of expired) next.delete(id);
        await this.#save(next);
      }
      return { digests, expired };
    });
  }

  async #load(): Promise<Map<string, LeaseRecord>> {
    if (this.#leases) return this.#leases;
    let recs: LeaseRecord[] = [];
    try {
      recs = (JSON.parse(await readFile(this.#file, "utf8")) as { leases: LeaseRecord[] }).leases;
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
    this.#leases = new Map(recs.map((r) => [r.id, r]));
    return this.#leases;
  }

  /** Persists first, then swaps the in-memory copy: a failed write changes nothing. */
  async #save(next: Map<string, LeaseRecord>): Promise<void> {
    await mkdir(path.dirname(this.#file), { recursive: true });
    await writeFileAtomic(this.#file, JSON.stringify({ leases: [...next.values()] }, null, 1));
    this.#leases = next;
  }
}

function toLease(r: LeaseRecord): Lease {
  const l: Lease = { id: r.id, createdAt: new Date(r.createdAt), digests: [...r.digests] };
  if (r.expiresAt) l.expiresAt = new Date(r.expiresAt);
  return l;
}
