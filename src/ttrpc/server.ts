/**
 * ttrpc server on a unix socket, wire-compatible with containerd/ttrpc (unary methods only).
 *
 * Invariants:
 * - The server owns its listener, every accepted connection and the socket file: `close()`
 *   stops accepting, drains in-flight calls (bounded by `drainTimeoutMs`), closes connections
 *   and removes the socket file. Idempotent.
 * - Handlers are registered before or after `listen()`; lookups happen per request, so a
 *   method registered later is served from then on. Unknown service/method → Unimplemented.
 * - A bad peer (garbage, truncated frames, oversized lengths, resets) affects its own
 *   connection only; nothing it sends can throw out of the server.
 */
import { createServer, type Server, type Socket } from "node:net";
import { chmod, unlink } from "node:fs/promises";
import { GrpcCode, alreadyExists, failedPrecondition, unavailable } from "../errors.js";
import { socketPathOf } from "./client.js";
import { removeStaleSocket } from "../util/socket.js";
import { ServerConnection, type Handler } from "./server-conn.js";
import type { RpcStatus } from "./status.js";

export interface ServerOptions {
  /** Upper bound for `close()` to wait for in-flight handlers (default 5 s). */
  drainTimeoutMs?: number;
}

export interface ListenOptions {
  /** File mode for the socket file, e.g. 0o660. */
  mode?: number;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 5000;
/** After drain, how long a connection may take to flush and close before it is destroyed. */
const CLOSE_LINGER_MS = 1000;

export class TtrpcServer {
  readonly #services = new Map<string, Map<string, Handler>>();
  readonly #conns = new Set<ServerConnection>();
  readonly #drainTimeoutMs: number;
  #server: Server | undefined;
  #socketPath: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: ServerOptions = {}) {
    this.#drainTimeoutMs = opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  }

  /** Registers one method. Throws AlreadyExists if `service`/`method` already has a handler. */
  register(service: string, method: string, handler: Handler): void {
    let methods = this.#services.get(service);
    if (methods === undefined) {
      methods = new Map();
      this.#services.set(service, methods);
    }
    if (methods.has(method)) throw alreadyExists(`ttrpc: ${service}/${method} is already registered`);
    methods.set(method, handler);
  }

  /**
   * Listens on a unix socket path (optionally `unix://`-prefixed). A stale socket file at that
   * path is removed first; any other kind of file is left alone (FailedPrecondition). Rejects
   * with Unavailable when the listen fails. Call at most once.
   */
  async listen(socketPath: string, opts: ListenOptions = {}): Promise<void> {
    if (this.#server !== undefined || this.#closing !== undefined) {
      throw failedPrecondition("ttrpc: server is already listening or closed");
    }
    const path = socketPathOf(socketPath);
    await removeStaleSocket(path, "ttrpc");
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(unavailable(`ttrpc: listen ${path}: ${err.message}`, err));
      server.once("error", onError);
      server.listen(path, () => {
        server.off("error", onError);
        resolve();
      });
    }).catch((err: unknown) => {
      this.#server = undefined;
      throw err;
    });
    this.#socketPath = path;
    server.on("error", () => {}); // accept errors (EMFILE...) must not crash the daemon
    if (opts.mode !== undefined) {
      try {
        await chmod(path, opts.mode);
      } catch (err) {
        await this.close();
        throw unavailable(`ttrpc: chmod ${path}: ${(err as Error).message}`, err);
      }
    }
  }

  /** Stop accepting, let in-flight calls finish (bounded), close connections, remove the socket
   * file. Idempotent: every caller gets the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const server = this.#server;
    const listenerClosed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    const deadline = AbortSignal.timeout(this.#drainTimeoutMs);
    await Promise.all([...this.#conns].map((c) => c.drain(deadline)));
    await Promise.all(
      [...this.#conns].map(async (c) => {
        const linger = setTimeout(() => c.destroy(), CLOSE_LINGER_MS);
        await c.closed;
        clearTimeout(linger);
      }),
    );
    await listenerClosed;
    if (this.#socketPath !== undefined) await unlink(this.#socketPath).catch(() => {});
  }

  #accept(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(socket, (service, method) => this.#lookup(service, method));
    this.#conns.add(conn);
    void conn.closed.then(() => this.#conns.delete(conn));
  }

  #lookup(service: string, method: string): Handler | RpcStatus {
    const methods = this.#services.get(service);
    if (methods === undefined) {
      return { code: GrpcCode.Unimplemented, message: `service ${service}: unimplemented`, details: [] };
    }
    const handler = methods.get(method);
    if (handler === undefined) {
      return { code: GrpcCode.Unimplemented, message: `method ${service}/${method}: unimplemented`, details: [] };
    }
    return handler;
  }
}
