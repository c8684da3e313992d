/**
 * SPDY/3.1 frame codec: pure functions between Buffers and typed frames.
 *
 * Header blocks stay compressed here; `headers.ts` owns the zlib contexts, because they carry
 * state across frames of a whole session and must see blocks in wire order.
 * The decoder is incremental: `FrameReader.push` accepts any chunking of the byte stream.
 */
import { SkiffError, ErrorCode } from "../../errors.js";

export const SPDY_VERSION = 3;

export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

export const Flag = { Fin: 0x01, Unidirectional: 0x02, ClearSettings: 0x01 } as const;

/** RST_STREAM status codes (draft section 2.4.2). */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
  FrameTooLarge: 11,
} as const;

/** SETTINGS ids used by this implementation. */
export const SettingId = { MaxConcurrentStreams: 4, InitialWindowSize: 7 } as const;

/** A frame's payload may not exceed 24 bits of length. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

export type Frame =
  | { type: "data"; streamId: number; fin: boolean; data: Buffer }
  | { type: "syn_stream"; streamId: number; assocId: number; priority: number; fin: boolean; unidirectional: boolean; block: Buffer }
  | { type: "syn_reply"; streamId: number; fin: boolean; block: Buffer }
  | { type: "rst_stream"; streamId: number; status: number }
  | { type: "settings"; clear: boolean; entries: { id: number; value: number; flags: number }[] }
  | { type: "ping"; id: number }
  | { type: "goaway"; lastGoodStreamId: number; status: number }
  | { type: "headers"; streamId: number; fin: boolean; block: Buffer }
  | { type: "window_update"; streamId: number; delta: number }
  | { type: "unknown"; frameType: number };

const protocolError = (msg: string) => new SkiffError(ErrorCode.InvalidArgument, `spdy: ${msg}`);

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw protocolError(`control frame of ${payload.length} bytes is too large`);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([h, payload]);
}

const u31 = (n: number) => n & 0x7fffffff;

/** Encodes one frame. Throws InvalidArgument for a payload over 16 MiB - 1. */
export function encodeFrame(f: Frame): Buffer {
  switch (f.type) {
    case "data": {
      if (f.data.length > MAX_FRAME_PAYLOAD) throw protocolError(`data frame of ${f.data.length} bytes is too large`);
      const h = Buffer.alloc(8);
      h.writeUInt32BE(u31(f.streamId), 0);
      h.writeUInt32BE(((f.fin ? Flag.Fin : 0) << 24) | f.data.length, 4);
      return Buffer.concat([h, f.data]);
    }
    case "syn_stream": {
      const p = Buffer.alloc(10);
      p.writeUInt32BE(u31(f.streamId), 0);
      p.writeUInt32BE(u31(f.assocId), 4);
      p.writeUInt8((f.priority & 0x7) << 5, 8);
      const flags = (f.fin ? Flag.Fin : 0) | (f.unidirectional ? Flag.Unidirectional : 0);
      return control(FrameType.SynStream, flags, Buffer.concat([p, f.block]));
    }
    case "syn_reply":
    case "headers": {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(u31(f.streamId), 0);
      const t = f.type === "syn_reply" ? FrameType.SynReply : FrameType.Headers;
      return control(t, f.fin ? Flag.Fin : 0, Buffer.concat([p, f.block]));
    }
    case "rst_stream": {
      const p = Buffer.alloc(8);
      p.writeUInt32BE(u31(f.streamId), 0);
      p.writeUInt32BE(f.status >>> 0, 4);
      return control(FrameType.RstStream, 0, p);
    }
    case "settings": {
      const p = Buffer.alloc(4 + 8 * f.entries.length);
      p.writeUInt32BE(f.entries.length, 0);
      f.entries.forEach((e, i) => {
        p.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + 8 * i);
        p.writeUInt32BE(e.value >>> 0, 8 + 8 * i);
      });
      return control(FrameType.Settings, f.clear ? Flag.ClearSettings : 0, p);
    }
    case "ping": {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(f.id >>> 0, 0);
      return control(FrameType.Ping, 0, p);
    }
    case "goaway": {
      const p = Buffer.alloc(8);
      p.writeUInt32BE(u31(f.lastGoodStreamId), 0);
      p.writeUInt32BE(f.status >>> 0, 4);
      return control(FrameType.GoAway, 0, p);
    }
    case "window_update": {
      const p = Buffer.alloc(8);
      p.writeUInt32BE(u31(f.streamId), 0);
      p.writeUInt32BE(u31(f.delta), 4);
      return control(FrameType.WindowUpdate, 0, p);
    }
    case "unknown":
      throw protocolError(`cannot encode unknown frame type ${f.frameType}`);
  }
}

