/**
 * The snapshotter API, modelled on containerd's `snapshots.Snapshotter`.
 *
 * A snapshot is a directory tree in one of three kinds:
 * - active: writable, created by `prepare`, turned into a committed snapshot by `commit`;
 * - committed: read-only, a parent for others; named by the caller (skiff uses the chain ID);
 * - view: read-only, created by `view`, never committed.
 * Keys and names share one namespace. Implementations serialize their operations, so they are
 * safe to call concurrently; mounts are returned, never performed (the caller or shim mounts).
 */

import { isNotFound } from "../errors.js";

export type Kind = "active" | "committed" | "view";

/** A mount to perform at a caller-chosen target (containerd's `mount.Mount`). */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface Info {
  /** The key (active/view) or name (committed). */
  name: string;
  parent?: string;
  kind: Kind;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

export interface Usage {
  /** Bytes allocated on disk (st_blocks × 512, hard links counted once). */
  size: number;
  inodes: number;
}

export interface SnapshotOptions {
  labels?: Record<string, string>;
  signal?: AbortSignal;
}

export interface Snapshotter {
  /** Plugin name: "overlayfs" or "native". */
  readonly name: string;
  /** NotFound if the key does not exist. */
  stat(key: string): Promise<Info>;
  /** Replaces the labels of `key`. */
  update(key: string, labels: Record<string, string>): Promise<Info>;
  /** Disk usage of the snapshot's own layer (not its parents). */
  usage(key: string, opts?: { signal?: AbortSignal }): Promise<Usage>;
  /** Mounts of an active snapshot or a view; FailedPrecondition for a committed one. */
  mounts(key: string): Promise<Mount[]>;
  /**
   * Creates an active snapshot on top of committed `parent` (or empty). AlreadyExists if `key`
   * exists; NotFound if `parent` does not; InvalidArgument if `parent` is not committed.
   */
  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /** Like `prepare` but read-only; a view can never be committed. */
  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /**
   * Turns active `key` into committed `name` (key disappears). FailedPrecondition if `key` is not
   * active; AlreadyExists if `name` exists. The caller must have unmounted `key`.
   */
  commit(name: string, key: string, opts?: SnapshotOptions): Promise<void>;
  /**
   * Removes `key` and its directory. FailedPrecondition if other snapshots have it as parent or
   * something is mounted inside its directory; NotFound if missing.
   */
  remove(key: string): Promise<void>;
  list(): Promise<Info[]>;
  /** Calls `fn` for each snapshot (optionally filtered), one at a time. */
  walk(fn: (info: Info) => void | Promise<void>, filter?: (info: Info) => boolean): Promise<void>;
  /** Releases resources; the snapshots stay on disk. Idempotent. */
  close(): Promise<void>;
}

/** True if `key` names a snapshot of `sn` (NotFound → false; other errors propagate). */
export async function snapshotExists(sn: Snapshotter, key: string): Promise<boolean> {
  try {
    await sn.stat(key);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
