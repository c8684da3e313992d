/**
 * Layer decompression: gzip with node:zlib, zstd with Debian's `zstd -dc` (Node 20 has no zstd),
 * "auto" sniffs the magic bytes. Errors are InvalidArgument (the blob is not what it claims).
 */
import { spawn } from "node:child_process";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { invalidArgument } from "../errors.js";

export type Compression = "gzip" | "zstd" | "none" | "auto";

export interface Decompressed {
  stream: Readable;
  kind: Exclude<Compression, "auto">;
  /** Settles when the decompressor is done; rejects if it failed (after the stream ended). */
  done: Promise<void>;
  /** Stops the decompressor (idempotent). */
  destroy(): void;
}

const GZIP = [0x1f, 0x8b];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];

export async function decompress(src: Readable, compression: Compression): Promise<Decompressed> {
  let kind = compression;
  if (kind === "auto") {
    const { head, stream } = await peek(src, 4);
    src = stream;
    const starts = (m: number[]) => m.every((b, i) => head[i] === b);
    kind = starts(GZIP) ? "gzip" : starts(ZSTD) ? "zstd" : "none";
  }
  switch (kind) {
    case "none":
      return { stream: src, kind, done: Promise.resolve(), destroy: () => src.destroy() };
    case "gzip": {
      const gunzip = createGunzip();
      // Listen on gunzip itself: pipeline() may report success once gunzip's writable side is
      // done, before a bad trailer surfaces; 'close' settles it when the consumer destroyed it.
      const done = new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => reject(isZlibError(err) ? invalidArgument(`gzip: ${err.message}`, err) : err);
        gunzip.once("error", fail);
        gunzip.once("close", () => resolve());
        pipeline(src, gunzip, (err) => err && fail(err));
      });
      done.catch(() => {});
      return { stream: gunzip, kind, done, destroy: () => gunzip.destroy() };
    }
    case "zstd":
      return zstd(src);
    default: {
      const never: never = kind;
      throw invalidArgument(`unknown compression ${String(never)}`);
    }
  }
}

function zstd(src: Readable): Decompressed {
  // --long=31 lifts the decoder's window limit so layers made with `zstd --long` decode too.
  const child = spawn("zstd", ["-d", "-c", "-q", "--long=31"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  let srcErr: Error | undefined;
  let killed = false;
  child.stderr.on("data", (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString();
  });
  pipeline(src, child.stdin, (err) => {
    // A failing source (not zstd going away) must fail the output too, with its own error.
    if (err && (err as { code?: string }).code !== "EPIPE") {
      srcErr = err;
      child.stdout.destroy(err);
      child.kill("SIGKILL");
    }
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (e) => reject(invalidArgument(`zstd: ${e.message}`, e)));
    child.on("close", (code, sig) => {
      if (srcErr) reject(srcErr);
      else if (code === 0 || killed) resolve();
      else reject(invalidArgument(`zstd: ${stderr.trim() || `exit ${code ?? sig}`}`));
    });
  });
  done.catch(() => {});
  const destroy = () => {
    killed = true;
    src.destroy();
    child.kill("SIGKILL");
  };
  return { stream: child.stdout, kind: "zstd", done, destroy };
}

function isZlibError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("Z_");
}

/** Reads at least `n` bytes (or to EOF) and returns them with a stream that replays them. */
async function peek(src: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let len = 0;
  let ended = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(b);
    len += b.length;
  }
  async function* replay() {
    try {
      yield* chunks;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { head: Buffer.concat(chunks).subarray(0, n), stream: Readable.from(replay(), { objectMode: false }) };
}
