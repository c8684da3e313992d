/**
 * Snapshot metadata as one JSON file (`metadata.json`), replaced atomically on every change.
 * The lead plans to move this into SQLite; the record shape mirrors containerd's bolt schema.
 */
import { readFile } from "node:fs/promises";
import { errnoCode, writeFileAtomic } from "../content/fs-atomic.js";
import { internal } from "../errors.js";
import type { Info, Kind } from "./snapshotter.js";

export interface SnapshotRecord {
  /** Directory name under `snapshots/`; never reused while the record exists. */
  id: string;
  kind: Kind;
  parent?: string;
  createdAt: string;
  updatedAt: string;
  labels: Record<string, string>;
}

export interface MetaState {
  version: 1;
  nextId: number;
  snapshots: Record<string, SnapshotRecord>;
}

export async function loadMeta(file: string): Promise<MetaState> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return { version: 1, nextId: 1, snapshots: {} };
    throw err;
  }
  const state = JSON.parse(text) as MetaState;
  if (state.version !== 1) throw internal(`${file}: unsupported metadata version ${String(state.version)}`);
  return state;
}

export function saveMeta(file: string, state: MetaState): Promise<void> {
  return writeFileAtomic(file, JSON.stringify(state, null, 1));
}

export function toInfo(name: string, r: SnapshotRecord): Info {
  const info: Info = {
    name,
    kind: r.kind,
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
    labels: { ...r.labels },
  };
  if (r.parent !== undefined) info.parent = r.parent;
  return info;
}

/** Ids of `key`'s ancestors, nearest first (the overlay lowerdir order). */
export function parentIds(state: MetaState, key: string): string[] {
  const ids: string[] = [];
  let cur = state.snapshots[key]?.parent;
  while (cur !== undefined) {
    const rec = state.snapshots[cur];
    if (!rec) throw internal(`snapshot metadata: ${key}: missing ancestor ${cur}`);
    ids.push(rec.id);
    cur = rec.parent;
  }
  return ids;
}
