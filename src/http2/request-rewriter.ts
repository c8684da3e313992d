/**
 * Rewrites the client-to-server bytes of one HTTP/2 connection so that Node's HTTP/2 server
 * (nghttp2) accepts any `:authority`. nghttp2 resets a stream whose `:authority` (or `host`) is
 * not an RFC 3986 authority with PROTOCOL_ERROR before any handler runs, and Node has no option
 * to relax it; but many gRPC clients send the unix socket's path (grpc-go before 1.51,
 * grpc-java, grpc C-core) or an empty string there. On a unix socket the authority means
 * nothing, so such a value becomes `localhost`.
 *
 * Frames pass through unchanged except header blocks (HEADERS and its CONTINUATIONs), which are
 * decoded against the client's HPACK state and re-encoded statelessly (see hpack.ts), so the
 * server's decoder never holds an entry the client does not know. Padding is dropped; priority
 * and END_STREAM are kept. The server's answers are not touched.
 */
import { encodeHeaderBlock, HpackDecoder, HpackError, type HeaderField } from "./hpack.js";

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FRAME_HEADER_BYTES = 9;
const TYPE_HEADERS = 0x1;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/** HTTP/2 error codes used here (RFC 9113 §7). */
export const H2_PROTOCOL_ERROR = 0x1;
export const H2_INTERNAL_ERROR = 0x2;
export const H2_FRAME_SIZE_ERROR = 0x6;
export const H2_COMPRESSION_ERROR = 0x9;

/** What an authority from a client becomes when nghttp2 would refuse it. */
export const REPLACEMENT_AUTHORITY = "localhost";

/** A connection error: the connection must end with GOAWAY carrying `h2Code`. */
export class Http2ConnectionError extends Error {
  override name = "Http2ConnectionError";
  constructor(
    readonly h2Code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Whether nghttp2 accepts `value` as `:authority` or `host`: non-empty, and only the characters
 * an RFC 3986 authority may hold (unreserved, sub-delims, ':', '@', '[', ']', and '%').
 */
export function isAcceptedAuthority(value: string): boolean {
  return /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]+$/.test(value);
}

export interface RequestRewriterOptions {
  /** The server's SETTINGS_MAX_FRAME_SIZE: no frame the client sends is larger. */
  maxFrameSize: number;
  /** The server's SETTINGS_HEADER_TABLE_SIZE: the client's encoder table is at most this. */
  headerTableSize: number;
  /** Bound on one header block (all its fragments), far above any legitimate request. */
  maxHeaderBlockBytes: number;
  /** Called once per rewritten field (e.g. to log it); `from` is the client's value. */
  onRewrite?: (name: string, from: string) => void;
}

interface PendingBlock {
  streamId: number;
  flags: number;
  priority: Buffer | undefined;
  fragments: Buffer[];
  bytes: number;
}

/**
 * Incremental: feed each chunk read from the client to `push` and write what it returns, in
 * order, to the server. Throws Http2ConnectionError when the client breaks the protocol in a
 * way that leaves its header state unknown; after that the rewriter is unusable.
 */
export class RequestRewriter {
  readonly #o: RequestRewriterOptions;
  readonly #decoder: HpackDecoder;
  #buf: Buffer = Buffer.alloc(0);
  #prefaceSeen = false;
  /** Not an HTTP/2 client: everything passes unchanged (the server will refuse it). */
  #passAll = false;
  /** Payload bytes of a non-header frame still to pass through. */
  #passRemaining = 0;
  #block: PendingBlock | undefined;

