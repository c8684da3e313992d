/**
 * A minimal SPDY/3.1 client for tests, written from the SPDY/3.1 draft and independent of the
 * server code: HTTP/1.1 upgrade, frame codec, zlib header compression with the SPDY/3 dictionary,
 * client-opened streams (odd ids), per-stream and session flow control on both directions.
 */
import net from "node:net";
import zlib from "node:zlib";
import { EventEmitter } from "node:events";

const DICT_WORDS =
  "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age allow " +
  "authorization cache-control connection content-base content-encoding content-language content-length " +
  "content-location content-md5 content-range content-type date etag expect expires from host if-match " +
  "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma " +
  "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade " +
  "user-agent vary via warning www-authenticate method get status |200 OK| version HTTP/1.1 url public set-cookie " +
  "keep-alive origin";
const DICT_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative " +
  "Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 " +
  "Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec " +
  "00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml," +
  "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=" +
  "iso-8859-1,utf-,*,enq=0.";

function dictionary(): Buffer {
  const words = DICT_WORDS.match(/\|[^|]*\||\S+/g)!.map((w) => w.replace(/\|/g, ""));
  const parts = words.flatMap((w) => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(w.length);
    return [l, Buffer.from(w)];
  });
  return Buffer.concat([...parts, Buffer.from(DICT_TAIL)]);
}
export const DICT = dictionary();

export function adler32(b: Buffer): number {
  let a = 1;
  let c = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    c = (c + a) % 65521;
  }
  return ((c << 16) | a) >>> 0;
}
if (DICT.length !== 1423 || adler32(DICT) !== 0xe3c6a7c2) throw new Error("test client: SPDY dictionary is wrong");

function zflush(z: zlib.Deflate | zlib.Inflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (c: Buffer) => out.push(c);
    z.on("data", onData);
    z.once("error", reject);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      z.off("data", onData);
      z.off("error", reject);
      resolve(Buffer.concat(out));
    });
  });
}

function encodeHeaderBlock(h: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  parts.push(u32(Object.keys(h).length));
  for (const [k, v] of Object.entries(h)) {
    parts.push(u32(Buffer.byteLength(k)), Buffer.from(k), u32(Buffer.byteLength(v)), Buffer.from(v));
  }
  return Buffer.concat(parts);
}

function decodeHeaderBlock(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const n = b.readUInt32BE(0);
  let o = 4;
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt32BE(o);
    const k = b.toString("utf8", o + 4, o + 4 + kl);
    o += 4 + kl;
    const vl = b.readUInt32BE(o);
    out[k] = b.toString("utf8", o + 4, o + 4 + vl);
    o += 4 + vl;
  }
  return out;
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8003, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags << 24) | payload.length) >>> 0, 4);
  return Buffer.concat([h, payload]);
}

function dataFrame(id: number, fin: boolean, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(id, 0);
  h.writeUInt32BE((((fin ? 1 : 0) << 24) | data.length) >>> 0, 4);
  return Buffer.concat([h, data]);
}

/** A client-side stream: collects received data; `ended` resolves on FIN or reset. */
export class ClientStream extends EventEmitter {
  readonly chunks: Buffer[] = [];
  replyHeaders: Record<string, string> | undefined;
  resetStatus: number | undefined;
  remoteFin = false;
  sendWindow = 65536;
  readonly ended: Promise<void>;
  private resolveEnded!: () => void;

