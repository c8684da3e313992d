/**
 * ttrpc client over one unix socket, wire-compatible with containerd/ttrpc (unary calls only).
 *
 * Invariants:
 * - The client owns its socket: it is destroyed by `destroy()`, ended by `close()`, and
 *   released when the peer goes away. Callers never touch it.
 * - Calls are multiplexed; responses may arrive in any order. Stream ids are odd and strictly
 *   increasing (1, 3, 5, ...), as containerd's server requires.
 * - Every pending call settles exactly once: with the response, its own deadline/abort, or the
 *   connection ending (Unavailable). A call never outlives its deadline. ttrpc has no cancel
 *   frame: an aborted call may still run on the server, and its late response is dropped.
 * - Nothing a peer sends can throw out of the socket callbacks; a malformed response fails the
 *   call it names (Internal), other garbage is ignored or ends the connection.
 */
import { createConnection, type Socket } from "node:net";
import { deadlineExceeded, internal, unavailable } from "../errors.js";
import { abortError, linkedSignal } from "../util/signal.js";
import { FrameDecoder, MESSAGE_LENGTH_MAX, MessageType, oversizedError, writeFrame, type Frame, type FrameHeader } from "./frame.js";
import { decodeResponse, encodeRequest, type KeyValue } from "./messages.js";
import { errorFromStatus } from "./status.js";

/** Metadata key containerd uses to carry the namespace over ttrpc. */
export const NAMESPACE_METADATA_KEY = "containerd-namespace-ttrpc";
const MAX_STREAM_ID = 0xffffffff;
/** How long `close()` waits for the peer to acknowledge the end of the stream. */
const CLOSE_LINGER_MS = 1000;

export interface CallOptions {
  /** Abort → the pending call rejects (Canceled / DeadlineExceeded per the signal's reason). */
  signal?: AbortSignal;
  /** Local deadline → DeadlineExceeded; also sent to the server as timeout_nano. */
  timeoutMs?: number;
  metadata?: Record<string, string | string[]>;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /** Sent as metadata `containerd-namespace-ttrpc` on every call (a call's own metadata wins). */
  namespace?: string;
  /** Bounds the connect only; DeadlineExceeded when it passes. */
  timeoutMs?: number;
}

interface Pending {
  resolve(payload: Uint8Array): void;
  reject(err: Error): void;
}

/** Strips an optional `unix://` scheme. */
export function socketPathOf(address: string): string {
  return address.startsWith("unix://") ? address.slice("unix://".length) : address;
}

export class TtrpcClient {
  readonly #socket: Socket;
  readonly #namespace: string | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #decoder: FrameDecoder;
  #nextStreamId = 1;
  #accepting = true;
  #ended = false;
  /** Set when close() ended the socket: the end that follows is clean. */
  #localEnd = false;
  #closing: Promise<void> | undefined;
  #resolveClosed!: (err: Error | undefined) => void;
  #drained: (() => void) | undefined;

  /** Resolves (never rejects) once the connection is gone: the error that ended it, or undefined
   * for a local `close()` / `destroy()` without an error. */
  readonly closed: Promise<Error | undefined>;

