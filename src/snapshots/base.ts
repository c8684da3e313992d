/**
 * Shared machinery of the directory-based snapshotters: metadata, key rules, the mutex and the
 * on-disk layout `<dir>/metadata.json` + `<dir>/snapshots/<id>/fs`. Subclasses decide how a new
 * snapshot directory is populated and which mounts describe it.
 *
 * Every operation runs under one mutex (they serialize; `usage` walks outside it). Order of
 * effects keeps the file system derived from the metadata: a new directory is made before its
 * record is saved (a crash leaves an orphan dir, removed on next load), and a removed
 * snapshot's record is dropped before its directory is deleted.
 */
import { mkdir, readdir, rename } from "node:fs/promises";
import * as path from "node:path";
import { Mutex } from "../content/mutex.js";
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errors.js";
import { mountsUnder } from "../runtime/mount-linux.js";
import { removeTree } from "../util/remove-tree.js";
import { throwIfAborted } from "../util/signal.js";
import { loadMeta, type MetaState, parentIds, saveMeta, type SnapshotRecord, toInfo } from "./meta.js";
import type { Info, Kind, Mount, SnapshotOptions, Snapshotter, Usage } from "./snapshotter.js";
import { diskUsage } from "./usage.js";

export abstract class DirSnapshotter implements Snapshotter {
  abstract readonly name: string;
  /** This snapshotter's own directory, e.g. `<root>/snapshots/overlayfs`. */
  readonly dir: string;
  readonly #mu = new Mutex();
  #state: MetaState | undefined;
  /** Usage of committed snapshots never changes: computed once per process. */
  readonly #usageCache = new Map<string, Usage>();

  protected constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates `snapshotDir(id)` and its contents for a new snapshot. */
  protected abstract populate(id: string, kind: Kind, parents: string[], signal?: AbortSignal): Promise<void>;
  /** The mounts of an active snapshot or view with ancestors `parents` (nearest first). */
  protected abstract mountsOf(id: string, kind: Kind, parents: string[]): Mount[];

