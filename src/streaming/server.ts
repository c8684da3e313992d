/**
 * The streaming server: the HTTP(S) endpoint that Exec/Attach/PortForward URLs point at.
 *
 * Routes `/exec/<token>`, `/attach/<token>` and `/portforward/<token>`; each token is single-use
 * and selects the stored request (the URL's query is never trusted over it). A request upgrades
 * to SPDY/3.1 (kubectl, crictl) or to WebSocket (newer kubectl); anything else is refused.
 *
 * Invariants:
 * - Unknown, expired, used and wrong-kind tokens all get the same 404 with the same body.
 * - At most `maxStreams` upgraded connections at a time; the next one gets 429 before its token
 *   is spent, so the client may retry.
 * - A connection with no traffic for `idleTimeoutMs` is aborted (the backend's signal fires,
 *   then the socket is destroyed).
 * - `close()` stops accepting, aborts every connection, and resolves when all have ended;
 *   it is idempotent. After close, `register` throws FailedPrecondition.
 */
import { readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { failedPrecondition, invalidArgument } from "../errors.js";
import type { Logger } from "../log.js";
import { serveSpdyPortForward, serveWsPortForward, PORTFORWARD_SPDY_PROTOCOLS, PORTFORWARD_WS_PROTOCOLS, queryPorts } from "./portforward.js";
import { REMOTECOMMAND_SPDY_PROTOCOLS, serveSpdyCommand, StreamInbox } from "./remotecommand.js";
import { REMOTECOMMAND_WS_PROTOCOLS, serveWsCommand } from "./remotecommand-ws.js";
import { SpdySession } from "./spdy/session.js";
import { DEFAULT_TOKEN_TTL_MS, TokenStore } from "./tokens.js";
import type { StreamingBackend, StreamingRequest, StreamingUrls } from "./types.js";
import { WsConnection } from "./ws/connection.js";
import { accept, isWebSocketRequest, negotiate, offeredProtocols, rejectUpgrade, validateHandshake } from "./ws/handshake.js";

export const DEFAULT_IDLE_TIMEOUT_MS = 4 * 60 * 60 * 1000;
export const DEFAULT_MAX_STREAMS = 100;
export const DEFAULT_STREAM_CREATION_TIMEOUT_MS = 30_000;

export interface StreamingServerOptions {
  backend: StreamingBackend;
  /** Listen address; default 127.0.0.1. */
  address?: string;
  /** Listen port; 0 (default) picks a free one. */
  port?: number;
  /** Serve HTTPS with this certificate and key (PEM file paths). */
  tls?: { certPath: string; keyPath: string };
  tokenTtlMs?: number;
  idleTimeoutMs?: number;
  maxStreams?: number;
  /** How long a client may take to open its SPDY streams after the upgrade. */
  streamCreationTimeoutMs?: number;
  log: Logger;
}

const NOT_FOUND_BODY = "404 page not found\n";
const KINDS = ["exec", "attach", "portforward"] as const;

/** Parses `/<kind>/<token>`; undefined for any other path. */
export function parseRoute(path: string): { kind: StreamingRequest["kind"]; token: string } | undefined {
  const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,128})$/.exec(path);
  if (!m) return undefined;
  return { kind: m[1] as StreamingRequest["kind"], token: m[2]! };
}

