/**
 * Pull an image from an OCI distribution registry into the content store.
 *
 * Stores the index (if any), the platform manifest, the config and the layers, all under one
 * lease that the caller releases after recording the image (`result.lease`); on failure the lease
 * is released here. Blobs already present are skipped. Every blob is written through a store
 * writer with its expected digest and size, so nothing unverified ever becomes visible.
 *
 * Blob downloads: at most `concurrency` at once; transient failures (connection errors, 5xx, 429,
 * a locked ingest) are retried `retries` times with exponential backoff, resuming the partial
 * ingest with a `Range` request. A download that receives no bytes for `stallTimeoutMs` is aborted
 * and the pull fails with DeadlineExceeded naming the blob: a pull never hangs on a silent server.
 */
import { randomUUID } from "node:crypto";
import type { ContentStore } from "../content/store.js";
import type { Writer } from "../content/writer.js";
import { codeOf, deadlineExceeded, ErrorCode, invalidArgument, isAlreadyExists, notFound, SkiffError, unavailable } from "../errors.js";
import { abortError, anySignal, sleep, throwIfAborted } from "../util/signal.js";
import { Authorizer } from "./auth.js";
import type { Response } from "./client.js";
import { type Endpoint, formatReference, parseReference, type Reference, type RegistryHosts } from "./hosts.js";
import {
  DEFAULT_PLATFORM,
  type Descriptor,
  fetchManifestByDigest,
  type FetchedManifest,
  type Index,
  isIndexType,
  isManifestType,
  type Manifest,
  type Platform,
  resolve,
  selectManifest,
} from "./resolve.js";

export interface Progress {
  digest: string;
  mediaType: string;
  total: number;
  done: number;
}

export interface PullOptions {
  store: ContentStore;
  hosts: RegistryHosts;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Parallel layer downloads (default 3). */
  concurrency?: number;
  /** A download receiving no bytes for this long fails the pull (default 60 000). */
  stallTimeoutMs?: number;
  /** Retries per blob after a transient failure (default 3). */
  retries?: number;
  /** First backoff delay, doubled per retry (default 250 ms). */
  backoffMs?: number;
  platform?: Platform;
  /** Lease id to hold the content under (created if missing; default `pull-<uuid>`). */
  lease?: string;
  /** Shared token cache; a fresh one per pull by default. */
  authorizer?: Authorizer;
}

export interface PullResult {
  /** Normalised reference name, e.g. `docker.io/library/busybox:latest`. */
  name: string;
  /** Digest of the top-level manifest or index (what the reference resolved to). */
  digest: string;
  /** The platform manifest's descriptor. */
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Set when the reference resolved to an index / manifest list. */
  indexDigest?: string;
  /** Lease protecting the pulled content; release it once the image is recorded. */
  lease: string;
}

/** Pulls `ref`; see the module comment. */
export async function pull(ref: string, opts: PullOptions): Promise<PullResult> {
  const parsed = parseReference(ref);
  const name = formatReference(parsed);
  const { store } = opts;
  const leaseId = opts.lease ?? `pull-${randomUUID()}`;
  await store.lease(leaseId);
  try {
    const ctx: Ctx = {
      ref: parsed,
      name,
      store,
      lease: leaseId,
      auth: opts.authorizer ?? new Authorizer(),
      endpoints: opts.hosts.endpoints(parsed.domain),
      signal: opts.signal,
      onProgress: opts.onProgress,
      stallTimeoutMs: opts.stallTimeoutMs ?? 60_000,
      retries: opts.retries ?? 3,
      backoffMs: opts.backoffMs ?? 250,
    };
    // Manifests are small: each fetch (auth round trips included) must finish within the stall timeout.
    const top = await withDeadline(ctx, `resolve ${name}`, (signal) => resolve(parsed, { ...ctx, signal }));
    let manifestFetched = top;
    let indexDigest: string | undefined;
    if (isIndexType(top.descriptor.mediaType)) {
      indexDigest = top.descriptor.digest;
      const index = JSON.parse(top.bytes.toString("utf8")) as Index;
      const chosen = selectManifest(index, opts.platform ?? DEFAULT_PLATFORM, name);
      manifestFetched = await withDeadline(ctx, `fetch manifest ${chosen.digest} of ${name}`, (signal) =>
        fetchManifestByDigest(parsed, chosen.digest, top.endpoint, { ...ctx, signal }),
      );
      if (manifestFetched.descriptor.size !== chosen.size) {
        throw invalidArgument(`image ${name}: manifest ${chosen.digest} size ${manifestFetched.descriptor.size}, index says ${chosen.size}`);
      }
    }
    if (!isManifestType(manifestFetched.descriptor.mediaType)) {
      throw invalidArgument(`image ${name}: expected an image manifest, got ${manifestFetched.descriptor.mediaType}`);
    }
    const manifest = JSON.parse(manifestFetched.bytes.toString("utf8")) as Manifest;
    const config = checkDescriptor(manifest.config, name, "config");
    const layers = (manifest.layers ?? []).map((l, i) => checkDescriptor(l, name, `layer ${i}`));

    // Children first, then manifest, then index: a stored manifest implies its blobs are stored.
    const preferred = [manifestFetched.endpoint, ...ctx.endpoints.filter((e) => e !== manifestFetched.endpoint)];
    await fetchBlob(ctx, preferred, config, false);
    const unique = [...new Map(layers.map((l) => [l.digest, l])).values()];
    await runLimited(unique, Math.max(1, opts.concurrency ?? 3), ctx.signal, (l) => fetchBlob(ctx, preferred, l, true));
    await storeManifest(ctx, manifestFetched);
    if (indexDigest) await storeManifest(ctx, top);

    const result: PullResult = {
      name,
      digest: top.descriptor.digest,
      manifest: manifestFetched.descriptor,
      config,
      layers,
      lease: leaseId,
    };
    if (indexDigest) result.indexDigest = indexDigest;
    return result;
  } catch (err) {
    // Cleanup is not bounded by the caller's (possibly aborted) signal.
    await store.releaseLease(leaseId).catch(() => {});
    throw err;
  }
}

