/**
 * The CRI v1 gRPC server: `runtime.v1.RuntimeService` and `runtime.v1.ImageService` over HTTP/2
 * (cleartext, prior knowledge) on a unix socket, gRPC protocol only, as kubelet and crictl speak it.
 *
 * Every RPC passes through `instrumentService` (logging, metrics, error mapping); handlers given
 * here are plain functions that return responses or throw SkiffErrors. Any `:authority` is
 * accepted (clients send the socket path, an empty string, `localhost`…): each connection reaches
 * the HTTP/2 server through http2/tolerant-connection.ts. A method skiff does not know is
 * answered with gRPC status UNIMPLEMENTED, as gRPC servers do.
 */
import { chmod, unlink } from "node:fs/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import { createContextKey, createContextValues, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { failedPrecondition } from "../errors.js";
import { removeStaleSocket } from "../util/socket.js";
import { ImageService, RuntimeService } from "../gen/runtime/v1/api_pb.js";
import { serveTolerant } from "../http2/tolerant-connection.js";
import type { Logger } from "../log.js";
import { RpcMetrics, instrumentService } from "./instrument.js";
import { answerUnknownMethod } from "./unknown-method.js";

export type RuntimeServiceImpl = ServiceImpl<typeof RuntimeService>;
export type ImageServiceImpl = ServiceImpl<typeof ImageService>;

/** kubelet's message size cap; requests or responses above it fail with ResourceExhausted. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Socket permissions: owner and group (kubelet runs as root; a group may grant crictl access). */
export const SOCKET_MODE = 0o660;
/** Default bound on how long `close()` waits for in-flight calls before cutting them off. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/**
 * Ends the call now with an HTTP/2 reset of `code` (gRPC clients map ENHANCE_YOUR_CALM to
 * RESOURCE_EXHAUSTED). For a server stream whose client stopped reading: no status can pass the
 * data it leaves unread. Node keeps a write stuck on flow control pending after a reset, so the
 * response is also told to drain: the handler resumes, ends, and its call is logged and counted.
 */
export type ResetCall = (code: number) => void;
export const RESET_CALL = createContextKey<ResetCall | undefined>(undefined, { description: "reset call" });
/** Delay between our end of a call and resetting a request the client is still sending. */
const HALF_OPEN_RESET_MS = 100;

export interface CriServerOptions {
  /** Path of the unix socket. A stale socket there is removed; a live one is an error. */
  socket: string;
  /** Implemented RuntimeService methods; the others answer Unimplemented. */
  runtime: Partial<RuntimeServiceImpl>;
  /** Implemented ImageService methods; the others answer Unimplemented. */
  image: Partial<ImageServiceImpl>;
  log: Logger;
  /** Counters to record into; a fresh RpcMetrics by default. */
  metrics?: RpcMetrics;
  /** Bound on the drain in `close()`. */
  drainTimeoutMs?: number;
}

/**
 * Owns the HTTP/2 server and the socket file. `listen()` once; `close()` is idempotent and safe
 * to call concurrently (all callers get the same promise). Not restartable after close.
 */
export class CriServer {
  readonly metrics: RpcMetrics;
  readonly #opts: CriServerOptions;
  readonly #log: Logger;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  #listener: net.Server | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: CriServerOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ component: "cri-server" });
    this.metrics = opts.metrics ?? new RpcMetrics();
  }

  /** Starts serving on the socket (mode 0660). Rejects if the socket is held by a live server. */
  async listen(): Promise<void> {
    if (this.#listener !== undefined || this.#closing !== undefined) throw failedPrecondition("cri server: listen called twice");
    const { socket } = this.#opts;
    await removeStaleSocket(socket, "cri server");

    const instrumentOpts = { log: this.#log, metrics: this.metrics };
    const runtime = instrumentService(RuntimeService, this.#opts.runtime, instrumentOpts);
    const image = instrumentService(ImageService, this.#opts.image, instrumentOpts);
    const handler = connectNodeAdapter({
      grpc: true,
      connect: false,
      grpcWeb: false,
      readMaxBytes: MAX_MESSAGE_BYTES,
      writeMaxBytes: MAX_MESSAGE_BYTES,
      contextValues: (req) => createContextValues().set(RESET_CALL, resetters.get(req)),
      fallback: (req, res) => answerUnknownMethod(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse, this.#log),
      routes(router) {
        // instrumentService returns an entry for every method of the descriptor.
        router.service(RuntimeService, runtime as unknown as RuntimeServiceImpl);
        router.service(ImageService, image as unknown as ImageServiceImpl);
      },
    });

    const resetters = new WeakMap<object, ResetCall>();
    const server = http2.createServer({}, (req, res) => {
      resetters.set(req, (code) => {
        if (!req.stream.destroyed) req.stream.close(code);
        res.emit("drain");
      });
      // A call can end before its request was read (e.g. a message over the limit). The client
      // then waits on flow control and the stream stays half-open, holding up the drain in
      // close(). Once our side is done, reset the stream (RST_STREAM), as gRPC servers do; the
      // short delay lets the trailers reach the socket first. (Http2Stream.close(NO_ERROR) did
      // not release such a stream in tests on Node 20; destroy() does.)
      const stream = req.stream;
      stream.once("finish", () => {
        if (req.complete) return;
        setTimeout(() => stream.closed || stream.destroy(), HALF_OPEN_RESET_MS).unref();
      });
      handler(req, res);
    });
    server.on("session", (session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      session.on("error", (err) => this.#log.debug({ err }, "cri session error"));
    });
    server.on("sessionError", (err) => this.#log.debug({ err }, "cri session error"));
    const tolerant = {
      onRewrite: (name: string, from: string) => this.#log.debug({ header: name, value: from.slice(0, 256) }, "cri: client authority replaced by localhost"),
      onProtocolError: (err: Error) => this.#log.debug({ err }, "cri: connection ended for an HTTP/2 protocol error"),
    };
    const listener = net.createServer((conn) => serveTolerant(server, conn, tolerant));
    this.#listener = listener;

    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      listener.once("error", onError);
      listener.listen(socket, () => {
        listener.off("error", onError);
        resolve();
      });
    });
    listener.on("error", (err) => this.#log.error({ err }, "cri server error"));
    // The socket is created with the umask's mode; narrowing the umask would race with every
    // other file the process creates, so fix the mode right after bind.
    await chmod(socket, SOCKET_MODE);
    this.#log.info({ socket }, "cri server listening");
  }

  /**
   * Stops accepting connections and new calls (GOAWAY on open sessions), waits for in-flight
   * calls to finish for at most `drainTimeoutMs`, then destroys what is left and removes the
   * socket file.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const listener = this.#listener;
    if (listener === undefined) return;
    // Resolves once every accepted connection has closed.
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    for (const session of this.#sessions) session.close();

    const timeoutMs = this.#opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.#log.warn({ sessions: this.#sessions.size, timeoutMs }, "cri drain timed out, cutting off calls");
      for (const session of this.#sessions) session.destroy();
      await closed;
    }
    await unlink(this.#opts.socket).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    this.#log.info({ socket: this.#opts.socket }, "cri server closed");
  }
}