  protected snapshotDir(id: string): string {
    return path.join(this.dir, "snapshots", id);
  }
  /** The snapshot's own tree (overlay upperdir). */
  fsDir(id: string): string {
    return path.join(this.snapshotDir(id), "fs");
  }
  get #metaFile(): string {
    return path.join(this.dir, "metadata.json");
  }

  stat(key: string): Promise<Info> {
    return this.#locked(async (s) => toInfo(key, this.#get(s, key)));
  }

  update(key: string, labels: Record<string, string>): Promise<Info> {
    return this.#locked(async (s) => {
      const rec = { ...this.#get(s, key), labels: { ...labels }, updatedAt: new Date().toISOString() };
      await this.#save({ ...s, snapshots: { ...s.snapshots, [key]: rec } });
      return toInfo(key, rec);
    });
  }

  async usage(key: string, opts: { signal?: AbortSignal } = {}): Promise<Usage> {
    const rec = await this.#locked(async (s) => this.#get(s, key));
    const cached = this.#usageCache.get(rec.id);
    if (cached) return cached;
    let u: Usage;
    try {
      u = await diskUsage(this.fsDir(rec.id), opts.signal);
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") throw notFound(`snapshot ${key}: removed`, err);
      throw err;
    }
    if (rec.kind === "committed") this.#usageCache.set(rec.id, u);
    return u;
  }

  mounts(key: string): Promise<Mount[]> {
    return this.#locked(async (s) => {
      const rec = this.#get(s, key);
      if (rec.kind === "committed") throw failedPrecondition(`snapshot ${key}: committed snapshots have no mounts`);
      return this.mountsOf(rec.id, rec.kind, parentIds(s, key));
    });
  }

  prepare(key: string, parent?: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    return this.#create("active", key, parent, opts);
  }

  view(key: string, parent?: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    return this.#create("view", key, parent, opts);
  }

  commit(name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    return this.#locked(async (s) => {
      throwIfAborted(opts.signal, `commit ${key}`);
      validKey(name);
      const rec = this.#get(s, key);
      if (rec.kind !== "active") throw failedPrecondition(`snapshot ${key}: is ${rec.kind}, not active`);
      if (s.snapshots[name]) throw alreadyExists(`snapshot ${name}: already exists`);
      const snapshots = { ...s.snapshots };
      delete snapshots[key];
      const now = new Date().toISOString();
      snapshots[name] = { ...rec, kind: "committed", updatedAt: now, labels: { ...(opts.labels ?? rec.labels) } };
      await this.#save({ ...s, snapshots });
    });
  }

  remove(key: string): Promise<void> {
    return this.#locked(async (s) => {
      const rec = this.#get(s, key);
      const child = Object.entries(s.snapshots).find(([, r]) => r.parent === key);
      if (child) throw failedPrecondition(`snapshot ${key}: has child ${child[0]}`);
      const dir = this.snapshotDir(rec.id);
      const mounted = await mountsUnder(dir);
      if (mounted.length) throw failedPrecondition(`snapshot ${key}: ${mounted[0]} is mounted`);
      // Move the directory aside first (atomic), so a crash never leaves a half-deleted tree
      // under a live id; the renamed dir is deleted now or by the next load's cleanup.
      const trash = path.join(this.dir, "snapshots", `rm-${rec.id}`);
      await rename(dir, trash).catch((err: { code?: string }) => {
        if (err.code !== "ENOENT") throw err;
      });
      const snapshots = { ...s.snapshots };
      delete snapshots[key];
      try {
        await this.#save({ ...s, snapshots });
      } catch (err) {
        await rename(trash, dir).catch(() => {});
        throw err;
      }
      this.#usageCache.delete(rec.id);
      await removeTree(trash);
    });
  }

  list(): Promise<Info[]> {
    return this.#locked(async (s) => Object.entries(s.snapshots).map(([k, r]) => toInfo(k, r)));
  }

  async walk(fn: (info: Info) => void | Promise<void>, filter?: (info: Info) => boolean): Promise<void> {
    for (const info of await this.list()) if (!filter || filter(info)) await fn(info);
  }

  async close(): Promise<void> {
    await this.#mu.run(async () => {});
  }

  #create(kind: Kind, key: string, parent: string | undefined, opts: SnapshotOptions): Promise<Mount[]> {
    return this.#locked(async (s) => {
      throwIfAborted(opts.signal, `${kind === "view" ? "view" : "prepare"} ${key}`);
      validKey(key);
      if (s.snapshots[key]) throw alreadyExists(`snapshot ${key}: already exists`);
      if (parent !== undefined && parent !== "") {
        const p = s.snapshots[parent];
        if (!p) throw notFound(`parent snapshot ${parent}: not found`);
        if (p.kind !== "committed") throw invalidArgument(`parent snapshot ${parent}: is ${p.kind}, not committed`);
      } else parent = undefined;
      // Claim a fresh directory: mkdir fails on a leftover we could not clean (still mounted).
      const taken = new Set(Object.values(s.snapshots).map((r) => r.id));
      let n = s.nextId;
      for (;;) {
        if (!taken.has(String(n))) {
          try {
            await mkdir(this.snapshotDir(String(n)));
            break;
          } catch (err) {
            if ((err as { code?: string }).code !== "EEXIST") throw err;
          }
        }
        n++;
      }
      const id = String(n);
      const now = new Date().toISOString();
      const rec: SnapshotRecord = { id, kind, createdAt: now, updatedAt: now, labels: { ...opts.labels } };
      if (parent) rec.parent = parent;
      const next: MetaState = { ...s, nextId: n + 1, snapshots: { ...s.snapshots, [key]: rec } };
      const parents = parentIds(next, key);
      try {
        await this.populate(id, kind, parents, opts.signal);
        await this.#save(next);
      } catch (err) {
        await removeTree(this.snapshotDir(id));
        throw err;
      }
      return this.mountsOf(id, kind, parents);
    });
  }

  #get(s: MetaState, key: string): SnapshotRecord {
    const rec = s.snapshots[key];
    if (!rec) throw notFound(`snapshot ${key}: not found`);
    return rec;
  }

  #locked<T>(fn: (s: MetaState) => Promise<T>): Promise<T> {
    return this.#mu.run(async () => fn(this.#state ?? (await this.#load())));
  }

  async #save(next: MetaState): Promise<void> {
    await saveMeta(this.#metaFile, next);
    this.#state = next;
  }

  /** Loads metadata and removes directories no record points at (crash leftovers). */
  async #load(): Promise<MetaState> {
    await mkdir(path.join(this.dir, "snapshots"), { recursive: true });
    const state = await loadMeta(this.#metaFile);
    const live = new Set(Object.values(state.snapshots).map((r) => r.id));
    for (const name of await readdir(path.join(this.dir, "snapshots"))) {
      if (live.has(name)) continue;
      const dir = path.join(this.dir, "snapshots", name);
      if ((await mountsUnder(dir)).length) continue; // never delete through a mount
      await removeTree(dir);
    }
    this.#state = state;
    return state;
  }
}

function validKey(key: string): void {
  if (!key || key.includes("\0")) throw invalidArgument(`invalid snapshot key ${JSON.stringify(key)}`);
}
