/**
 * Server side of a SPDY/3.1 session over an already-upgraded byte stream (net.Socket or any
 * Duplex). The peer opens streams (odd ids); each arrives through `onStream` as a SpdyStream.
 *
 * Invariants:
 * - Frames go out in exactly the order they were queued (one write chain), so the deflate context
 *   and the wire agree on header block order; inbound frames are handled one at a time, in order,
 *   for the same reason on the inflate side.
 * - Flow control: 64 KiB initial windows (per stream and, as SPDY/3.1 adds, per session) unless
 *   SETTINGS says otherwise. We always return credit with WINDOW_UPDATE as data is consumed.
 * - The Kubernetes clients (and kubelet itself) use moby/spdystream, which implements no flow
 *   control at all: it never sends WINDOW_UPDATE and ignores ours. So the peer's windows are
 *   enforced only while the peer may be doing flow control: once it sends WINDOW_UPDATE or an
 *   INITIAL_WINDOW_SIZE setting it is known to, and an overrun of our window is then answered
 *   with RST_STREAM FLOW_CONTROL_ERROR. If our writes are blocked on an exhausted window and the
 *   peer has sent no flow-control frame within `flowControlProbeMs`, it is taken not to do flow
 *   control: windows stop limiting our writes and its overruns are accepted. Either way input is
 *   bounded by TCP: the socket is paused while any stream's read buffer is full.
 * - `close()` sends GOAWAY, lets queued frames drain and ends the socket; `destroy()` stops now.
 *   Both are idempotent and both destroy every open stream. 'close' is emitted once.
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { encodeFrame, FrameReader, RstStatus, SettingId, type Frame } from "./frames.js";
import { HeaderCompressor, HeaderDecompressor, type HeaderMap } from "./headers.js";
import { SpdyStream, type StreamOwner } from "./stream.js";

export const DEFAULT_WINDOW = 64 * 1024;

export interface SpdySessionOptions {
  /** Called for every stream the peer opens, after its headers are decoded. */
  onStream: (stream: SpdyStream) => void;
  /** Receive window we grant per stream (announced in SETTINGS when not the default). */
  initialWindow?: number;
  /** How long a blocked write waits for a first flow-control frame (default 250 ms). */
  flowControlProbeMs?: number;
}

/** Whether the peer does flow control: not known yet, seen doing it, or taken not to. */
export type PeerFlowControl = "unknown" | "yes" | "no";

export class SpdySession extends EventEmitter implements StreamOwner {
  private readonly reader = new FrameReader();
  private readonly deflate = new HeaderCompressor();
  private readonly inflate = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly recvWindow: number;
  private peerInitialWindow = DEFAULT_WINDOW;
  private sessionSend = DEFAULT_WINDOW;
  private lastPeerStreamId = 0;
  private out: Promise<void> = Promise.resolve();
  private inbound: Promise<void> = Promise.resolve();
  private windowWaiters = new Set<() => void>();
  private goingAway = false;
  private closed = false;
  private peerFlow: PeerFlowControl = "unknown";
  private probe: NodeJS.Timeout | undefined;
  private readonly fullStreams = new Set<number>();

  constructor(private readonly socket: Duplex, private readonly opts: SpdySessionOptions) {
    super();
    this.recvWindow = opts.initialWindow ?? DEFAULT_WINDOW;
    if (this.recvWindow !== DEFAULT_WINDOW) {
      this.queue({ type: "settings", clear: false, entries: [{ id: SettingId.InitialWindowSize, value: this.recvWindow, flags: 0 }] });
    }
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    socket.on("end", () => this.destroy());
    socket.on("close", () => this.destroy());
    socket.on("error", () => this.destroy());
  }

  /** Number of open streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** What we know about the peer's flow control (see the class comment). */
  get peerFlowControl(): PeerFlowControl {
    return this.peerFlow;
  }

  /** Sends GOAWAY, drains queued frames, then ends the socket. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return this.out;
    if (!this.goingAway) {
      this.goingAway = true;
      this.queue({ type: "goaway", lastGoodStreamId: this.lastPeerStreamId, status: 0 });
    }
    // end() flushes what is buffered; destroying right away could drop the last frames.
    return this.out.then(async () => {
      if (!this.socket.destroyed) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 2000);
          this.socket.once("close", () => {
            clearTimeout(t);
            resolve();
          });
          this.socket.end();
        });
      }
      this.destroy();
    });
  }

  /** Stops at once: destroys all streams and the socket. Idempotent. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probe);
    for (const s of [...this.streams.values()]) s.destroy();
    this.streams.clear();
    for (const w of this.windowWaiters) w();
    this.windowWaiters.clear();
    this.deflate.close();
    this.inflate.close();
    this.socket.destroy();
    this.emit("close");
  }

  /** Sends a PING with an even (server) id. */
  ping(id: number): void {
    this.queue({ type: "ping", id: id & ~1 });
  }

  // --- StreamOwner -----------------------------------------------------------------------