  private constructor(socket: Socket, namespace: string | undefined) {
    this.#socket = socket;
    this.#namespace = namespace;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#decoder = new FrameDecoder({
      onFrame: (f) => this.#onFrame(f),
      onOversize: (h) => this.#onOversize(h),
    });
    socket.on("data", (chunk: Buffer) => this.#decoder.push(chunk));
    socket.on("error", (err) => this.#end(unavailable(`ttrpc: connection error: ${err.message}`, err), false));
    socket.on("end", () => this.#end(unavailable("ttrpc: connection closed by peer"), this.#localEnd));
    socket.on("close", () => this.#end(unavailable("ttrpc: connection closed"), this.#localEnd));
  }

  /** Connects to a unix socket path (optionally `unix://`-prefixed). Rejects with Unavailable when
   * the connect fails, Canceled/DeadlineExceeded when `signal` / `timeoutMs` end it first. */
  static connect(socketPath: string, opts: ConnectOptions = {}): Promise<TtrpcClient> {
    const path = socketPathOf(socketPath);
    if (opts.timeoutMs !== undefined && opts.timeoutMs <= 0) {
      return Promise.reject(deadlineExceeded(`ttrpc: connect ${path}: deadline exceeded`));
    }
    const bound = linkedSignal([opts.signal], opts.timeoutMs);
    const signal = bound.signal;
    if (signal.aborted) {
      bound.dispose();
      return Promise.reject(abortError(signal, `ttrpc: connect ${path}`));
    }
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const settle = (err: Error | undefined) => {
        bound.dispose();
        signal.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        socket.off("connect", onConnect);
        if (err === undefined) {
          resolve(new TtrpcClient(socket, opts.namespace));
        } else {
          socket.on("error", () => {}); // a late error after destroy must not crash the process
          socket.destroy();
          reject(err);
        }
      };
      const onAbort = () => settle(abortError(signal, `ttrpc: connect ${path}`));
      const onError = (err: Error) => settle(unavailable(`ttrpc: connect ${path}: ${err.message}`, err));
      const onConnect = () => settle(undefined);
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("error", onError);
      socket.once("connect", onConnect);
    });
  }

  /** True once the client stopped accepting calls (close/destroy called, or connection gone). */
  get isClosed(): boolean {
    return !this.#accepting || this.#ended;
  }

  /** One unary call. Safe to call concurrently; rejects with a SkiffError (a TtrpcStatusError for
   * a remote non-OK status, which keeps the numeric code as `grpcCode`). */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const what = `ttrpc: ${service}/${method}`;
    if (this.isClosed) return Promise.reject(unavailable(`${what}: client is closed`));
    const { signal, timeoutMs } = opts;
    if (signal?.aborted) return Promise.reject(abortError(signal, what));
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.reject(deadlineExceeded(`${what}: deadline exceeded`));
    if (this.#nextStreamId > MAX_STREAM_ID) {
      this.destroy(unavailable("ttrpc: stream ids exhausted"));
      return Promise.reject(unavailable(`${what}: stream ids exhausted`));
    }
    const data = encodeRequest({
      service,
      method,
      payload,
      timeoutNano: timeoutMs !== undefined ? Math.ceil(timeoutMs * 1e6) : 0,
      metadata: this.#metadata(opts.metadata),
    });
    if (data.length > MESSAGE_LENGTH_MAX) return Promise.reject(oversizedError(data.length));

    const streamId = this.#nextStreamId;
    this.#nextStreamId += 2;
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(abortError(signal!, what));
      const finish = (err: Error | undefined, value?: Uint8Array) => {
        if (this.#pending.get(streamId) !== entry) return;
        this.#pending.delete(streamId);
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err !== undefined) reject(err);
        else resolve(value!);
        if (this.#pending.size === 0) this.#drained?.();
      };
      const entry: Pending = { resolve: (v) => finish(undefined, v), reject: (e) => finish(e) };
      this.#pending.set(streamId, entry);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => finish(deadlineExceeded(`${what}: deadline of ${timeoutMs} ms exceeded`)), timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        writeFrame(this.#socket, streamId, MessageType.Request, 0, data);
      } catch (err) {
        finish(unavailable(`${what}: write failed`, err));
      }
    });
  }

  /** Graceful: refuse new calls, wait for pending ones (each bounded by its own deadline), then
   * end the socket. Idempotent: every caller gets the same promise, resolved once the
   * connection is gone. */
  close(): Promise<void> {
    this.#accepting = false;
    this.#closing ??= this.#drainAndEnd();
    return this.#closing;
  }

  async #drainAndEnd(): Promise<void> {
    if (this.#pending.size > 0 && !this.#ended) {
      await new Promise<void>((resolve) => (this.#drained = resolve));
    }
    if (!this.#ended) {
      this.#localEnd = true;
      this.#socket.end();
      // A peer that never closes its side must not hold close() forever.
      const linger = setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS);
      await this.closed;
      clearTimeout(linger);
    }
  }

  /** Immediate: fail every pending call with `err` (default Unavailable "connection closed") and
   * destroy the socket. Idempotent. `closed` resolves with `err` (undefined when none given). */
  destroy(err?: Error): void {
    this.#accepting = false;
    if (this.#ended) return;
    this.#end(err ?? unavailable("ttrpc: connection closed"), err === undefined);
  }

  /** Ends the connection once: fails all pending calls with `err`, destroys the socket, resolves
   * `closed` (with undefined when the end was `clean`, i.e. asked for locally). */
  #end(err: Error, clean: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#accepting = false;
    for (const p of [...this.#pending.values()]) p.reject(err);
    this.#drained?.();
    if (!this.#socket.destroyed) this.#socket.destroy();
    this.#resolveClosed(clean ? undefined : err);
  }

  #onFrame(f: Frame): void {
    const p = this.#pending.get(f.streamId);
    if (p === undefined) return; // late response to an aborted call, or a stray frame
    if (f.type !== MessageType.Response) {
      p.reject(internal(`ttrpc: unexpected message type ${f.type} for stream ${f.streamId}`));
      return;
    }
    let res;
    try {
      res = decodeResponse(f.data);
    } catch (err) {
      p.reject(internal(`ttrpc: malformed response for stream ${f.streamId}: ${(err as Error).message}`, err));
      return;
    }
    if (res.status !== undefined && res.status.code !== 0) p.reject(errorFromStatus(res.status));
    else p.resolve(res.payload);
  }

  #onOversize(h: FrameHeader): void {
    this.#pending.get(h.streamId)?.reject(oversizedError(h.length));
  }

  #metadata(md: Record<string, string | string[]> | undefined): KeyValue[] {
    const out: KeyValue[] = [];
    if (this.#namespace !== undefined && (md === undefined || !(NAMESPACE_METADATA_KEY in md))) {
      out.push({ key: NAMESPACE_METADATA_KEY, value: this.#namespace });
    }
    for (const [key, v] of Object.entries(md ?? {})) {
      for (const value of Array.isArray(v) ? v : [v]) out.push({ key, value });
    }
    return out;
  }
}
