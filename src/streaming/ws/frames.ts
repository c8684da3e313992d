/**
 * RFC 6455 framing: an incremental parser for client frames and an encoder for server frames.
 *
 * Client-to-server frames must be masked and server-to-client frames must not be (RFC 6455
 * section 5.1); the parser rejects an unmasked frame, reserved bits (no extension is ever
 * negotiated), unknown opcodes, and control frames that are fragmented or longer than 125 bytes.
 */
import { SkiffError, ErrorCode } from "../../errors.js";

export const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/** Close codes used here (RFC 6455 section 7.4.1). */
export const CloseCode = { Normal: 1000, GoingAway: 1001, ProtocolError: 1002, TooBig: 1009, Internal: 1011 } as const;

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export class WsProtocolError extends SkiffError {
  constructor(readonly closeCode: number, msg: string) {
    super(ErrorCode.InvalidArgument, `websocket: ${msg}`);
  }
}

/** Encodes one unmasked (server) frame. */
export function encodeFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  let head: Buffer;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | opcode;
  return Buffer.concat([head, payload]);
}

/** XORs `data` with the 4-byte `mask` in place (the same operation masks and unmasks). */
export function applyMask(data: Buffer, mask: Buffer): void {
  for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ mask[i & 3]!;
}

/** Incremental parser for client frames; `maxPayload` bounds a single frame. */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPayload: number) {}

  /** Returns the complete frames in `chunk` (plus earlier leftovers); throws WsProtocolError. */
  push(chunk: Buffer): WsFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: WsFrame[] = [];
    for (;;) {
      if (this.buf.length < 2) break;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if (b0 & 0x70) throw new WsProtocolError(CloseCode.ProtocolError, "reserved bits set");
      if (!(b1 & 0x80)) throw new WsProtocolError(CloseCode.ProtocolError, "client frame is not masked");
      if (![0, 1, 2, 8, 9, 10].includes(opcode)) throw new WsProtocolError(CloseCode.ProtocolError, `unknown opcode ${opcode}`);
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(this.maxPayload)) throw new WsProtocolError(CloseCode.TooBig, `frame of ${big} bytes is too large`);
        len = Number(big);
        off = 10;
      }
      if (opcode >= 8 && (len > 125 || !fin)) throw new WsProtocolError(CloseCode.ProtocolError, "invalid control frame");
      if (len > this.maxPayload) throw new WsProtocolError(CloseCode.TooBig, `frame of ${len} bytes is too large`);
      if (this.buf.length < off + 4 + len) break;
      const mask = this.buf.subarray(off, off + 4);
      const payload = Buffer.from(this.buf.subarray(off + 4, off + 4 + len));
      applyMask(payload, mask);
      out.push({ fin, opcode, payload });
      this.buf = this.buf.subarray(off + 4 + len);
    }
    return out;
  }
}