  sendData(streamId: number, data: Buffer, fin: boolean): Promise<void> {
    return this.queue({ type: "data", streamId, fin, data });
  }
  sendWindowUpdate(streamId: number, delta: number): void {
    void this.queue({ type: "window_update", streamId, delta });
  }
  sendReset(streamId: number, status: number): void {
    void this.queue({ type: "rst_stream", streamId, status });
  }
  sendReply(streamId: number, headers: HeaderMap, fin: boolean): Promise<void> {
    const block = this.deflate.compress(headers);
    return this.queue(block.then((b): Frame => ({ type: "syn_reply", streamId, fin, block: b })));
  }
  sessionSendWindow(): number {
    return this.sessionSend;
  }
  enforceWindows(): boolean {
    return this.peerFlow !== "no";
  }
  strictReceive(): boolean {
    return this.peerFlow === "yes";
  }
  inputFull(streamId: number, full: boolean): void {
    if (full) this.fullStreams.add(streamId);
    else this.fullStreams.delete(streamId);
    if (this.fullStreams.size > 0) this.socket.pause();
    else if (!this.closed) this.socket.resume();
  }
  consumeSessionSendWindow(n: number): void {
    this.sessionSend -= n;
  }
  waitForWindow(signal: AbortSignal): Promise<void> {
    if (this.closed || signal.aborted) return Promise.reject(new Error("spdy: stream closed while waiting for window"));
    return new Promise((resolve, reject) => {
      const done = () => {
        this.windowWaiters.delete(done);
        signal.removeEventListener("abort", done);
        if (this.closed || signal.aborted) reject(new Error("spdy: stream closed while waiting for window"));
        else resolve();
      };
      this.windowWaiters.add(done);
      signal.addEventListener("abort", done, { once: true });
      if (this.peerFlow === "unknown" && !this.probe) {
        this.probe = setTimeout(() => {
          this.probe = undefined;
          if (this.peerFlow !== "unknown") return;
          this.peerFlow = "no";
          this.wakeWindowWaiters();
        }, this.opts.flowControlProbeMs ?? 250);
      }
    });
  }
  streamClosed(streamId: number): void {
    this.streams.delete(streamId);
    if (this.fullStreams.has(streamId)) this.inputFull(streamId, false);
  }

  private peerDoesFlowControl(): void {
    this.peerFlow = "yes";
    clearTimeout(this.probe);
    this.probe = undefined;
  }

  // --- internals -------------------------------------------------------------------------

  private queue(frame: Frame | Promise<Frame>): Promise<void> {
    const next = this.out.then(async () => {
      const f = await frame;
      if (this.socket.destroyed) return;
      if (!this.socket.write(encodeFrame(f))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.socket.off("drain", done);
            this.socket.off("close", done);
            resolve();
          };
          this.socket.on("drain", done);
          this.socket.on("close", done);
        });
      }
    });
    // The chain must survive a failed frame; the caller still sees the failure.
    this.out = next.catch(() => undefined);
    return next;
  }

  private onBytes(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch {
      this.protocolError();
      return;
    }
    for (const f of frames) {
      this.inbound = this.inbound.then(() => this.handle(f)).catch(() => this.protocolError());
    }
  }

  private protocolError(): void {
    if (this.closed) return;
    this.goingAway = true;
    this.queue({ type: "goaway", lastGoodStreamId: this.lastPeerStreamId, status: 1 });
    void this.out.then(() => this.destroy());
  }

  private wakeWindowWaiters(): void {
    const ws = [...this.windowWaiters];
    this.windowWaiters.clear();
    for (const w of ws) w();
  }

  private async handle(f: Frame): Promise<void> {
    if (this.closed) return;
    switch (f.type) {
      case "syn_stream": {
        // Decode first even when refusing: the inflate context must see every block.
        const headers = await this.inflate.decompress(f.block);
        if (f.streamId % 2 === 0 || f.streamId <= this.lastPeerStreamId) {
          this.sendReset(f.streamId, RstStatus.ProtocolError);
          return;
        }
        this.lastPeerStreamId = f.streamId;
        if (this.goingAway) {
          this.sendReset(f.streamId, RstStatus.RefusedStream);
          return;
        }
        const s = new SpdyStream(this, f.streamId, headers, this.peerInitialWindow, this.recvWindow, f.fin);
        this.streams.set(f.streamId, s);
        this.opts.onStream(s);
        return;
      }
      case "data": {
        // Session-level credit goes back at once; per-stream windows bound buffering.
        if (f.data.length > 0) this.sendWindowUpdate(0, f.data.length);
        const s = this.streams.get(f.streamId);
        if (!s) {
          this.sendReset(f.streamId, RstStatus.InvalidStream);
          return;
        }
        if (!s.onData(f.data)) {
          s.reset(RstStatus.FlowControlError);
          return;
        }
        if (f.fin) s.onRemoteFin();
        return;
      }
      case "headers": {
        await this.inflate.decompress(f.block);
        if (f.fin) this.streams.get(f.streamId)?.onRemoteFin();
        return;
      }
      case "syn_reply":
        // We never open streams, so a reply is for a stream that does not exist.
        await this.inflate.decompress(f.block);
        this.sendReset(f.streamId, RstStatus.InvalidStream);
        return;
      case "rst_stream":
        this.streams.get(f.streamId)?.onReset(f.status);
        return;
      case "settings":
        for (const e of f.entries) {
          if (e.id !== SettingId.InitialWindowSize) continue;
          this.peerDoesFlowControl();
          const delta = e.value - this.peerInitialWindow;
          this.peerInitialWindow = e.value;
          for (const s of this.streams.values()) s.onWindowUpdate(delta);
        }
        this.wakeWindowWaiters();
        return;
      case "window_update":
        this.peerDoesFlowControl();
        if (f.streamId === 0) this.sessionSend += f.delta;
        else this.streams.get(f.streamId)?.onWindowUpdate(f.delta);
        this.wakeWindowWaiters();
        return;
      case "ping":
        // Only pings the peer started (odd ids) are echoed; ours coming back are answers.
        if (f.id % 2 === 1) this.queue({ type: "ping", id: f.id });
        else this.emit("pong", f.id);
        return;
      case "goaway":
        this.goingAway = true;
        return;
      case "unknown":
        return;
    }
  }
}