interface Ctx {
  ref: Reference;
  name: string;
  store: ContentStore;
  lease: string;
  auth: Authorizer;
  endpoints: Endpoint[];
  signal: AbortSignal | undefined;
  onProgress: ((p: Progress) => void) | undefined;
  stallTimeoutMs: number;
  retries: number;
  backoffMs: number;
}

/** Runs `fn` under the caller's signal plus a `stallTimeoutMs` deadline (DeadlineExceeded naming `what`). */
async function withDeadline<R>(ctx: Ctx, what: string, fn: (signal: AbortSignal) => Promise<R>): Promise<R> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(deadlineExceeded(`${what}: no answer within ${ctx.stallTimeoutMs} ms`)), ctx.stallTimeoutMs);
  const signal = anySignal(ctx.signal, ac.signal)!;
  try {
    return await fn(signal);
  } catch (err) {
    if (signal.aborted) throw abortError(signal, what);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function checkDescriptor(d: Descriptor | undefined, name: string, what: string): Descriptor {
  if (!d || typeof d.digest !== "string" || !/^sha256:[a-f0-9]{64}$/.test(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw invalidArgument(`image ${name}: invalid ${what} descriptor`);
  }
  return d;
}

async function storeManifest(ctx: Ctx, m: FetchedManifest): Promise<void> {
  await ctx.store.writeBlob(m.bytes, { digest: m.descriptor.digest, size: m.descriptor.size }, { lease: ctx.lease, signal: ctx.signal });
}

/** Runs `fn` over `items`, at most `limit` at a time; the first failure aborts the rest. */
async function runLimited<T>(items: T[], limit: number, signal: AbortSignal | undefined, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      throwIfAborted(signal, "pull");
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

const TRANSIENT = new Set<ErrorCode>([ErrorCode.Unavailable]);

/** Downloads one blob into the store (skipped if present), retrying transient failures. */
async function fetchBlob(ctx: Ctx, endpoints: Endpoint[], desc: Descriptor, progress: boolean): Promise<void> {
  const report = (done: number) => {
    if (progress) ctx.onProgress?.({ digest: desc.digest, mediaType: desc.mediaType, total: desc.size, done });
  };
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(ctx.signal, `pull ${ctx.name}`);
    try {
      const done = await downloadOnce(ctx, endpoints, desc, report);
      if (done) return;
    } catch (err) {
      if (!TRANSIENT.has(codeOf(err)) || attempt >= ctx.retries || ctx.signal?.aborted) throw err;
      await sleep(ctx.backoffMs * 2 ** attempt, ctx.signal);
    }
  }
}

/** One attempt; true when the blob is stored (or already was). */
async function downloadOnce(ctx: Ctx, endpoints: Endpoint[], desc: Descriptor, report: (done: number) => void): Promise<boolean> {
  let w: Writer;
  try {
    w = await ctx.store.writer(`pull-${desc.digest}`, { digest: desc.digest, size: desc.size }, { lease: ctx.lease });
  } catch (err) {
    if (isAlreadyExists(err)) {
      report(desc.size);
      return true;
    }
    throw err;
  }
  let committed = false;
  try {
    const offset = w.offset;
    report(offset);
    if (offset < desc.size) await streamInto(ctx, endpoints, desc, w, offset, report);
    try {
      await w.commit({ signal: ctx.signal });
    } catch (err) {
      committed = true; // commit finishes the writer either way
      if (isAlreadyExists(err)) return true;
      throw err;
    }
    committed = true;
    report(desc.size);
    return true;
  } finally {
    // Keep partial bytes so the retry (or a later pull) resumes with a Range request.
    if (!committed) await w.close();
  }
}

async function openBlob(ctx: Ctx, endpoints: Endpoint[], desc: Descriptor, offset: number, signal: AbortSignal): Promise<Response> {
  let lastErr: unknown;
  for (const ep of endpoints) {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let res: Response;
    try {
      res = await ctx.auth.fetch(ep, ctx.ref.repository, `/v2/${ctx.ref.repository}/blobs/${desc.digest}`, { headers, signal });
    } catch (err) {
      if (codeOf(err) !== ErrorCode.Unavailable || signal.aborted) throw err;
      lastErr = err;
      continue;
    }
    if (res.status === 200 || res.status === 206) return res;
    res.body.resume();
    if (res.status === 404) {
      lastErr = notFound(`image ${ctx.name}: blob ${desc.digest} not found on ${ep.host}`);
    } else if (res.status >= 500 || res.status === 429 || res.status === 416) {
      lastErr = unavailable(`image ${ctx.name}: blob ${desc.digest} from ${ep.host}: HTTP ${res.status}`);
    } else {
      throw unavailable(`image ${ctx.name}: blob ${desc.digest} from ${ep.host}: unexpected HTTP ${res.status}`);
    }
  }
  throw lastErr ?? notFound(`image ${ctx.name}: blob ${desc.digest}: no endpoint`);
}

/**
 * Streams the blob from `offset` into `w`, with stall detection. A 200 answer to a Range request
 * restarts from zero on the wire; its first `offset` bytes are skipped.
 */
async function streamInto(ctx: Ctx, endpoints: Endpoint[], desc: Descriptor, w: Writer, offset: number, report: (n: number) => void) {
  const stall = new AbortController();
  const stalled = () =>
    deadlineExceeded(`image ${ctx.name}: download of layer ${desc.digest} stalled: no bytes for ${ctx.stallTimeoutMs} ms (${w.offset}/${desc.size} bytes)`);
  let timer = setTimeout(() => stall.abort(stalled()), ctx.stallTimeoutMs);
  const reset = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(stalled()), ctx.stallTimeoutMs);
  };
  const signal = anySignal(ctx.signal, stall.signal)!;
  try {
    const res = await openBlob(ctx, endpoints, desc, offset, signal);
    reset();
    let skip = res.status === 206 ? 0 : offset;
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(String(res.headers["content-range"] ?? ""));
      if (!m || Number(m[1]) !== offset) {
        res.body.destroy();
        throw unavailable(`image ${ctx.name}: blob ${desc.digest}: bad Content-Range ${String(res.headers["content-range"])}`);
      }
    }
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        reset();
        if (skip >= chunk.length) {
          skip -= chunk.length;
          continue;
        }
        await w.write(skip ? chunk.subarray(skip) : chunk);
        skip = 0;
        report(w.offset);
      }
    } catch (err) {
      res.body.destroy();
      if (stall.signal.aborted) throw stall.signal.reason as SkiffError;
      if (ctx.signal?.aborted) throw abortError(ctx.signal, `pull ${ctx.name}`);
      // Connection reset / premature close mid-body: transient, resume next attempt.
      if (err instanceof SkiffError && err.code !== ErrorCode.Unavailable) throw err;
      throw unavailable(`image ${ctx.name}: blob ${desc.digest}: ${(err as Error).message}`, err);
    }
    if (w.offset < desc.size) {
      throw unavailable(`image ${ctx.name}: blob ${desc.digest}: connection closed after ${w.offset}/${desc.size} bytes`);
    }
  } catch (err) {
    if (stall.signal.aborted) throw stall.signal.reason as SkiffError;
    if (ctx.signal?.aborted) throw abortError(ctx.signal, `pull ${ctx.name}`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
