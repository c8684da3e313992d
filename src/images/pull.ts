/**
 * Pulling an image from a registry and recording its name: the registry client (`registry/pull`)
 * stores the blobs under a lease, then the config is parsed and the name is written to the image
 * store, then the lease is released (also on failure), so GC can never collect a pulled blob
 * before the record that keeps it exists.
 *
 * Like `import`, the recorded target is the platform manifest (for an index, the one chosen for
 * this machine), so `unpack` and `gc` see a plain image manifest. The name is normalized the way
 * the rest of the image store does it (`busybox` → `docker.io/library/busybox:latest`).
 *
 * Errors keep their codes: NotFound for a missing image, FailedPrecondition "unauthorized: …" from
 * the registry, DeadlineExceeded on a stalled download, Canceled when `signal` aborts.
 */
import type { ContentStore } from "../content/store.js";
import { invalidArgument } from "../errors.js";
import type { ImageRecord, ImageStore } from "../metadata/images.js";
import { type Progress, pull } from "../registry/pull.js";
import type { RegistryHosts } from "../registry/hosts.js";
import { parseImageConfig } from "./config.js";
import { normalizeName } from "./reference.js";

export type { Progress } from "../registry/pull.js";

export interface PullImageOptions {
  content: ContentStore;
  images: ImageStore;
  hosts: RegistryHosts;
  signal?: AbortSignal;
  /** Per-blob byte progress (layers only); called often, keep it cheap. */
  onProgress?: (p: Progress) => void;
  /** A download receiving no bytes for this long fails the pull with DeadlineExceeded (default 60 000). */
  stallTimeoutMs?: number;
  /** Parallel layer downloads (default 3). */
  concurrency?: number;
  /** Labels recorded on the image. */
  labels?: Record<string, string>;
}

/** Pulls `ref` and records it; returns the image record. Safe to call concurrently. */
export async function pullImage(ref: string, opts: PullImageOptions): Promise<ImageRecord> {
  // Validates the reference before any network traffic; InvalidArgument for a bad one.
  const name = normalizeName(ref);
  const res = await pull(ref, {
    store: opts.content,
    hosts: opts.hosts,
    signal: opts.signal,
    onProgress: opts.onProgress,
    stallTimeoutMs: opts.stallTimeoutMs,
    concurrency: opts.concurrency,
  });
  try {
    const config = parseImageConfig(await opts.content.readAll(res.config.digest));
    if (config.diffIds.length !== res.layers.length) {
      throw invalidArgument(`image ${name}: manifest has ${res.layers.length} layers but the config ${config.diffIds.length} diff_ids`);
    }
    const size = res.manifest.size + res.config.size + res.layers.reduce((n, l) => n + l.size, 0);
    return opts.images.put({
      name,
      target: { digest: res.manifest.digest, mediaType: res.manifest.mediaType, size: res.manifest.size },
      configDigest: res.config.digest,
      config,
      size,
      labels: opts.labels ?? {},
    });
  } finally {
    // Not bounded by the caller's signal: the record (if any) now protects the blobs.
    await opts.content.releaseLease(res.lease);
  }
}
