/**
 * A server-side WebSocket connection after the handshake: reassembles fragmented messages,
 * answers pings, runs the closing handshake, and sends messages.
 *
 * Events: 'message' (data: Buffer, binary: boolean) once per complete message, in order;
 * 'close' (code: number) exactly once, after which nothing more is sent or emitted.
 * `close(code)` sends a Close frame and ends the socket once the peer answers (or after 2 s);
 * `destroy()` stops at once. Both idempotent.
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { CloseCode, encodeFrame, FrameParser, Opcode, WsProtocolError } from "./frames.js";

/** Largest message accepted from a client (stdin chunks and resize events are small). */
const MAX_MESSAGE = 16 * 1024 * 1024;
const CLOSE_WAIT_MS = 2000;

export class WsConnection extends EventEmitter {
  private readonly parser = new FrameParser(MAX_MESSAGE);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;
  private closeSent = false;
  private closed = false;

  /** `protocol` is the negotiated subprotocol ("" when none). */
  constructor(private readonly socket: Duplex, readonly protocol: string) {
    super();
    socket.on("data", (c: Buffer) => this.onBytes(c));
    socket.on("close", () => this.finish(CloseCode.GoingAway));
    socket.on("end", () => this.finish(CloseCode.GoingAway));
    socket.on("error", () => this.finish(CloseCode.GoingAway));
  }

  get isClosed(): boolean {
    return this.closed || this.closeSent;
  }

  /**
   * Sends one message. Resolves when the socket accepted it (waits for 'drain' under
   * backpressure); a send after close resolves without sending.
   */
  send(data: Buffer, binary = true): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return this.write(encodeFrame(binary ? Opcode.Binary : Opcode.Text, data));
  }

  ping(data: Buffer = Buffer.alloc(0)): void {
    if (!this.isClosed) void this.write(encodeFrame(Opcode.Ping, data));
  }

  /** Starts the closing handshake; resolves once the connection is fully closed. */
  close(code: number = CloseCode.Normal, reason = ""): Promise<void> {
    const closed = this.closed ? Promise.resolve() : new Promise<void>((r) => this.once("close", () => r()));
    if (this.isClosed) return closed;
    this.closeSent = true;
    const p = Buffer.alloc(2 + Buffer.byteLength(reason));
    p.writeUInt16BE(code, 0);
    p.write(reason, 2);
    void this.write(encodeFrame(Opcode.Close, p));
    const t = setTimeout(() => this.destroy(), CLOSE_WAIT_MS);
    t.unref();
    this.once("close", () => clearTimeout(t));
    return closed;
  }

  destroy(): void {
    this.socket.destroy();
    this.finish(CloseCode.GoingAway);
  }

  private write(frame: Buffer): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    if (this.socket.write(frame)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  private finish(code: number): void {
    if (this.closed) return;
    this.closed = true;
    // An ending socket still flushes our last frames (the close echo); anything else goes now.
    if (!this.socket.writableEnded) this.socket.destroy();
    this.emit("close", code);
  }

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const f of this.parser.push(chunk)) this.onFrame(f.fin, f.opcode, f.payload);
    } catch (err) {
      const code = err instanceof WsProtocolError ? err.closeCode : CloseCode.ProtocolError;
      void this.close(code, "protocol error");
      this.socket.end();
    }
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case Opcode.Ping:
        if (!this.isClosed) void this.write(encodeFrame(Opcode.Pong, payload));
        return;
      case Opcode.Pong:
        this.emit("pong", payload);
        return;
      case Opcode.Close: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        if (!this.closeSent) {
          this.closeSent = true;
          // Echo the status code back, as section 5.5.1 asks, then end the TCP connection.
          void this.write(encodeFrame(Opcode.Close, payload.subarray(0, 2)));
        }
        this.socket.end();
        this.finish(code);
        return;
      }
      case Opcode.Text:
      case Opcode.Binary:
        if (this.fragments.length > 0) throw new WsProtocolError(CloseCode.ProtocolError, "new message inside a fragmented one");
        if (fin) {
          this.emit("message", payload, opcode === Opcode.Binary);
          return;
        }
        this.fragmentOpcode = opcode;
        this.fragments = [payload];
        this.fragmentBytes = payload.length;
        return;
      case Opcode.Continuation: {
        if (this.fragments.length === 0) throw new WsProtocolError(CloseCode.ProtocolError, "continuation without a message");
        this.fragments.push(payload);
        this.fragmentBytes += payload.length;
        if (this.fragmentBytes > MAX_MESSAGE) throw new WsProtocolError(CloseCode.TooBig, "message too large");
        if (!fin) return;
        const msg = Buffer.concat(this.fragments);
        this.fragments = [];
        this.fragmentBytes = 0;
        this.emit("message", msg, this.fragmentOpcode === Opcode.Binary);
        return;
      }
    }
  }
}
