/**
 * SPDY/3 header blocks: (de)serialisation of name/value pairs and the per-session zlib contexts.
 *
 * A session owns exactly one `HeaderCompressor` (for blocks it sends) and one
 * `HeaderDecompressor` (for blocks it receives). Both are stateful across blocks, so calls must be
 * made in wire order; each class serialises its own calls, so a caller may fire several without
 * awaiting in between. Every block ends with a Z_SYNC_FLUSH so the peer can decode it at once.
 */
import zlib from "node:zlib";
import { SkiffError, ErrorCode } from "../../errors.js";
import { SPDY3_DICTIONARY } from "./dictionary.js";

/** Header names are lower case on the wire; several values of one name are joined by NUL. */
export type HeaderMap = Map<string, string[]>;

/** Upper bound on one decompressed block; headers in these protocols are tiny. */
const MAX_BLOCK = 256 * 1024;

export function serializeHeaders(h: HeaderMap): Buffer {
  const parts: Buffer[] = [];
  const n = Buffer.alloc(4);
  n.writeUInt32BE(h.size);
  parts.push(n);
  for (const [name, values] of h) {
    for (const s of [name.toLowerCase(), values.join("\0")]) {
      const b = Buffer.from(s, "utf8");
      const l = Buffer.alloc(4);
      l.writeUInt32BE(b.length);
      parts.push(l, b);
    }
  }
  return Buffer.concat(parts);
}

export function parseHeaders(b: Buffer): HeaderMap {
  const bad = (why: string) => new SkiffError(ErrorCode.InvalidArgument, `spdy: malformed header block: ${why}`);
  if (b.length < 4) throw bad("no pair count");
  const n = b.readUInt32BE(0);
  let off = 4;
  const read = (): string => {
    if (off + 4 > b.length) throw bad("truncated length");
    const len = b.readUInt32BE(off);
    off += 4;
    if (off + len > b.length) throw bad("truncated string");
    const s = b.toString("utf8", off, off + len);
    off += len;
    return s;
  };
  const out: HeaderMap = new Map();
  for (let i = 0; i < n; i++) {
    const name = read().toLowerCase();
    if (name === "") throw bad("empty header name");
    const values = read().split("\0");
    out.set(name, [...(out.get(name) ?? []), ...values]);
  }
  return out;
}

/** Builds a HeaderMap from a plain record (values may be a list). */
export function headerMap(rec: Record<string, string | string[]>): HeaderMap {
  const m: HeaderMap = new Map();
  for (const [k, v] of Object.entries(rec)) m.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
  return m;
}

/** First value of a header, or undefined. */
export function headerValue(h: HeaderMap, name: string): string | undefined {
  return h.get(name.toLowerCase())?.[0];
}

/** Runs one write + sync flush through a zlib stream and returns everything it produced. */
function syncFlushOnce(z: zlib.Deflate | zlib.Inflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      total += c.length;
      if (total > MAX_BLOCK) onError(new SkiffError(ErrorCode.InvalidArgument, "spdy: header block too large"));
    };
    const onError = (err: Error) => {
      z.off("data", onData);
      z.off("error", onError);
      reject(err instanceof SkiffError ? err : new SkiffError(ErrorCode.InvalidArgument, `spdy: header block: ${err.message}`, { cause: err }));
    };
    z.on("data", onData);
    z.once("error", onError);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      // 'data' for the flushed output is emitted before the flush callback runs.
      z.off("data", onData);
      z.off("error", onError);
      resolve(Buffer.concat(chunks));
    });
  });
}

abstract class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  protected serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

export class HeaderCompressor extends Serial {
  private readonly z = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });

  compress(h: HeaderMap): Promise<Buffer> {
    return this.serial(() => syncFlushOnce(this.z, serializeHeaders(h)));
  }

  close(): void {
    this.z.destroy();
  }
}

export class HeaderDecompressor extends Serial {
  private readonly z = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  private failed: Error | undefined;

  /** Decompresses and parses one block. After a failure the context is unusable (state lost). */
  decompress(block: Buffer): Promise<HeaderMap> {
    return this.serial(async () => {
      if (this.failed) throw this.failed;
      try {
        return parseHeaders(await syncFlushOnce(this.z, block));
      } catch (err) {
        this.failed = err as Error;
        throw err;
      }
    });
  }

  close(): void {
    this.z.destroy();
  }
}
