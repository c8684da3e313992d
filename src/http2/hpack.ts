/**
 * HPACK (RFC 7541) for a proxy that rewrites request headers: a decoder that follows the peer's
 * dynamic table, and a stateless encoder that never adds to the receiver's table (every field is
 * a literal without indexing, or an exact static-table match). Re-encoding a block this way keeps
 * the receiver's table empty, so a rewritten field can never leave the two tables out of step.
 *
 * Names and values are latin1 strings: one character per octet, so lengths are octet counts and
 * any octet survives a decode/encode round trip.
 */
import { huffmanDecode, HuffmanError } from "./huffman.js";

export interface HeaderField {
  name: string;
  value: string;
  /** Sent as "never indexed" (e.g. credentials); intermediaries must keep that. */
  sensitive: boolean;
}

/** The static table (RFC 7541, Appendix A); index 1 is STATIC_TABLE[0]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""], ["etag", ""],
  ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""], ["if-modified-since", ""],
  ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""],
  ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""], ["via", ""],
  ["www-authenticate", ""],
];

/** Per-entry overhead counted in a dynamic table's size (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;
/** Integers beyond this are refused: no legitimate index, length or size comes near it. */
const MAX_INTEGER = 2 ** 28;

export class HpackError extends Error {
  override name = "HpackError";
}

/**
 * Decodes the header blocks of one direction of one connection, in order. Not safe to share:
 * each block changes the table the next one refers to. After an error the decoder is unusable
 * (the connection must end with COMPRESSION_ERROR).
 */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is entries[0]. */
  readonly #entries: [string, string][] = [];
  #size = 0;
  #maxSize: number;
  readonly #limit: number;
  #broken = false;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE this side advertised (RFC default 4096). */
  constructor(maxTableSize = 4096) {
    this.#maxSize = maxTableSize;
    this.#limit = maxTableSize;
  }

  /** The dynamic table's current size in octets (for tests). */
  get tableSize(): number {
    return this.#size;
  }

  decode(block: Uint8Array): HeaderField[] {
    if (this.#broken) throw new HpackError("hpack: decoder used after an error");
    try {
      return this.#decode(block);
    } catch (err) {
      this.#broken = true;
      if (err instanceof HuffmanError) throw new HpackError(err.message);
      throw err;
    }
  }

  #decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    const r = new Reader(block);
    while (!r.done()) {
      const b = r.peek();
      if (b & 0x80) {
        const [name, value] = this.#lookup(r.integer(7));
        fields.push({ name, value, sensitive: false });
      } else if (b & 0x40) {
        const field = this.#literal(r, 6, false);
        this.#add(field.name, field.value);
        fields.push(field);
      } else if (b & 0x20) {
        if (fields.length > 0) throw new HpackError("hpack: dynamic table size update after a header field");
        const size = r.integer(5);
        if (size > this.#limit) throw new HpackError(`hpack: table size update to ${size} exceeds the advertised ${this.#limit}`);
        this.#maxSize = size;
        this.#evict(0);
      } else {
        fields.push(this.#literal(r, 4, (b & 0x10) !== 0));
      }
    }
    return fields;
  }

  #literal(r: Reader, prefix: number, sensitive: boolean): HeaderField {
    const index = r.integer(prefix);
    const name = index === 0 ? r.string() : this.#lookup(index)[0];
    return { name, value: r.string(), sensitive };
  }

  #lookup(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError("hpack: index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const e = this.#entries[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`hpack: index ${index} is beyond the dynamic table (${this.#entries.length} entries)`);
    return e;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    if (size > this.#maxSize) return;
    this.#entries.unshift([name, value]);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#entries.length > 0 && this.#size + room > this.#maxSize) {
      const [n, v] = this.#entries.pop()!;
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

class Reader {
  #pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  done(): boolean {
    return this.#pos >= this.buf.length;
  }

  peek(): number {
    return this.buf[this.#pos]!;
  }

  #byte(): number {
    if (this.#pos >= this.buf.length) throw new HpackError("hpack: header block ends inside a field");
    return this.buf[this.#pos++]!;
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1). */
  integer(prefix: number): number {
    const max = (1 << prefix) - 1;
    let v = this.#byte() & max;
    if (v < max) return v;
    let shift = 0;
    for (;;) {
      const b = this.#byte();
      v += (b & 0x7f) * 2 ** shift;
      if (v > MAX_INTEGER) throw new HpackError("hpack: integer too large");
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  }

  /** A string literal, Huffman-coded or not (RFC 7541 §5.2), as latin1. */
  string(): string {
    const huffman = (this.peek() & 0x80) !== 0;
    const len = this.integer(7);
    if (this.#pos + len > this.buf.length) throw new HpackError("hpack: string literal runs past the end of the header block");
    const raw = this.buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return (huffman ? huffmanDecode(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)).toString("latin1");
  }
}

const STATIC_NAME = new Map<string, number>();
const STATIC_FIELD = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
  if (value !== "") STATIC_FIELD.set(`${name}\0${value}`, i + 1);
});

/**
 * Encodes fields without touching the receiver's dynamic table: an exact static match as an
 * indexed field, everything else as a literal without indexing (never indexed if sensitive),
 * naming a static entry where one has the name, strings not Huffman-coded.
 */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  const parts: number[] = [];
  const integer = (v: number, prefix: number, flags: number) => {
    const max = (1 << prefix) - 1;
    if (v < max) {
      parts.push(flags | v);
      return;
    }
    parts.push(flags | max);
    v -= max;
    while (v >= 0x80) {
      parts.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    parts.push(v);
  };
  const string = (s: string) => {
    integer(s.length, 7, 0);
    for (let i = 0; i < s.length; i++) parts.push(s.charCodeAt(i) & 0xff);
  };
  for (const f of fields) {
    const exact = f.sensitive ? undefined : STATIC_FIELD.get(`${f.name}\0${f.value}`);
    if (exact !== undefined) {
      integer(exact, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAME.get(f.name) ?? 0;
    integer(nameIndex, 4, f.sensitive ? 0x10 : 0x00);
    if (nameIndex === 0) string(f.name);
    string(f.value);
  }
  return Buffer.from(parts);
}
