/**
 * unpackLayer: an OCI/Docker layer (tar, optionally gzip/zstd) into an empty directory (a
 * snapshot's `fs`), with whiteouts converted to overlayfs form.
 *
 * Pipeline: source → decompressor → TarGate (hash = diffID, parse, LayerGuard checks, hold back
 * each header until its member is judged safe) → GNU tar's stdin. If any member is hostile, tar
 * is killed, everything under `dest` is deleted and the InvalidArgument is thrown; `dest` is
 * left empty on every failure. See guard.ts for why nothing can be written outside `dest`.
 *
 * GNU tar flags:
 *   -x -f - -C dest              read the validated stream; member names resolve under dest
 *   --numeric-owner              uids/gids from the layer, never mapped through the host's names
 *   --same-owner --same-permissions   keep owners, modes and setuid/setgid/sticky bits (we are root)
 *   --xattrs --xattrs-include=*  keep every xattr (security.capability, user.*); the guard refuses
 *                                trusted.overlay.* first
 *   --delay-directory-restore    set directory modes/times once at the end: members of a
 *                                directory need not be adjacent in a layer, and a directory's
 *                                mtime would otherwise be bumped by later members
 * Not passed: -P (keep leading '/'), --ignore-zeros (read past the end marker),
 * --keep-directory-symlink, --overwrite: tar's safe defaults are what we want.
 */
import { spawn } from "node:child_process";
import { lstat, open, readdir, rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Digest, parseDigest } from "../content/digest.js";
import { failedPrecondition, internal, invalidArgument, notFound } from "../errors.js";
import { abortError } from "../util/signal.js";
import { type Compression, decompress } from "./decompress.js";
import { LayerGuard } from "./guard.js";
import { TarGate } from "./tar-gate.js";
import { applyWhiteouts } from "./whiteouts.js";

export type { Compression } from "./decompress.js";

export interface UnpackOptions {
  compression?: Compression;
  signal?: AbortSignal;
  /** Cap on the sum of declared (uncompressed, sparse-expanded) sizes; default 8 GiB. */
  maxSize?: number;
  /** If given, a different diffID is InvalidArgument (and dest is emptied). */
  expectedDiffId?: string;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: Digest;
  /** Bytes of the uncompressed tar stream. */
  size: number;
  entries: number;
  compression: Exclude<Compression, "auto">;
}

export const TAR_ARGS = [
  "-x",
  "--numeric-owner",
  "--same-permissions",
  "--same-owner",
  "--xattrs",
  "--xattrs-include=*",
  "--delay-directory-restore",
];

export async function unpackLayer(input: Readable | string, dest: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const { signal } = opts;
  if (signal?.aborted) throw abortError(signal, "unpack");
  const st = await lstat(dest).catch(() => undefined);
  if (!st?.isDirectory()) throw failedPrecondition(`unpack: ${dest} is not a directory`);
  if ((await readdir(dest)).length) throw failedPrecondition(`unpack: ${dest} is not empty`);
  if (opts.expectedDiffId !== undefined) parseDigest(opts.expectedDiffId);

  let source: Readable;
  if (typeof input === "string") {
    const fh = await open(input, "r").catch((err: { code?: string }) => {
      throw err.code === "ENOENT" ? notFound(`unpack: layer ${input} not found`, err) : err;
    });
    source = fh.createReadStream();
  } else source = input;
  let tar: ReturnType<typeof spawn> | undefined;
  let tarExit: Promise<TarExit> | undefined;
  let dec: Awaited<ReturnType<typeof decompress>> | undefined;
  try {
    dec = await decompress(source, opts.compression ?? "auto");
    const guard = new LayerGuard({ maxSize: opts.maxSize });
    tar = spawn("tar", [...TAR_ARGS, "-C", dest, "-f", "-"], {
      stdio: ["pipe", "ignore", "pipe"],
      env: { ...process.env, LC_ALL: "C.UTF-8" },
    });
    tarExit = exitOf(tar);
    const gate = new TarGate(guard, tar.stdin!);
    // tar failing (disk full, …) ends the pipeline at once instead of hashing the rest for nothing.
    void tarExit.then((e) => e.failure && gate.destroy(e.failure));
    let streamErr: unknown;
    try {
      await pipeline(dec.stream, gate, { signal });
    } catch (err) {
      streamErr = err;
      tar.kill("SIGKILL");
      dec.destroy();
    }
    const exit = await tarExit;
    const decErr = await dec.done.then(() => undefined, (e: unknown) => e);
    if (gate.rejected) throw gate.rejected; // a hostile member: the reason that matters
    if (signal?.aborted) throw abortError(signal, "unpack");
    if (decErr) throw decErr;
    if (streamErr) throw streamErr; // tar's own failure if it died first (see above), else the cause
    if (exit.failure) throw exit.failure;
    await applyWhiteouts(dest, guard, signal);
    const diffId = gate.diffId;
    if (opts.expectedDiffId !== undefined && opts.expectedDiffId !== diffId) {
      throw invalidArgument(`layer diffID mismatch: expected ${opts.expectedDiffId}, actual ${diffId}`);
    }
    return { diffId, size: gate.size, entries: guard.entries, compression: dec.kind };
  } catch (err) {
    tar?.kill("SIGKILL"); // no-op if it already exited
    await tarExit; // never delete while tar may still be writing

    dec?.destroy();
    await emptyDir(dest);
    throw err;
  }
}

interface TarExit {
  failure?: Error;
}

function exitOf(child: ReturnType<typeof spawn>): Promise<TarExit> {
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    if (stderr.length < 16384) stderr += b.toString();
  });
  return new Promise((resolve) => {
    child.once("error", (e) => resolve({ failure: internal(`tar: ${e.message}`, e) }));
    child.once("close", (code, sig) => {
      resolve(code === 0 ? {} : { failure: internal(`tar: exit ${code ?? sig}: ${stderr.trim()}`) });
    });
  });
}

/** Deletes everything under `dir` (never following symlinks), keeping `dir` itself. */
async function emptyDir(dir: string): Promise<void> {
  const names = await readdir(dir, { encoding: "buffer" }).catch(() => [] as Buffer[]);
  await Promise.all(names.map((n) => rm(Buffer.concat([Buffer.from(dir + "/"), n]), { recursive: true, force: true })));
}
