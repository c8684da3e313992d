/**
 * Decoding of tar headers: POSIX ustar, GNU (long names 'L'/'K', old sparse 'S') and PAX ('x'
 * per entry, 'g' global). Names are kept as "binary" (latin1) strings so every byte of a path
 * survives unchanged; display them with `showName`.
 * Reference: GNU tar manual, "Basic Tar Format" and "Extended Headers"; POSIX pax(1).
 */
import { invalidArgument } from "../errors.js";

export const BLOCK = 512;

export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** GNU 'S' headers: the file's real (expanded) size and whether extension blocks follow. */
  realSize: number;
  sparseExtended: boolean;
}

/** Human-readable form of a binary name for error messages. */
export function showName(s: string): string {
  return JSON.stringify(Buffer.from(s, "latin1").toString("utf8"));
}

function cstring(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString("latin1");
}

/** Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set). */
export function parseNumeric(b: Uint8Array, off: number, len: number, what: string): number {
  const first = b[off]!;
  if (first & 0x80) {
    if (first === 0xff) throw invalidArgument(`tar header: negative ${what}`);
    let v = BigInt(first & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[off + i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`tar header: ${what} too large`);
    return Number(v);
  }
  const s = cstring(b, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw invalidArgument(`tar header: invalid ${what} field ${JSON.stringify(s)}`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw invalidArgument(`tar header: ${what} too large`);
  return v;
}

export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parses one 512-byte header block, verifying its checksum (unsigned or historic signed). */
export function parseHeader(b: Uint8Array, offset: number): RawHeader {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const sum = parseNumeric(b, 148, 8, "checksum");
  if (sum !== unsigned && sum !== signed) throw invalidArgument(`not a tar archive: bad header checksum at offset ${offset}`);
  const magic = cstring(b, 257, 6);
  const version = Buffer.from(b.buffer, b.byteOffset + 263, 2).toString("latin1");
  const posix = magic === "ustar" && version === "00";
  let name = cstring(b, 0, 100);
  if (posix) {
    const prefix = cstring(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = b[156] === 0 ? "0" : String.fromCharCode(b[156]!);
  const gnu = magic === "ustar " || (magic === "ustar" && version === " \0");
  return {
    name,
    mode: parseNumeric(b, 100, 8, "mode"),
    uid: parseNumeric(b, 108, 8, "uid"),
    gid: parseNumeric(b, 116, 8, "gid"),
    size: parseNumeric(b, 124, 12, "size"),
    typeflag,
    linkname: cstring(b, 157, 100),
    devmajor: posix || gnu ? parseNumeric(b, 329, 8, "devmajor") : 0,
    devminor: posix || gnu ? parseNumeric(b, 337, 8, "devminor") : 0,
    realSize: gnu && typeflag === "S" ? parseNumeric(b, 483, 12, "realsize") : 0,
    sparseExtended: gnu && typeflag === "S" && b[482] !== 0,
  };
}

/** Does a GNU sparse extension block announce another one after it? */
export function sparseExtContinues(b: Uint8Array): boolean {
  return b[504] !== 0;
}

/**
 * Parses PAX records `"<len> <key>=<value>\n"`. Keys and values stay binary strings; an empty
 * value means "unset" (meaningful for overriding a global record).
 */
export function parsePax(data: Buffer, offset: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // NUL padding
    const sp = data.indexOf(0x20, i);
    const len = sp > i ? Number(data.toString("latin1", i, sp)) : NaN;
    if (!Number.isSafeInteger(len) || len <= sp - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw invalidArgument(`tar: malformed PAX header at offset ${offset}`);
    }
    const rec = data.toString("latin1", sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq <= 0) throw invalidArgument(`tar: malformed PAX record at offset ${offset}`);
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}
