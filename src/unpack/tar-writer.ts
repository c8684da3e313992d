/**
 * A tiny tar writer for tests and benchmarks: writes exactly the headers it is told to, hostile
 * ones included (`..` names, absolute hard links, lying sizes), which real tar tools refuse to
 * produce. Not used on any production path.
 */
import { BLOCK } from "./tar-format.js";

export interface TarSpec {
  name: string;
  /** "file" | "dir" | "symlink" | "link" | "char" | "block" | "fifo", or a raw typeflag. */
  type?: string;
  data?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Declared size when it should differ from the data written. */
  size?: number;
  /** Extra PAX records (a PAX 'x' header precedes the entry). */
  pax?: Record<string, string>;
  /** Put the name in a GNU 'L' entry instead of the header (the header keeps a truncated copy). */
  gnuLongName?: boolean;
  gnuLongLink?: boolean;
}

const TYPES: Record<string, string> = { file: "0", link: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6" };

function field(buf: Buffer, off: number, len: number, s: string): void {
  Buffer.from(s, "latin1").copy(buf, off, 0, len);
}

function numeric(buf: Buffer, off: number, len: number, v: number): void {
  const oct = v.toString(8);
  if (oct.length < len) {
    field(buf, off, len, oct.padStart(len - 1, "0") + "\0");
    return;
  }
  buf[off] = 0x80; // GNU base-256
  let x = BigInt(v);
  for (let i = len - 1; i > 0; i--) {
    buf[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
}

/** One 512-byte ustar header with a correct checksum. */
export function header(h: { name: string; typeflag: string; size: number } & Omit<TarSpec, "type" | "data" | "size">): Buffer {
  const b = Buffer.alloc(BLOCK);
  field(b, 0, 100, h.name);
  numeric(b, 100, 8, h.mode ?? (h.typeflag === "5" ? 0o755 : 0o644));
  numeric(b, 108, 8, h.uid ?? 0);
  numeric(b, 116, 8, h.gid ?? 0);
  numeric(b, 124, 12, h.size);
  numeric(b, 136, 12, h.mtime ?? 1_700_000_000);
  b.write(h.typeflag, 156, "latin1");
  field(b, 157, 100, h.linkname ?? "");
  b.write("ustar\x0000", 257, "latin1");
  numeric(b, 329, 8, h.devmajor ?? 0);
  numeric(b, 337, 8, h.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  field(b, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

function padded(data: Buffer): Buffer[] {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return pad ? [data, Buffer.alloc(pad)] : [data];
}

function paxRecords(rec: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(rec)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    parts.push(Buffer.from(`${len}${body}`));
  }
  return Buffer.concat(parts);
}

/** Serialises one entry (with any PAX / GNU long-name entries before it). */
export function entry(spec: TarSpec): Buffer {
  const typeflag = TYPES[spec.type ?? "file"] ?? spec.type ?? "0";
  const data = spec.data === undefined ? Buffer.alloc(0) : Buffer.from(spec.data);
  const out: Buffer[] = [];
  const pax = { ...spec.pax };
  let name = spec.name;
  if (spec.gnuLongName) {
    const n = Buffer.from(spec.name + "\0", "latin1");
    out.push(header({ name: "././@LongLink", typeflag: "L", size: n.length }), ...padded(n));
    name = spec.name.slice(0, 100);
  } else if (Buffer.byteLength(name) > 100) {
    pax.path = name;
    name = name.slice(0, 100);
  }
  let linkname = spec.linkname;
  if (linkname !== undefined && spec.gnuLongLink) {
    const n = Buffer.from(linkname + "\0", "latin1");
    out.push(header({ name: "././@LongLink", typeflag: "K", size: n.length }), ...padded(n));
    linkname = linkname.slice(0, 100);
  }
  if (Object.keys(pax).length) {
    const body = paxRecords(pax);
    out.push(header({ name: "PaxHeader", typeflag: "x", size: body.length }), ...padded(body));
  }
  out.push(header({ ...spec, name, linkname, typeflag, size: spec.size ?? data.length }));
  if (data.length) out.push(...padded(data));
  return Buffer.concat(out);
}

/** A whole archive, with the two zero blocks at the end. */
export function makeTar(specs: TarSpec[]): Buffer {
  return Buffer.concat([...specs.map(entry), Buffer.alloc(2 * BLOCK)]);
}