/** The client's X-Stream-Protocol-Version list, in order (repeated headers arrive comma-joined). */
export function clientStreamProtocols(req: http.IncomingMessage): string[] {
  const raw = req.headers["x-stream-protocol-version"];
  const all = Array.isArray(raw) ? raw.join(",") : (raw ?? "");
  return all.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

export class StreamingServer implements StreamingUrls {
  private readonly tokens: TokenStore;
  private readonly o: Required<Omit<StreamingServerOptions, "tls">> & Pick<StreamingServerOptions, "tls">;
  private server: http.Server | undefined;
  private baseUrl: string | undefined;
  private readonly active = new Set<{ abort: AbortController; done: Promise<void> }>();
  private closing: Promise<void> | undefined;

  constructor(opts: StreamingServerOptions) {
    this.o = {
      address: "127.0.0.1",
      port: 0,
      tokenTtlMs: DEFAULT_TOKEN_TTL_MS,
      idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
      maxStreams: DEFAULT_MAX_STREAMS,
      streamCreationTimeoutMs: DEFAULT_STREAM_CREATION_TIMEOUT_MS,
      ...opts,
    };
    const { port, maxStreams, idleTimeoutMs, tokenTtlMs } = this.o;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`streaming server: invalid port ${port}`);
    if (!Number.isInteger(maxStreams) || maxStreams < 1) throw invalidArgument(`streaming server: invalid maxStreams ${maxStreams}`);
    if (!(idleTimeoutMs > 0)) throw invalidArgument(`streaming server: invalid idleTimeoutMs ${idleTimeoutMs}`);
    if (!(tokenTtlMs > 0)) throw invalidArgument(`streaming server: invalid tokenTtlMs ${tokenTtlMs}`);
    this.tokens = new TokenStore(tokenTtlMs);
  }

  /** Starts listening. Rejects (and leaves nothing open) if the address cannot be bound. */
  async start({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.server || this.closing) throw failedPrecondition("streaming server: already started");
    signal?.throwIfAborted();
    // Any Host is accepted, none too: the token in the path is what a request is routed by, and
    // clients of a node-local URL do not all send a Host (Node refuses HTTP/1.1 without one).
    const common = { requireHostHeader: false };
    const server = this.o.tls
      ? https.createServer({ ...common, cert: await readFile(this.o.tls.certPath, { signal }), key: await readFile(this.o.tls.keyPath, { signal }) })
      : http.createServer(common);
    server.on("request", (req, res) => this.onRequest(req, res));
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on("clientError", (_err, socket: Duplex) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.address, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    const unspecified = this.o.address === "0.0.0.0" || this.o.address === "::";
    const host = unspecified ? "127.0.0.1" : this.o.address.includes(":") ? `[${this.o.address}]` : this.o.address;
    this.baseUrl = `${this.o.tls ? "https" : "http"}://${host}:${port}`;
  }

  /** The bound port (after start). */
  get port(): number {
    if (!this.server) throw failedPrecondition("streaming server: not started");
    return (this.server.address() as AddressInfo).port;
  }

  /** Number of upgraded connections being served. */
  get activeCount(): number {
    return this.active.size;
  }

  register(req: StreamingRequest): string {
    if (!this.baseUrl || this.closing) throw failedPrecondition("streaming server: not serving, cannot register a request");
    return `${this.baseUrl}/${req.kind}/${this.tokens.issue(req)}`;
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const server = this.server;
    this.closing = (async () => {
      const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
      for (const a of this.active) a.abort.abort();
      await Promise.allSettled([...this.active].map((a) => a.done));
      server?.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = parseRoute(new URL(req.url ?? "/", "http://x").pathname);
    if (!route) {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end(NOT_FOUND_BODY);
      return;
    }
    res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8" }).end("unable to upgrade: missing upgrade headers in request\n");
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // After 'upgrade' the socket is ours: an unhandled 'error' (client reset) would crash the daemon.
    socket.on("error", () => socket.destroy());
    const url = new URL(req.url ?? "/", "http://x");
    const route = parseRoute(url.pathname);
    if (!route || !KINDS.includes(route.kind)) return rejectUpgrade(socket, 404, NOT_FOUND_BODY);
    if (this.closing) return rejectUpgrade(socket, 503, "streaming server is shutting down\n");
    if (this.active.size >= this.o.maxStreams) {
      return rejectUpgrade(socket, 429, `too many concurrent streaming connections (limit ${this.o.maxStreams})\n`, { "Retry-After": "1" });
    }
    const stored = this.tokens.consume(route.token);
    if (!stored || stored.kind !== route.kind) return rejectUpgrade(socket, 404, NOT_FOUND_BODY);
    if (head.length > 0) socket.unshift(head);
    if (isWebSocketRequest(req)) this.upgradeWebSocket(req, socket, url, stored);
    else this.upgradeSpdy(req, socket, stored);
  }

  /** Registers a served connection: idle timeout, abort on close(), bookkeeping. */
  private track(socket: Duplex, serve: (signal: AbortSignal) => Promise<void>): void {
    const abort = new AbortController();
    const s = socket as Duplex & { setTimeout?: (ms: number, cb: () => void) => void };
    s.setTimeout?.(this.o.idleTimeoutMs, () => {
      this.o.log.info("streaming connection idle, closing");
      abort.abort();
      socket.destroy();
    });
    const entry = { abort, done: Promise.resolve() };
    entry.done = serve(abort.signal)
      .catch((err: unknown) => this.o.log.warn({ err }, "streaming connection failed"))
      .finally(() => {
        this.active.delete(entry);
        // The protocol handlers closed their session; make sure the socket goes too.
        if (!socket.destroyed) {
          const t = setTimeout(() => socket.destroy(), 2000);
          socket.once("close", () => clearTimeout(t));
          socket.end();
        }
      });
    this.active.add(entry);
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Duplex, stored: StreamingRequest): void {
    const upgrade = (req.headers.upgrade ?? "").toLowerCase();
    const connection = (req.headers.connection ?? "").toLowerCase();
    if (upgrade !== "spdy/3.1" || !connection.split(/\s*,\s*/).includes("upgrade")) {
      return rejectUpgrade(socket, 400, "unable to upgrade: missing upgrade headers in request\n");
    }
    const supported: readonly string[] = stored.kind === "portforward" ? PORTFORWARD_SPDY_PROTOCOLS : REMOTECOMMAND_SPDY_PROTOCOLS;
    const offered = clientStreamProtocols(req);
    if (offered.length === 0) return rejectUpgrade(socket, 400, "unable to upgrade: X-Stream-Protocol-Version is required\n");
    const protocol = offered.find((p) => supported.includes(p));
    if (!protocol) {
      return rejectUpgrade(
        socket,
        403,
        `unable to upgrade: unable to negotiate protocol: client supports ${offered.join(", ")}, server accepts ${supported.join(", ")}\n`,
        { "X-Accepted-Stream-Protocol-Versions": supported.join(", ") },
      );
    }
    socket.write(
      ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: SPDY/3.1", `X-Stream-Protocol-Version: ${protocol}`].join("\r\n") + "\r\n\r\n",
    );
    const inbox = new StreamInbox();
    const session = new SpdySession(socket, { onStream: (st) => inbox.push(st) });
    session.once("close", () => inbox.end());
    const common = { backend: this.o.backend, streamCreationTimeoutMs: this.o.streamCreationTimeoutMs, log: this.o.log };
    this.track(socket, (signal) =>
      stored.kind === "portforward"
        ? serveSpdyPortForward(session, inbox, { ...common, req: stored, signal })
        : serveSpdyCommand(session, inbox, { ...common, req: stored, protocol, signal }),
    );
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: Duplex, url: URL, stored: StreamingRequest): void {
    const bad = validateHandshake(req);
    if (bad) return rejectUpgrade(socket, 400, `unable to upgrade: ${bad}\n`);
    const supported: readonly string[] = stored.kind === "portforward" ? PORTFORWARD_WS_PROTOCOLS : REMOTECOMMAND_WS_PROTOCOLS;
    const protocol = negotiate(offeredProtocols(req), supported, true);
    if (protocol === undefined) {
      return rejectUpgrade(socket, 400, `unable to upgrade: no supported subprotocol (server accepts ${supported.join(", ")})\n`);
    }
    let ports: number[] = [];
    if (stored.kind === "portforward") {
      const p = queryPorts(url, stored.ports);
      if (typeof p === "string") return rejectUpgrade(socket, 400, `${p}\n`);
      ports = p;
    }
    accept(req, socket, protocol);
    const ws = new WsConnection(socket, protocol);
    const common = { backend: this.o.backend, log: this.o.log };
    this.track(socket, (signal) =>
      stored.kind === "portforward"
        ? serveWsPortForward(ws, ports, { ...common, req: stored, streamCreationTimeoutMs: this.o.streamCreationTimeoutMs, signal })
        : serveWsCommand(ws, { ...common, req: stored, signal }),
    );
  }
}
