/**
 * Hands a client connection to a Node HTTP/2 server through a RequestRewriter, so the server
 * accepts any `:authority` (see request-rewriter.ts). The server sees a Duplex instead of the
 * socket: what the client sends passes through the rewriter, what the server writes goes to the
 * socket unchanged.
 */
import type * as http2 from "node:http2";
import type * as net from "node:net";
import { Duplex } from "node:stream";
import { goawayFrame, H2_INTERNAL_ERROR, Http2ConnectionError, RequestRewriter, type RequestRewriterOptions } from "./request-rewriter.js";

/** Node's HTTP/2 defaults, which the server must be using when these are not given. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const DEFAULT_HEADER_TABLE_SIZE = 4_096;
const DEFAULT_MAX_HEADER_BLOCK_BYTES = 1024 * 1024;
/** How long a connection ended for a protocol error may take to flush its GOAWAY. */
const GOAWAY_LINGER_MS = 1_000;

export interface TolerantConnectionOptions extends Partial<Omit<RequestRewriterOptions, "onRewrite">> {
  onRewrite?: RequestRewriterOptions["onRewrite"];
  /** Called when the client broke the protocol and the connection was ended with GOAWAY. */
  onProtocolError?: (err: Http2ConnectionError) => void;
}

/**
 * Serves `socket` with `server` (which need not listen anywhere itself). The socket is owned
 * from here on: it is closed when the server's session ends, and the session ends when the
 * socket does.
 */
export function serveTolerant(server: http2.Http2Server, socket: net.Socket, opts: TolerantConnectionOptions = {}): void {
  const rewriter = new RequestRewriter({
    maxFrameSize: opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    headerTableSize: opts.headerTableSize ?? DEFAULT_HEADER_TABLE_SIZE,
    maxHeaderBlockBytes: opts.maxHeaderBlockBytes ?? DEFAULT_MAX_HEADER_BLOCK_BYTES,
    ...(opts.onRewrite ? { onRewrite: opts.onRewrite } : {}),
  });
  let failed = false;
  const proxy = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (socket.destroyed || !socket.writable) return cb();
      socket.write(chunk, (err) => cb(err ?? null));
    },
    final(cb) {
      if (!failed) socket.end();
      cb();
    },
    destroy(err, cb) {
      // After a protocol error the GOAWAY is still on its way: let it flush, then go.
      if (failed) setTimeout(() => socket.destroy(), GOAWAY_LINGER_MS).unref();
      else socket.destroy();
      cb(err);
    },
  });
  socket.on("data", (chunk: Buffer) => {
    if (failed) return;
    let out: Buffer[];
    try {
      out = rewriter.push(chunk);
    } catch (thrown) {
      // Whatever went wrong, only this connection ends: never the process.
      const err = thrown instanceof Http2ConnectionError ? thrown : new Http2ConnectionError(H2_INTERNAL_ERROR, `rewriting the request: ${String(thrown)}`);
      failed = true;
      opts.onProtocolError?.(err);
      socket.end(goawayFrame(0, err.h2Code));
      proxy.destroy();
      return;
    }
    let more = true;
    for (const b of out) more = proxy.push(b);
    if (!more) socket.pause();
  });
  socket.on("end", () => proxy.push(null));
  socket.on("error", (err) => proxy.destroy(err));
  socket.on("close", () => proxy.destroy());
  server.emit("connection", proxy);
}