function need(p: Buffer, n: number, what: string): void {
  if (p.length < n) throw protocolError(`${what} frame payload of ${p.length} bytes is shorter than ${n}`);
}

function decodeControl(type: number, flags: number, p: Buffer): Frame {
  const fin = (flags & Flag.Fin) !== 0;
  switch (type) {
    case FrameType.SynStream:
      need(p, 10, "SYN_STREAM");
      return {
        type: "syn_stream",
        streamId: u31(p.readUInt32BE(0)),
        assocId: u31(p.readUInt32BE(4)),
        priority: p.readUInt8(8) >> 5,
        fin,
        unidirectional: (flags & Flag.Unidirectional) !== 0,
        block: p.subarray(10),
      };
    case FrameType.SynReply:
    case FrameType.Headers:
      need(p, 4, type === FrameType.SynReply ? "SYN_REPLY" : "HEADERS");
      return { type: type === FrameType.SynReply ? "syn_reply" : "headers", streamId: u31(p.readUInt32BE(0)), fin, block: p.subarray(4) };
    case FrameType.RstStream:
      need(p, 8, "RST_STREAM");
      return { type: "rst_stream", streamId: u31(p.readUInt32BE(0)), status: p.readUInt32BE(4) };
    case FrameType.Settings: {
      need(p, 4, "SETTINGS");
      const n = p.readUInt32BE(0);
      need(p, 4 + 8 * n, "SETTINGS");
      const entries = [];
      for (let i = 0; i < n; i++) {
        const idf = p.readUInt32BE(4 + 8 * i);
        entries.push({ flags: idf >>> 24, id: idf & 0xffffff, value: p.readUInt32BE(8 + 8 * i) });
      }
      return { type: "settings", clear: (flags & Flag.ClearSettings) !== 0, entries };
    }
    case FrameType.Ping:
      need(p, 4, "PING");
      return { type: "ping", id: p.readUInt32BE(0) };
    case FrameType.GoAway:
      need(p, 4, "GOAWAY");
      return { type: "goaway", lastGoodStreamId: u31(p.readUInt32BE(0)), status: p.length >= 8 ? p.readUInt32BE(4) : 0 };
    case FrameType.WindowUpdate:
      need(p, 8, "WINDOW_UPDATE");
      return { type: "window_update", streamId: u31(p.readUInt32BE(0)), delta: u31(p.readUInt32BE(4)) };
    default:
      // Unknown control frame types must be ignored (draft section 2.2.1).
      return { type: "unknown", frameType: type };
  }
}

/**
 * Incremental decoder. Feed it socket chunks; it returns the complete frames seen so far.
 * Throws InvalidArgument on a control frame of another SPDY version or a truncated payload;
 * the session answers that with GOAWAY and closes.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4) & 0xffffff;
      if (this.buf.length < 8 + len) break;
      const flags = this.buf.readUInt8(4);
      const payload = this.buf.subarray(8, 8 + len);
      const first = this.buf.readUInt32BE(0);
      if (first & 0x80000000) {
        const version = (first >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) throw protocolError(`unsupported version ${version}`);
        out.push(decodeControl(first & 0xffff, flags, payload));
      } else {
        out.push({ type: "data", streamId: first, fin: (flags & Flag.Fin) !== 0, data: Buffer.from(payload) });
      }
      this.buf = this.buf.subarray(8 + len);
    }
    return out;
  }
}
