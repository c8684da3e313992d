/**
 * A small WebSocket client (RFC 6455) for the CLI's streaming verbs (`exec -it`, `attach`,
 * `port-forward`): they speak the Kubernetes channel protocols over it to skiffd's streaming
 * server. Node 20 has no WebSocket client without a flag, and these verbs need little: one
 * connection, binary messages, ping/pong, close.
 *
 * The connection is owned by the caller: `close()` sends a close frame and ends the socket,
 * `destroy()` drops it; both are idempotent. `onClose` runs once, whichever side ended it.
 */
import { createHash, randomBytes } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import { unavailable } from "../errors.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Largest frame accepted from the server; the channel protocols send small chunks. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

const OP_CONT = 0x0;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** One client frame (FIN set), masked as RFC 6455 §5.3 requires of clients. */
export function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = Buffer.alloc(len < 126 ? 6 : len < 65536 ? 8 : 14);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = 0x80 | len;
  else if (len < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  mask.copy(head, head.length - 4);
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, body]);
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Splits the server's byte stream into frames; server frames are never masked. */
export class ServerFrameParser {
  #buf: Buffer = Buffer.alloc(0);

  /** Frames completed by `chunk` (none while one is still partial). Throws on a protocol error. */
  push(chunk: Buffer): ServerFrame[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: ServerFrame[] = [];
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) return out;
      if (b[1]! & 0x80) throw unavailable("websocket: the server sent a masked frame");
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return out;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return out;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(MAX_FRAME_BYTES)) throw unavailable(`websocket: a frame of ${big} bytes`);
        len = Number(big);
        off = 10;
      }
      if (b.length < off + len) return out;
      out.push({ fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, payload: b.subarray(off, off + len) });
      this.#buf = b.subarray(off + len);
    }
  }
}

export class WsClient {
  #onMessage: ((m: Buffer) => void) | undefined;
  #onClose: ((code: number, reason: string) => void) | undefined;
  /** Messages (and the close) that arrived before a handler was set: data right behind the
   * upgrade response comes in before the caller's `await` resumes. */
  readonly #early: Buffer[] = [];
  #closedWith: [number, string] | undefined;

  /** Receives each complete message (text or binary), in order, including any that came early. */
  set onMessage(fn: (m: Buffer) => void) {
    this.#onMessage = fn;
    for (const m of this.#early.splice(0)) fn(m);
  }

  /** Runs once when the connection is over (close frame, socket end or error), even if it already is. */
  set onClose(fn: (code: number, reason: string) => void) {
    this.#onClose = fn;
    if (this.#closedWith) fn(...this.#closedWith);
  }

  readonly #parser = new ServerFrameParser();
  #fragments: Buffer[] = [];
  #closed = false;
  #closeSent = false;

  constructor(
    private readonly socket: Duplex,
    /** The subprotocol the server chose. */
    readonly protocol: string,
    head: Buffer,
  ) {
    socket.on("data", (b: Buffer) => this.#onData(b));
    socket.on("error", () => this.#finish(1006, "connection error"));
    socket.on("close", () => this.#finish(1006, "connection closed"));
    if (head.length) queueMicrotask(() => this.#onData(head));
  }

  /** Sends one binary message (dropped once the connection is closing). */
  send(data: Buffer): void {
    if (!this.#closeSent && !this.socket.destroyed) this.socket.write(encodeClientFrame(OP_BINARY, data));
  }

  /** Sends a close frame (normal closure); the server answers and ends the connection. */
  close(code = 1000): void {
    if (this.#closeSent || this.socket.destroyed) return;
    this.#closeSent = true;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code);
    this.socket.write(encodeClientFrame(OP_CLOSE, payload));
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    let frames: ServerFrame[];
    try {
      frames = this.#parser.push(chunk);
    } catch {
      this.destroy();
      return;
    }
    for (const f of frames) {
      switch (f.opcode) {
        case OP_PING:
          if (!this.#closeSent) this.socket.write(encodeClientFrame(OP_PONG, f.payload));
          break;
        case OP_PONG:
          break;
        case OP_CLOSE: {
          if (!this.#closeSent) {
            this.#closeSent = true;
            this.socket.write(encodeClientFrame(OP_CLOSE, f.payload.subarray(0, 2)));
          }
          this.socket.end();
          this.#finish(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, f.payload.subarray(2).toString("utf8"));
          break;
        }
        default: {
          if (f.opcode !== OP_CONT && f.opcode > OP_BINARY) {
            this.destroy();
            return;
          }
          this.#fragments.push(f.payload);
          if (!f.fin) break;
          const m = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments);
          this.#fragments = [];
          if (this.#onMessage) this.#onMessage(m);
          else this.#early.push(m);
        }
      }
    }
  }

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedWith = [code, reason];
    this.#onClose?.(code, reason);
  }
}

/**
 * Opens a WebSocket to `url` (http/https or ws/wss) offering `protocols`; resolves once the server
 * accepted the upgrade with one of them. A refused upgrade rejects with the server's status and
 * body (the streaming server says there why, e.g. an unknown or expired URL).
 */
export function connectWebSocket(url: string, protocols: string[], opts: { signal?: AbortSignal } = {}): Promise<WsClient> {
  const u = new URL(url.replace(/^ws/, "http"));
  const key = randomBytes(16).toString("base64");
  const request = u.protocol === "https:" ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method: "GET",
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Protocol": protocols.join(", "),
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    req.on("upgrade", (res, socket, head) => {
      if (res.headers["sec-websocket-accept"] !== acceptFor(key)) {
        socket.destroy();
        reject(unavailable(`websocket to ${u.host}: bad Sec-WebSocket-Accept`));
        return;
      }
      const chosen = String(res.headers["sec-websocket-protocol"] ?? "");
      if (protocols.length && !protocols.includes(chosen)) {
        socket.destroy();
        reject(unavailable(`websocket to ${u.host}: the server chose no offered protocol (${chosen || "none"})`));
        return;
      }
      resolve(new WsClient(socket, chosen, head));
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body = (body + d).slice(0, 512)));
      res.on("end", () => reject(unavailable(`streaming server refused the connection: ${res.statusCode} ${body.trim()}`)));
    });
    req.on("error", (err) => reject(unavailable(`streaming server at ${u.host}: ${err.message}`, err)));
    req.end();
  });
}
