/**
 * One accepted ttrpc connection on the server side.
 *
 * Invariants:
 * - The connection owns its socket; `TtrpcServer` only calls `drain()` / `destroy()`.
 * - Requests are dispatched as they arrive; handlers run concurrently, and each response is
 *   written when its handler settles, so one slow handler never delays another.
 * - Peer input never throws out of a socket callback. A request whose stream id is readable but
 *   whose data is bad (even stream id, reused id, garbage protobuf, oversized frame) is answered
 *   with an error status, as containerd's server does; the connection stays open.
 * - Backpressure: while the socket's write queue is over its high-water mark, reading pauses, so
 *   a peer that stops reading responses cannot make the server buffer without bound.
 * - Every handler's `ctx.signal` aborts on its `timeout_nano` deadline or when the connection
 *   goes away, whichever is first; the listener and timer are always released.
 */
import type { Socket } from "node:net";
import { GrpcCode } from "../errors.js";
import { deadlineExceeded, unavailable } from "../errors.js";
import { FrameDecoder, MESSAGE_LENGTH_MAX, MessageType, writeFrame, type Frame, type FrameHeader } from "./frame.js";
import { decodeRequest, encodeResponse, type TtrpcRequest } from "./messages.js";
import { statusFromError, type RpcStatus } from "./status.js";

export interface CallContext {
  service: string;
  method: string;
  /** Request metadata; keys keep their wire spelling, repeated keys collect all values. */
  metadata: Map<string, string[]>;
  /** Aborted when the request's timeout_nano passes or the connection closes. */
  signal: AbortSignal;
}

/** A unary handler. May run concurrently with any other handler, on any connection. */
export type Handler = (payload: Uint8Array, ctx: CallContext) => Promise<Uint8Array>;

/** Resolves a handler, or returns the Unimplemented status to send. */
export type HandlerLookup = (service: string, method: string) => Handler | RpcStatus;

export class ServerConnection {
  readonly #socket: Socket;
  readonly #lookup: HandlerLookup;
  readonly #decoder: FrameDecoder;
  /** Controllers of running handlers; all aborted (reason Unavailable) when the connection goes. */
  readonly #calls = new Set<AbortController>();
  #goneReason: Error | undefined;
  #lastStreamId = 0;
  #inFlight = 0;
  #draining = false;
  #idle: (() => void) | undefined;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;

  constructor(socket: Socket, lookup: HandlerLookup) {
    this.#socket = socket;
    this.#lookup = lookup;
    this.#decoder = new FrameDecoder({ onFrame: (f) => this.#onFrame(f), onOversize: (h) => this.#onOversize(h) });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => this.#decoder.push(chunk));
    socket.on("drain", () => socket.resume());
    socket.on("error", () => socket.destroy()); // ECONNRESET and friends: nothing to report to
    socket.once("close", () => {
      this.#goneReason = unavailable("ttrpc: connection closed");
      for (const ac of this.#calls) ac.abort(this.#goneReason);
      this.#idle?.();
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Stop taking new requests (answered Unavailable from now on), wait until in-flight handlers
   * have answered or `signal` aborts, then end the socket so queued responses are flushed.
   */
  async drain(signal: AbortSignal): Promise<void> {
    this.#draining = true;
    if (this.#inFlight > 0 && !this.#socket.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.#idle = undefined;
          resolve();
        };
        this.#idle = done;
        signal.addEventListener("abort", done, { once: true });
        if (signal.aborted) done();
      });
    }
    this.#socket.end();
  }

  /** Closes now; handlers still running see their signal abort with Unavailable. */
  destroy(): void {
    this.#socket.destroy();
  }

  #onFrame(f: Frame): void {
    // Like containerd: ignore unknown message types (future compatibility), refuse bad ids.
    if (f.type !== MessageType.Request) return;
    if (f.streamId % 2 !== 1) {
      this.#sendStatus(f.streamId, GrpcCode.InvalidArgument, "StreamID must be odd for client initiated streams");
      return;
    }
    if (f.streamId <= this.#lastStreamId) {
      this.#sendStatus(f.streamId, GrpcCode.InvalidArgument, "StreamID cannot be re-used and must increment");
      return;
    }
    this.#lastStreamId = f.streamId;
    let req: TtrpcRequest;
    try {
      req = decodeRequest(f.data);
    } catch (err) {
      this.#sendStatus(f.streamId, GrpcCode.InvalidArgument, `unmarshal request error: ${(err as Error).message}`);
      return;
    }
    if (this.#draining) {
      this.#sendStatus(f.streamId, GrpcCode.Unavailable, "ttrpc: server is shutting down");
      return;
    }
    const handler = this.#lookup(req.service, req.method);
    if (typeof handler !== "function") {
      this.#send(f.streamId, handler, new Uint8Array(0));
      return;
    }
    void this.#dispatch(f.streamId, req, handler);
  }

  #onOversize(h: FrameHeader): void {
    this.#sendStatus(
      h.streamId,
      GrpcCode.ResourceExhausted,
      `message length ${h.length} exceed maximum message size of ${MESSAGE_LENGTH_MAX}`,
    );
  }

  async #dispatch(streamId: number, req: TtrpcRequest, handler: Handler): Promise<void> {
    this.#inFlight++;
    const ac = new AbortController();
    if (this.#goneReason !== undefined) ac.abort(this.#goneReason);
    this.#calls.add(ac);
    let timer: NodeJS.Timeout | undefined;
    if (req.timeoutNano > 0) {
      const ms = Math.max(1, Math.ceil(req.timeoutNano / 1e6));
      timer = setTimeout(() => ac.abort(deadlineExceeded(`ttrpc: ${req.service}/${req.method}: deadline exceeded`)), ms);
    }
    const metadata = new Map<string, string[]>();
    for (const { key, value } of req.metadata) {
      const list = metadata.get(key);
      if (list === undefined) metadata.set(key, [value]);
      else list.push(value);
    }
    const ctx: CallContext = { service: req.service, method: req.method, metadata, signal: ac.signal };
    try {
      const out = await handler(req.payload, ctx);
      this.#send(streamId, undefined, out);
    } catch (err) {
      this.#send(streamId, statusFromError(err), new Uint8Array(0));
    } finally {
      clearTimeout(timer);
      this.#calls.delete(ac);
      this.#inFlight--;
      if (this.#inFlight === 0) this.#idle?.();
    }
  }

  #sendStatus(streamId: number, code: number, message: string): void {
    this.#send(streamId, { code, message, details: [] }, new Uint8Array(0));
  }

  /** Writes one response; a response too large for a frame becomes ResourceExhausted instead. */
  #send(streamId: number, status: RpcStatus | undefined, payload: Uint8Array): void {
    if (this.#socket.destroyed || !this.#socket.writable) return;
    let data = encodeResponse({ status, payload });
    if (data.length > MESSAGE_LENGTH_MAX) {
      const message = `response length ${data.length} exceeds maximum message size of ${MESSAGE_LENGTH_MAX}`;
      data = encodeResponse({ status: { code: GrpcCode.ResourceExhausted, message, details: [] }, payload: new Uint8Array(0) });
    }
    if (!writeFrame(this.#socket, streamId, MessageType.Response, 0, data)) this.#socket.pause();
  }
}
