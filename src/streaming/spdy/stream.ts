/**
 * One SPDY stream as a Node Duplex: readable side = DATA the peer sent, writable side = DATA we
 * send. The owning session does all framing; the stream only keeps flow-control accounting.
 *
 * Invariants:
 * - While the session enforces windows, bytes written never exceed the peer's send window
 *   (stream and session); a write waits for WINDOW_UPDATE instead of overrunning it.
 * - Receive credit is returned (WINDOW_UPDATE) only once the consumer has taken the data out of
 *   the readable buffer, so a slow consumer bounds what the peer may send at the window size.
 * - `end()` sends an empty DATA frame with FIN; `reset()` sends RST_STREAM and destroys.
 *   A RST_STREAM from the peer destroys the stream without an 'error' event (`resetStatus` set).
 */
import { Duplex } from "node:stream";
import type { HeaderMap } from "./headers.js";
import { headerValue } from "./headers.js";
import { RstStatus } from "./frames.js";

/** What a stream needs from its session; implemented by SpdySession. */
export interface StreamOwner {
  sendData(streamId: number, data: Buffer, fin: boolean): Promise<void>;
  sendWindowUpdate(streamId: number, delta: number): void;
  sendReset(streamId: number, status: number): void;
  sendReply(streamId: number, headers: HeaderMap, fin: boolean): Promise<void>;
  sessionSendWindow(): number;
  /** False once the peer is known not to do flow control: windows no longer limit writes. */
  enforceWindows(): boolean;
  /** True once the peer is known to do flow control: overruns are protocol errors. */
  strictReceive(): boolean;
  /** Pauses (full) or resumes reading the socket on behalf of this stream. */
  inputFull(streamId: number, full: boolean): void;
  consumeSessionSendWindow(n: number): void;
  waitForWindow(signal: AbortSignal): Promise<void>;
  streamClosed(streamId: number): void;
}

/** Largest DATA payload we send in one frame; keeps frames interleaved fairly between streams. */
const MAX_DATA_CHUNK = 16 * 1024;

export class SpdyStream extends Duplex {
  readonly id: number;
  /** Headers of the SYN_STREAM that opened the stream (immutable). */
  readonly headers: HeaderMap;
  /** Status of a RST_STREAM, ours or the peer's, once the stream was reset. */
  resetStatus: number | undefined;
  /** True once the peer has half-closed (FIN received). */
  remoteEnded = false;

  private sendWindow: number;
  private readonly recvWindowSize: number;
  private recvWindow: number;
  private pendingAck = 0;
  private localEnded = false;
  private replied = false;
  private readonly abort = new AbortController();

  constructor(private readonly owner: StreamOwner, id: number, headers: HeaderMap, sendWindow: number, recvWindow: number, remoteFin: boolean) {
    super({ allowHalfOpen: true });
    this.id = id;
    this.headers = headers;
    this.sendWindow = sendWindow;
    this.recvWindowSize = recvWindow;
    this.recvWindow = recvWindow;
    if (remoteFin) this.onRemoteFin();
  }

  /** First value of a request header (names are case-insensitive). */
  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }

  /** Sends SYN_REPLY (once; later calls are no-ops). */
  async reply(headers: HeaderMap = new Map(), fin = false): Promise<void> {
    if (this.replied) return;
    this.replied = true;
    await this.owner.sendReply(this.id, headers, fin);
    if (fin) this.localEnded = true;
  }

  /** Sends RST_STREAM with `status` and destroys the stream. Idempotent. */
  reset(status: number): void {
    if (this.resetStatus !== undefined || this.destroyed) return;
    this.resetStatus = status;
    this.owner.sendReset(this.id, status);
    this.destroy();
  }

  // --- called by the session -------------------------------------------------------------

  /** Returns false when a flow-controlling peer overran the receive window (caller resets). */
  onData(data: Buffer): boolean {
    if (data.length > this.recvWindow && this.owner.strictReceive()) return false;
    this.recvWindow -= data.length;
    if (this.remoteEnded || this.destroyed) return true;
    this.pendingAck += data.length;
    if (this.push(data)) this.flushAck();
    else this.owner.inputFull(this.id, true);
    return true;
  }

  onRemoteFin(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.maybeClosed();
  }

  onReset(status: number): void {
    this.resetStatus = status;
    this.destroy();
  }

  onWindowUpdate(delta: number): void {
    this.sendWindow += delta;
  }

  // --- Duplex implementation -------------------------------------------------------------

  override _read(): void {
    this.owner.inputFull(this.id, false);
    this.flushAck();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeAll(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localEnded) return cb();
    this.localEnded = true;
    this.reply()
      .then(() => this.owner.sendData(this.id, Buffer.alloc(0), true))
      .then(() => {
        this.maybeClosed();
        cb();
      }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.abort.abort();
    // Destroyed while still open in some direction: tell the peer, or it would wait forever.
    if (this.resetStatus === undefined && !(this.localEnded && this.remoteEnded)) {
      this.resetStatus = RstStatus.Cancel;
      this.owner.sendReset(this.id, RstStatus.Cancel);
    }
    this.owner.streamClosed(this.id);
    cb(err);
  }

  private async writeAll(chunk: Buffer): Promise<void> {
    // Data before a SYN_REPLY would be a protocol error; reply implicitly with no headers.
    await this.reply();
    let off = 0;
    while (off < chunk.length) {
      const allowed = this.owner.enforceWindows() ? Math.min(this.sendWindow, this.owner.sessionSendWindow(), MAX_DATA_CHUNK) : MAX_DATA_CHUNK;
      if (allowed <= 0) {
        await this.owner.waitForWindow(this.abort.signal);
        continue;
      }
      const piece = chunk.subarray(off, off + allowed);
      this.sendWindow -= piece.length;
      this.owner.consumeSessionSendWindow(piece.length);
      off += piece.length;
      await this.owner.sendData(this.id, piece, false);
    }
  }

  private flushAck(): void {
    if (this.pendingAck === 0 || this.destroyed || this.remoteEnded) return;
    // Credit goes back in batches of half a window: the peer still holds the other half, so it
    // never stalls, and WINDOW_UPDATE traffic stays low.
    if (this.pendingAck < this.recvWindowSize / 2) return;
    const n = this.pendingAck;
    this.pendingAck = 0;
    this.recvWindow += n;
    this.owner.sendWindowUpdate(this.id, n);
  }

  private maybeClosed(): void {
    if (this.remoteEnded && this.localEnded) this.owner.streamClosed(this.id);
  }
}