  constructor(o: RequestRewriterOptions) {
    this.#o = o;
    this.#decoder = new HpackDecoder(o.headerTableSize);
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = this.#buf.length > 0 ? Buffer.concat([this.#buf, chunk]) : chunk;
    this.#buf = Buffer.alloc(0);
    for (;;) {
      if (this.#passAll) {
        if (data.length > 0) out.push(data);
        return out;
      }
      if (this.#passRemaining > 0) {
        const n = Math.min(this.#passRemaining, data.length);
        if (n > 0) out.push(data.subarray(0, n));
        this.#passRemaining -= n;
        data = data.subarray(n);
        if (this.#passRemaining > 0) return out;
        continue;
      }
      if (!this.#prefaceSeen) {
        const n = Math.min(data.length, CLIENT_PREFACE.length);
        if (!data.subarray(0, n).equals(CLIENT_PREFACE.subarray(0, n))) {
          this.#passAll = true;
          continue;
        }
        if (n < CLIENT_PREFACE.length) {
          this.#buf = data;
          return out;
        }
        out.push(data.subarray(0, n));
        data = data.subarray(n);
        this.#prefaceSeen = true;
        continue;
      }
      if (data.length < FRAME_HEADER_BYTES) {
        this.#buf = data;
        return out;
      }
      const length = data.readUIntBE(0, 3);
      const type = data[3]!;
      const flags = data[4]!;
      const streamId = data.readUInt32BE(5) & 0x7fffffff;
      if (length > this.#o.maxFrameSize) {
        throw new Http2ConnectionError(H2_FRAME_SIZE_ERROR, `frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.#o.maxFrameSize}`);
      }
      if (this.#block && type !== TYPE_CONTINUATION) {
        throw new Http2ConnectionError(H2_PROTOCOL_ERROR, `frame type ${type} inside the header block of stream ${this.#block.streamId}`);
      }
      if (type !== TYPE_HEADERS && type !== TYPE_CONTINUATION) {
        out.push(data.subarray(0, FRAME_HEADER_BYTES));
        data = data.subarray(FRAME_HEADER_BYTES);
        this.#passRemaining = length;
        continue;
      }
      if (data.length < FRAME_HEADER_BYTES + length) {
        this.#buf = data;
        return out;
      }
      const payload = data.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      data = data.subarray(FRAME_HEADER_BYTES + length);
      const done = type === TYPE_HEADERS ? this.#headers(streamId, flags, payload) : this.#continuation(streamId, flags, payload);
      if (done) out.push(...this.#finish(done));
    }
  }

  #headers(streamId: number, flags: number, payload: Buffer): PendingBlock | undefined {
    if (streamId === 0) throw new Http2ConnectionError(H2_PROTOCOL_ERROR, "HEADERS on stream 0");
    let p = payload;
    let pad = 0;
    if (flags & FLAG_PADDED) {
      if (p.length < 1) throw new Http2ConnectionError(H2_FRAME_SIZE_ERROR, "HEADERS too short for its pad length");
      pad = p[0]!;
      p = p.subarray(1);
    }
    let priority: Buffer | undefined;
    if (flags & FLAG_PRIORITY) {
      if (p.length < 5) throw new Http2ConnectionError(H2_FRAME_SIZE_ERROR, "HEADERS too short for its priority");
      priority = Buffer.from(p.subarray(0, 5));
      p = p.subarray(5);
    }
    if (pad > p.length) throw new Http2ConnectionError(H2_PROTOCOL_ERROR, "HEADERS padding longer than its payload");
    const block: PendingBlock = { streamId, flags, priority, fragments: [], bytes: 0 };
    this.#block = block;
    this.#addFragment(p.subarray(0, p.length - pad));
    if (!(flags & FLAG_END_HEADERS)) return undefined;
    this.#block = undefined;
    return block;
  }

  #continuation(streamId: number, flags: number, payload: Buffer): PendingBlock | undefined {
    const block = this.#block;
    if (!block || block.streamId !== streamId) {
      throw new Http2ConnectionError(H2_PROTOCOL_ERROR, `CONTINUATION on stream ${streamId} without a header block in progress`);
    }
    this.#addFragment(payload);
    if (!(flags & FLAG_END_HEADERS)) return undefined;
    this.#block = undefined;
    return block;
  }

  #addFragment(fragment: Buffer): void {
    const block = this.#block!;
    block.bytes += fragment.length;
    if (block.bytes > this.#o.maxHeaderBlockBytes) {
      throw new Http2ConnectionError(H2_PROTOCOL_ERROR, `header block of stream ${block.streamId} exceeds ${this.#o.maxHeaderBlockBytes} bytes`);
    }
    // Copied: the chunk it came from may be a buffer the socket reuses.
    block.fragments.push(Buffer.from(fragment));
  }

  /** The block decoded, its authority fixed, re-encoded into HEADERS (+ CONTINUATION) frames. */
  #finish(block: PendingBlock): Buffer[] {
    let fields: HeaderField[];
    try {
      fields = this.#decoder.decode(Buffer.concat(block.fragments));
    } catch (err) {
      if (err instanceof HpackError) throw new Http2ConnectionError(H2_COMPRESSION_ERROR, err.message);
      throw err;
    }
    for (const f of fields) {
      if ((f.name === ":authority" || f.name === "host") && !isAcceptedAuthority(f.value)) {
        this.#o.onRewrite?.(f.name, f.value);
        f.value = REPLACEMENT_AUTHORITY;
      }
    }
    return headerFrames(block.streamId, block.flags & FLAG_END_STREAM, block.priority, encodeHeaderBlock(fields), this.#o.maxFrameSize);
  }
}

/** A header block as one HEADERS frame and as many CONTINUATION frames as `maxFrameSize` needs. */
function headerFrames(streamId: number, endStream: number, priority: Buffer | undefined, block: Buffer, maxFrameSize: number): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  let first = true;
  do {
    const room = maxFrameSize - (first && priority ? priority.length : 0);
    const fragment = block.subarray(offset, offset + room);
    offset += fragment.length;
    const last = offset >= block.length;
    const type = first ? TYPE_HEADERS : TYPE_CONTINUATION;
    let flags = last ? FLAG_END_HEADERS : 0;
    if (first) flags |= endStream | (priority ? FLAG_PRIORITY : 0);
    const pre = first && priority ? priority : Buffer.alloc(0);
    frames.push(frameHeader(pre.length + fragment.length, type, flags, streamId), pre, fragment);
    first = false;
  } while (offset < block.length);
  return frames.filter((f) => f.length > 0);
}

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

/** A GOAWAY frame (RFC 9113 §6.8) with `lastStreamId` and `code`. */
export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
  payload.writeUInt32BE(code, 4);
  return Buffer.concat([frameHeader(8, 0x7, 0, 0), payload]);
}