  constructor(readonly session: SpdyClient, readonly id: number) {
    super();
    this.ended = new Promise((r) => (this.resolveEnded = r));
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
  write(data: Buffer | string): Promise<void> {
    return this.session.sendData(this, Buffer.from(data), false);
  }
  end(data?: Buffer | string): Promise<void> {
    return this.session.sendData(this, Buffer.from(data ?? ""), true);
  }
  reset(status = 5): void {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(this.id, 0);
    b.writeUInt32BE(status, 4);
    this.session.rawWrite(controlFrame(3, 0, b));
  }
  /** @internal */
  onData(d: Buffer, fin: boolean): void {
    if (d.length) {
      this.chunks.push(d);
      this.emit("data", d);
    }
    if (fin) this.finish();
  }
  /** @internal */
  finish(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    this.resolveEnded();
    this.emit("end");
  }
}

export interface UpgradeResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends an HTTP/1.1 upgrade request; on 101 returns a connected SpdyClient, else the response. */
export async function spdyConnect(
  url: string,
  protocols: string[],
  extraHeaders: Record<string, string> = {},
  /** false behaves like moby/spdystream: no WINDOW_UPDATE sent, windows ignored when sending. */
  flowControl = true,
): Promise<{ res: UpgradeResult; client?: SpdyClient }> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const lines = [`GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, "Connection: Upgrade", "Upgrade: SPDY/3.1"];
  for (const p of protocols) lines.push(`X-Stream-Protocol-Version: ${p}`);
  for (const [k, v] of Object.entries(extraHeaders)) lines.push(`${k}: ${v}`);
  socket.write(lines.join("\r\n") + "\r\n\r\n");
  const { head, rest, ended } = await readHttpHead(socket);
  const [statusLine, ...hl] = head.split("\r\n");
  const status = Number(statusLine!.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of hl) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  if (status !== 101) {
    const body = ended ? rest.toString() : await readRest(socket, rest);
    socket.destroy();
    return { res: { status, headers, body } };
  }
  return { res: { status, headers, body: "" }, client: new SpdyClient(socket, rest, flowControl) };
}

function readHttpHead(socket: net.Socket): Promise<{ head: string; rest: Buffer; ended: boolean }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf("\r\n\r\n");
      if (i < 0) return;
      socket.off("data", onData);
      socket.off("error", reject);
      socket.pause();
      resolve({ head: buf.subarray(0, i).toString(), rest: buf.subarray(i + 4), ended: false });
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

function readRest(socket: net.Socket, first: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const parts = [first];
    socket.on("data", (c: Buffer) => parts.push(c));
    socket.once("close", () => resolve(Buffer.concat(parts).toString()));
    socket.resume();
  });
}

export class SpdyClient extends EventEmitter {
  private readonly deflate = zlib.createDeflate({ dictionary: DICT });
  private readonly inflate = zlib.createInflate({ dictionary: DICT });
  private nextId = 1;
  readonly streams = new Map<number, ClientStream>();
  private buf = Buffer.alloc(0);
  private chain: Promise<void> = Promise.resolve();
  private inChain: Promise<void> = Promise.resolve();
  sessionSendWindow = 65536;
  goaway = false;
  closed = false;
  readonly closedP: Promise<void>;
  readonly pings: number[] = [];
  private windowWaiters: (() => void)[] = [];

  constructor(readonly socket: net.Socket, initial: Buffer, readonly flowControl = true) {
    super();
    this.closedP = new Promise((r) => socket.once("close", () => r()));
    socket.on("close", () => {
      this.closed = true;
      this.wake();
      // Frames still being decoded (header blocks inflate asynchronously) come first.
      void this.inChain.then(() => {
        for (const s of this.streams.values()) s.finish();
      });
    });
    socket.on("error", () => undefined);
    socket.on("data", (c: Buffer) => this.onBytes(c));
    if (initial.length) this.onBytes(initial);
    socket.resume();
  }

  rawWrite(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Opens a stream with the given headers; resolves after SYN_STREAM was sent. */
  openStream(headers: Record<string, string>, fin = false): Promise<ClientStream> {
    const id = this.nextId;
    this.nextId += 2;
    const s = new ClientStream(this, id);
    this.streams.set(id, s);
    const p = this.chain.then(async () => {
      const block = await zflush(this.deflate, encodeHeaderBlock(headers));
      const pre = Buffer.alloc(10);
      pre.writeUInt32BE(id, 0);
      this.rawWrite(controlFrame(1, fin ? 1 : 0, Buffer.concat([pre, block])));
    });
    this.chain = p;
    return p.then(() => s);
  }

  ping(id: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    this.rawWrite(controlFrame(6, 0, b));
  }

  async sendData(s: ClientStream, data: Buffer, fin: boolean): Promise<void> {
    await this.chain;
    let off = 0;
    do {
      while (this.flowControl && data.length > 0 && (s.sendWindow <= 0 || this.sessionSendWindow <= 0)) {
        if (this.closed) throw new Error("connection closed");
        await new Promise<void>((r) => this.windowWaiters.push(r));
      }
      const n = this.flowControl ? Math.min(data.length - off, s.sendWindow, this.sessionSendWindow, 8192) : Math.min(data.length - off, 8192);
      s.sendWindow -= n;
      this.sessionSendWindow -= n;
      const last = off + n >= data.length;
      this.rawWrite(dataFrame(s.id, fin && last, data.subarray(off, off + n)));
      off += n;
    } while (off < data.length);
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closedP;
  }

  private wake(): void {
    const w = this.windowWaiters;
    this.windowWaiters = [];
    for (const f of w) f();
  }

  private onBytes(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4) & 0xffffff;
      if (this.buf.length < 8 + len) break;
      const frame = Buffer.from(this.buf.subarray(0, 8 + len));
      this.buf = this.buf.subarray(8 + len);
      this.inChain = this.inChain.then(() => this.onFrame(frame));
    }
  }

  private async onFrame(f: Buffer): Promise<void> {
    const first = f.readUInt32BE(0);
    const flags = f[4]!;
    const p = f.subarray(8);
    if (!(first & 0x80000000)) {
      const s = this.streams.get(first);
      if (p.length && this.flowControl) {
        // Give credit back at once: the test client never applies backpressure.
        const wu = Buffer.alloc(8);
        wu.writeUInt32BE(first, 0);
        wu.writeUInt32BE(p.length, 4);
        this.rawWrite(controlFrame(9, 0, wu));
        const wu0 = Buffer.alloc(8);
        wu0.writeUInt32BE(p.length, 4);
        this.rawWrite(controlFrame(9, 0, wu0));
      }
      s?.onData(Buffer.from(p), (flags & 1) !== 0);
      return;
    }
    const type = first & 0xffff;
    const id = p.length >= 4 ? p.readUInt32BE(0) & 0x7fffffff : 0;
    switch (type) {
      case 2: {
        const h = decodeHeaderBlock(await zflush(this.inflate, p.subarray(4)));
        const s = this.streams.get(id);
        if (s) {
          s.replyHeaders = h;
          s.emit("reply", h);
          if (flags & 1) s.finish();
        }
        return;
      }
      case 3: {
        const s = this.streams.get(id);
        if (s) {
          s.resetStatus = p.readUInt32BE(4);
          s.finish();
        }
        return;
      }
      case 4: {
        const n = p.readUInt32BE(0);
        for (let i = 0; i < n; i++) {
          const sid = p.readUInt32BE(4 + 8 * i) & 0xffffff;
          const v = p.readUInt32BE(8 + 8 * i);
          if (sid === 7) for (const s of this.streams.values()) s.sendWindow = v;
        }
        this.wake();
        return;
      }
      case 6:
        this.pings.push(id);
        this.emit("ping", p.readUInt32BE(0));
        return;
      case 7:
        this.goaway = true;
        this.emit("goaway");
        return;
      case 8:
        await zflush(this.inflate, p.subarray(4));
        return;
      case 9: {
        const delta = p.readUInt32BE(4) & 0x7fffffff;
        if (id === 0) this.sessionSendWindow += delta;
        else {
          const s = this.streams.get(id);
          if (s) s.sendWindow += delta;
        }
        this.wake();
        return;
      }
    }
  }
}
