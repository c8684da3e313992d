/**
 * A Writable that receives the uncompressed layer, hashes it (the diffID), parses it header by
 * header and forwards to `out` (tar's stdin) only bytes already judged safe:
 * - metadata entries (GNU 'L'/'K', PAX 'x'/'g', GNU sparse extension blocks) and a member's
 *   header are *held back* until the member they describe passed `LayerGuard.check`;
 * - a member's data and padding are forwarded as they stream by (no copy);
 * - after the end-of-archive marker nothing more is forwarded (tar is not run with
 *   --ignore-zeros, so it would stop there too), but the rest is still hashed.
 * If a check fails the gate errors with that InvalidArgument, and the offending header never
 * reaches `out`. A broken `out` (tar died) does not stop hashing; the caller reads tar's exit.
 */
import { createHash } from "node:crypto";
import { Writable } from "node:stream";
import { invalidArgument } from "../errors.js";
import { type LayerGuard, type TarEntry } from "./guard.js";
import { BLOCK, isZeroBlock, parseHeader, parsePax, type RawHeader, sparseExtContinues } from "./tar-format.js";

/** Metadata entries are buffered in memory: bound them. */
const MAX_META = 16 << 20;

type State = "header" | "meta" | "sparse-ext" | "data" | "end";

export class TarGate extends Writable {
  readonly #guard: LayerGuard;
  readonly #out: NodeJS.WritableStream & { destroyed?: boolean };
  readonly #hash = createHash("sha256");
  #total = 0;
  #state: State = "header";
  #block = Buffer.alloc(BLOCK);
  #blockLen = 0;
  #remaining = 0; // meta or data bytes left, then padding
  #padding = 0;
  #meta: Buffer[] = [];
  #metaType = "";
  #held: Buffer[] = [];
  #pending: { longName?: string; longLink?: string; pax?: Map<string, string> } = {};
  #globals = new Map<string, string>();
  #header: RawHeader | undefined;
  #outBroken = false;
  #zeroBlocks = 0;
  /** Set when an entry was rejected (as opposed to the stream merely ending early). */
  rejected: Error | undefined;

  constructor(guard: LayerGuard, out: NodeJS.WritableStream) {
    super({ highWaterMark: 1 << 20 });
    this.#guard = guard;
    this.#out = out;
    out.on("error", () => {
      this.#outBroken = true;
    });
  }

