/**
 * Applying image layers to a snapshotter: each layer becomes a committed snapshot named by its
 * chain ID, like containerd's unpacker. One layer = prepare → unpack into the active snapshot's
 * writable dir (no mount needed) → commit; on failure the active snapshot is removed.
 *
 * The unpacker needs an empty directory, which the overlay snapshotter always provides. The
 * native snapshotter copies the parent into the new snapshot, so only its base layer can be
 * applied here (applying whiteouts by deletion on a copied tree is not implemented).
 */
import { createHash, randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { type Digest, parseDigest } from "../content/digest.js";
import { isAlreadyExists } from "../errors.js";
import { upperDir } from "../snapshots/mount.js";
import { snapshotExists, type Snapshotter } from "../snapshots/snapshotter.js";
import { type UnpackOptions, type UnpackResult, unpackLayer } from "./unpack.js";

/** OCI chain IDs: chain(L0) = diffID(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: string[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds.map(parseDigest)) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash("sha256").update(`${prev} ${d}`).digest("hex")}`);
  }
  return out;
}

export interface ApplyOptions extends UnpackOptions {
  labels?: Record<string, string>;
}

/**
 * Unpacks `layer` as committed snapshot `name` on top of committed `parent`. Returns undefined
 * if `name` already exists (nothing to do; also when another caller committed it meanwhile).
 * Pass `expectedDiffId` so a layer that does not match the image config is never committed.
 */
export async function applyLayer(
  sn: Snapshotter,
  name: string,
  parent: string | undefined,
  layer: Readable | string,
  opts: ApplyOptions = {},
): Promise<UnpackResult | undefined> {
  if (await snapshotExists(sn, name)) return undefined;
  const key = `extract-${randomUUID()} ${name}`;
  const mounts = await sn.prepare(key, parent, { labels: opts.labels, signal: opts.signal });
  try {
    const result = await unpackLayer(layer, upperDir(mounts), opts);
    await sn.commit(name, key, { labels: opts.labels });
    return result;
  } catch (err) {
    await sn.remove(key).catch(() => {});
    if (isAlreadyExists(err)) return undefined;
    throw err;
  }
}
