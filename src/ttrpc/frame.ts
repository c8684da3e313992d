/**
 * ttrpc framing, wire-compatible with containerd/ttrpc's channel.
 *
 * Every message is a 10-byte big-endian header followed by `length` bytes of data:
 *   uint32 length (data only, at most MESSAGE_LENGTH_MAX) | uint32 stream id | uint8 type | uint8 flags
 *
 * `FrameDecoder` turns arbitrary socket chunks back into frames (one frame split across many
 * chunks, many frames in one chunk). It never throws on peer input: every 10 bytes is a valid
 * header, and an oversized length is reported through `onOversize` and its data discarded, so
 * the connection stays usable (as containerd's channel does).
 */
import type { Socket } from "node:net";
import { GrpcCode } from "../errors.js";
import { TtrpcStatusError } from "./status.js";

export const MESSAGE_HEADER_LENGTH = 10;
/** Largest data length accepted or sent (4 MiB), as in containerd/ttrpc. */
export const MESSAGE_LENGTH_MAX = 4 << 20;

export const MessageType = {
  Request: 1,
  Response: 2,
  /** Streaming data (ttrpc ≥ 1.2); unary skiff ignores it. */
  Data: 3,
} as const;

export interface FrameHeader {
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame extends FrameHeader {
  /** Exactly `length` bytes; may be a view into a socket chunk owned by the decoder's caller. */
  data: Uint8Array;
}

/** Encodes a header into a fresh 10-byte buffer. */
export function encodeHeader(h: FrameHeader): Buffer {
  const b = Buffer.allocUnsafe(MESSAGE_HEADER_LENGTH);
  b.writeUInt32BE(h.length >>> 0, 0);
  b.writeUInt32BE(h.streamId >>> 0, 4);
  b.writeUInt8(h.type & 0xff, 8);
  b.writeUInt8(h.flags & 0xff, 9);
  return b;
}

/** The error containerd reports for a message over the size limit (gRPC ResourceExhausted). */
export function oversizedError(length: number): TtrpcStatusError {
  return new TtrpcStatusError(
    GrpcCode.ResourceExhausted,
    `message length ${length} exceeds maximum message size of ${MESSAGE_LENGTH_MAX}`,
  );
}

/** Sockets corked until the next tick, so frames written in one tick leave in one writev. */
const corked = new WeakSet<Socket>();

function uncorkLater(socket: Socket): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}

/**
 * Writes one frame. Refuses (throws ResourceExhausted, writes nothing) when `data` is over the
 * limit. Frames are whole writes on Node's socket queue, so frames from concurrent callers never
 * interleave and keep their order; frames written in the same tick are coalesced into one
 * syscall. The caller decides what to do about backpressure (the return value is
 * `socket.write`'s: false once the queue is over its high-water mark).
 */
export function writeFrame(socket: Socket, streamId: number, type: number, flags: number, data: Uint8Array): boolean {
  if (data.length > MESSAGE_LENGTH_MAX) throw oversizedError(data.length);
  const header = encodeHeader({ length: data.length, streamId, type, flags });
  uncorkLater(socket);
  if (data.length === 0) return socket.write(header);
  socket.write(header);
  return socket.write(data);
}

export interface FrameDecoderEvents {
  onFrame(frame: Frame): void;
  /** Called as soon as an oversized header is read; its data is then skipped. */
  onOversize(header: FrameHeader): void;
}

/**
 * Incremental decoder. Not safe for reentrant `push` calls (callbacks must not push).
 * Data of a frame that fits in one chunk is a zero-copy view of that chunk; a frame spanning
 * chunks is assembled in a buffer allocated once at its exact size.
 */
export class FrameDecoder {
  readonly #events: FrameDecoderEvents;
  readonly #header = Buffer.alloc(MESSAGE_HEADER_LENGTH);
  #headerFill = 0;
  #current: FrameHeader | undefined;
  #body: Buffer | undefined;
  #bodyFill = 0;
  #discard = 0;

  constructor(events: FrameDecoderEvents) {
    this.#events = events;
  }

  /** True when a frame has started but not finished (a truncated frame if the stream ends now). */
  get partial(): boolean {
    return this.#headerFill > 0 || this.#current !== undefined || this.#discard > 0;
  }

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#discard > 0) {
        const n = Math.min(this.#discard, chunk.length - off);
        this.#discard -= n;
        off += n;
        continue;
      }
      if (this.#current === undefined) {
        off = this.#readHeader(chunk, off);
        continue;
      }
      const h = this.#current;
      if (this.#body === undefined && chunk.length - off >= h.length) {
        this.#current = undefined;
        this.#events.onFrame({ ...h, data: chunk.subarray(off, off + h.length) });
        off += h.length;
        continue;
      }
      this.#body ??= Buffer.allocUnsafe(h.length);
      const n = Math.min(h.length - this.#bodyFill, chunk.length - off);
      chunk.copy(this.#body, this.#bodyFill, off, off + n);
      this.#bodyFill += n;
      off += n;
      if (this.#bodyFill === h.length) {
        const data = this.#body;
        this.#current = undefined;
        this.#body = undefined;
        this.#bodyFill = 0;
        this.#events.onFrame({ ...h, data });
      }
    }
  }

  #readHeader(chunk: Buffer, off: number): number {
    let src: Buffer;
    let at: number;
    if (this.#headerFill === 0 && chunk.length - off >= MESSAGE_HEADER_LENGTH) {
      src = chunk;
      at = off;
      off += MESSAGE_HEADER_LENGTH;
    } else {
      const n = Math.min(MESSAGE_HEADER_LENGTH - this.#headerFill, chunk.length - off);
      chunk.copy(this.#header, this.#headerFill, off, off + n);
      this.#headerFill += n;
      off += n;
      if (this.#headerFill < MESSAGE_HEADER_LENGTH) return off;
      this.#headerFill = 0;
      src = this.#header;
      at = 0;
    }
    const h: FrameHeader = {
      length: src.readUInt32BE(at),
      streamId: src.readUInt32BE(at + 4),
      type: src.readUInt8(at + 8),
      flags: src.readUInt8(at + 9),
    };
    if (h.length > MESSAGE_LENGTH_MAX) {
      this.#discard = h.length;
      this.#events.onOversize(h);
    } else if (h.length === 0) {
      this.#events.onFrame({ ...h, data: new Uint8Array(0) });
    } else {
      this.#current = h;
    }
    return off;
  }
}