  /** sha256 of every byte received, once the stream has finished. */
  get diffId(): `sha256:${string}` {
    return `sha256:${this.#hash.copy().digest("hex")}`;
  }
  get size(): number {
    return this.#total;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#hash.update(chunk);
    const start = this.#total;
    this.#total += chunk.length;
    try {
      const ready = this.#consume(chunk, start);
      if (ready || this.#outBroken) cb();
      else {
        // tar may die instead of draining: 'close' releases us too.
        const go = () => {
          this.#out.removeListener("drain", go);
          this.#out.removeListener("close", go);
          cb();
        };
        this.#out.on("drain", go);
        this.#out.on("close", go);
      }
    } catch (err) {
      this.rejected = err as Error;
      cb(err as Error);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    const truncated = this.#state === "header" ? this.#blockLen > 0 || this.#held.length > 0 : this.#state !== "end";
    if (!this.#outBroken) this.#out.end();
    cb(truncated ? invalidArgument(`layer tar is truncated at offset ${this.#total}`) : null);
  }

  /** Returns false if `out` asked us to wait. */
  #consume(chunk: Buffer, base: number): boolean {
    let ok = true;
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === "end") {
        if (this.#zeroBlocks === 1) ok = this.#forwardEndBlock(chunk, i) && ok;
        return ok;
      }
      if (this.#state === "data" || (this.#state === "meta" && this.#remaining === 0)) {
        const n = Math.min(chunk.length - i, this.#remaining + this.#padding);
        const piece = chunk.subarray(i, i + n);
        if (this.#state === "data") ok = this.#send(piece) && ok;
        else this.#held.push(Buffer.from(piece));
        const fromData = Math.min(n, this.#remaining);
        this.#remaining -= fromData;
        this.#padding -= n - fromData;
        i += n;
        if (this.#remaining === 0 && this.#padding === 0) this.#state = this.#state === "data" ? "header" : this.#afterMeta();
        continue;
      }
      if (this.#state === "meta") {
        const n = Math.min(chunk.length - i, this.#remaining);
        const piece = Buffer.from(chunk.subarray(i, i + n));
        this.#meta.push(piece);
        this.#held.push(piece);
        this.#remaining -= n;
        i += n;
        if (this.#remaining === 0 && this.#padding === 0) this.#state = this.#afterMeta();
        continue;
      }
      // header or sparse-ext: collect one block
      const n = Math.min(chunk.length - i, BLOCK - this.#blockLen);
      chunk.copy(this.#block, this.#blockLen, i, i + n);
      this.#blockLen += n;
      i += n;
      if (this.#blockLen < BLOCK) continue;
      this.#blockLen = 0;
      const block = Buffer.from(this.#block);
      ok = this.#onBlock(block, base + i - BLOCK) && ok;
    }
    return ok;
  }

  #onBlock(block: Buffer, offset: number): boolean {
    if (this.#state === "sparse-ext") {
      this.#held.push(block);
      if (!sparseExtContinues(block)) return this.#admit();
      return true;
    }
    if (isZeroBlock(block)) {
      if (this.#held.length) throw invalidArgument(`layer tar: metadata header without a member at offset ${offset}`);
      this.#state = "end";
      this.#zeroBlocks = 1;
      return this.#send(block);
    }
    const h = parseHeader(block, offset);
    this.#held.push(block);
    if (h.typeflag === "L" || h.typeflag === "K" || h.typeflag === "x" || h.typeflag === "g") {
      if (h.size > MAX_META) throw invalidArgument(`layer tar: ${h.typeflag} header of ${h.size} bytes at offset ${offset}`);
      this.#metaType = h.typeflag;
      this.#meta = [];
      this.#state = "meta";
      this.#remaining = h.size;
      this.#padding = pad(h.size);
      if (h.size === 0) this.#state = this.#afterMeta();
      return true;
    }
    this.#header = h;
    if (h.sparseExtended) {
      this.#state = "sparse-ext";
      return true;
    }
    return this.#admit();
  }

  /** Applies a finished metadata entry to the next member. */
  #afterMeta(): State {
    const data = Buffer.concat(this.#meta);
    this.#meta = [];
    const at = this.#total;
    switch (this.#metaType) {
      case "L":
        this.#pending.longName = cstr(data);
        break;
      case "K":
        this.#pending.longLink = cstr(data);
        break;
      case "x":
        this.#pending.pax = new Map([...(this.#pending.pax ?? []), ...parsePax(data, at)]);
        break;
      case "g":
        for (const [k, v] of parsePax(data, at)) {
          if (v === "") this.#globals.delete(k);
          else this.#globals.set(k, v);
        }
        break;
    }
    return "header";
  }

  /** Checks the member described by the held blocks; forwards them if it is safe. */
  #admit(): boolean {
    const h = this.#header!;
    const e = this.#entry(h, this.#pending);
    this.#pending = {};
    this.#guard.check(e); // throws: nothing held is forwarded
    const held = Buffer.concat(this.#held);
    this.#held = [];
    // Readers disagree on whether header-only types carry data (Go: never; others: per size),
    // so such a header claiming data could desynchronise us from tar: the guard refuses it.
    const dataBytes = e.size;
    this.#state = dataBytes > 0 ? "data" : "header";
    this.#remaining = dataBytes;
    this.#padding = pad(dataBytes);
    return this.#send(held);
  }

  #entry(h: RawHeader, p: { longName?: string; longLink?: string; pax?: Map<string, string> }): TarEntry {
    const get = (k: string) => {
      const v = p.pax?.has(k) ? p.pax.get(k) : this.#globals.get(k);
      return v === "" ? undefined : v;
    };
    const paxPath = get("path");
    const sparseName = get("GNU.sparse.name");
    // GNU tar applies these in record order; when they disagree, refuse instead of guessing.
    if (paxPath !== undefined && sparseName !== undefined && paxPath !== sparseName) {
      throw invalidArgument(`layer tar: PAX path and GNU.sparse.name disagree at offset ${this.#total}`);
    }
    const names = [h.name, p.longName, paxPath, sparseName].filter((n): n is string => n !== undefined);
    const links = [h.linkname, p.longLink, get("linkpath")].filter((n): n is string => n !== undefined);
    const num = (k: string) => {
      const v = get(k);
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalidArgument(`layer tar: invalid PAX ${k}=${v}`);
      return Number(v);
    };
    const size = num("size") ?? h.size;
    const realSize = num("GNU.sparse.realsize") ?? num("GNU.sparse.size") ?? (h.typeflag === "S" ? h.realSize : size);
    const xattrs = [...(p.pax?.keys() ?? []), ...this.#globals.keys()]
      .filter((k) => k.startsWith("SCHILY.xattr."))
      .map((k) => k.slice("SCHILY.xattr.".length));
    return {
      type: h.typeflag,
      path: names[names.length - 1] ?? "",
      names,
      linkpath: links[links.length - 1] ?? "",
      linknames: h.typeflag === "1" ? links.filter((l) => l !== "") : links,
      size,
      realSize,
      xattrs,
    };
  }

  /** Forwards the second zero block (if it is one): a well-formed end for tar. */
  #forwardEndBlock(chunk: Buffer, i: number): boolean {
    const n = Math.min(chunk.length - i, BLOCK - this.#blockLen);
    chunk.copy(this.#block, this.#blockLen, i, i + n);
    this.#blockLen += n;
    if (this.#blockLen < BLOCK) return true;
    this.#blockLen = 0;
    this.#zeroBlocks = 2;
    return isZeroBlock(this.#block) ? this.#send(Buffer.from(this.#block)) : true;
  }

  #send(buf: Buffer): boolean {
    if (this.#outBroken || buf.length === 0) return true;
    return this.#out.write(buf);
  }
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.toString("latin1", 0, z === -1 ? b.length : z);
}
