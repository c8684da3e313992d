/**
 * A minimal RFC 6455 WebSocket client for tests, independent of the server code: opening
 * handshake (with Sec-WebSocket-Accept check), masked frames, fragmentation on send,
 * reassembly on receive, ping/pong and the closing handshake.
 */
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { EventEmitter } from "node:events";

export interface WsMessage {
  data: Buffer;
  binary: boolean;
}

export class WsClient extends EventEmitter {
  readonly messages: WsMessage[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<void>;
  private buf = Buffer.alloc(0);
  private frags: Buffer[] = [];
  private fragBinary = false;

  constructor(readonly socket: net.Socket, readonly protocol: string, initial: Buffer) {
    super();
    this.closed = new Promise((r) => socket.once("close", () => r()));
    socket.on("error", () => undefined);
    // Deferred so the caller can attach 'message' listeners before the first message.
    setImmediate(() => {
      socket.on("data", (c: Buffer) => this.onBytes(c));
      if (initial.length) this.onBytes(initial);
      socket.resume();
    });
  }

  /** Sends one message, optionally split into `fragments` frames. */
  send(data: Buffer, binary = true, fragments = 1): void {
    const size = Math.max(1, Math.ceil(data.length / fragments));
    for (let i = 0, off = 0; off < data.length || i === 0; i++, off += size) {
      const part = data.subarray(off, off + size);
      const last = off + size >= data.length;
      this.frame(i === 0 ? (binary ? 2 : 1) : 0, part, last);
    }
  }

  ping(data = Buffer.alloc(0)): void {
    this.frame(9, data, true);
  }

  close(code = 1000): Promise<void> {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    this.frame(8, p, true);
    return this.closed;
  }

  frame(opcode: number, payload: Buffer, fin: boolean): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    if (len < 126) head[1] = 0x80 | len;
    else if (len < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.length; i++) masked[i] = masked[i]! ^ mask[i % 4]!;
    if (!this.socket.destroyed) this.socket.write(Buffer.concat([head, mask, masked]));
  }

  private onBytes(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    for (;;) {
      if (this.buf.length < 2) return;
      const fin = (this.buf[0]! & 0x80) !== 0;
      const op = this.buf[0]! & 0x0f;
      if (this.buf[1]! & 0x80) throw new Error("server frame is masked");
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      const payload = Buffer.from(this.buf.subarray(off, off + len));
      this.buf = this.buf.subarray(off + len);
      if (op === 8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.frame(8, payload.subarray(0, 2), true);
        this.socket.end();
        this.emit("close", this.closeCode);
      } else if (op === 9) this.frame(10, payload, true);
      else if (op === 10) this.emit("pong", payload);
      else {
        if (op !== 0) this.fragBinary = op === 2;
        this.frags.push(payload);
        if (fin) {
          const m = { data: Buffer.concat(this.frags), binary: this.fragBinary };
          this.frags = [];
          this.messages.push(m);
          this.emit("message", m);
        }
      }
    }
  }
}

export interface WsConnectResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  client?: WsClient;
}

export async function wsConnect(url: string, protocols: string[]): Promise<WsConnectResult> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const key = randomBytes(16).toString("base64");
  const lines = [`GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", `Sec-WebSocket-Key: ${key}`];
  if (protocols.length) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(", ")}`);
  socket.write(lines.join("\r\n") + "\r\n\r\n");
  let buf = Buffer.alloc(0);
  const { head, rest } = await new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf("\r\n\r\n");
      if (i < 0) return;
      socket.off("data", onData);
      socket.pause();
      resolve({ head: buf.subarray(0, i).toString(), rest: buf.subarray(i + 4) });
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
  const [statusLine, ...hl] = head.split("\r\n");
  const status = Number(statusLine!.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of hl) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  if (status !== 101) {
    const parts = [rest];
    socket.on("data", (c: Buffer) => parts.push(c));
    await new Promise<void>((r) => {
      socket.once("close", () => r());
      socket.resume();
    });
    return { status, headers, body: Buffer.concat(parts).toString() };
  }
  const expect = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  if (headers["sec-websocket-accept"] !== expect) throw new Error("bad Sec-WebSocket-Accept");
  return { status, headers, body: "", client: new WsClient(socket, headers["sec-websocket-protocol"] ?? "", rest) };
}
