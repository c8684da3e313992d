/**
 * The Kubernetes port-forward protocol, over SPDY/3.1 (portforward.k8s.io) and WebSocket.
 *
 * SPDY: for every forwarded connection the client opens two streams sharing a `requestid`
 * header: `streamtype: error` and `streamtype: data`, each with a `port` header. Once both are
 * there the data stream is handed to the backend; a failure is written as text on the error
 * stream. Clients too old to send `requestid` are paired by stream id (data = error + 2), as
 * kubelet does.
 * WebSocket: the ports come from the query (`port` or `ports`, comma-separated allowed); port i
 * gets channels 2i (data) and 2i+1 (error), and the server first sends the port, 2 bytes
 * little-endian, on both. One connection per port per WebSocket.
 * The stored request's port list, when not empty, limits which ports may be asked for.
 */
import { Duplex } from "node:stream";
import type { Logger } from "../log.js";
import { type StreamInbox } from "./remotecommand.js";
import { encodeChannelMessage, decodeChannelMessage } from "./remotecommand-ws.js";
import { RstStatus } from "./spdy/frames.js";
import type { SpdySession } from "./spdy/session.js";
import type { SpdyStream } from "./spdy/stream.js";
import type { StreamingBackend, StreamingRequest } from "./types.js";
import type { WsConnection } from "./ws/connection.js";
import { sharedSignal } from "../util/signal.js";

export const PORTFORWARD_SPDY_PROTOCOLS = ["portforward.k8s.io"] as const;
export const PORTFORWARD_WS_PROTOCOLS = ["portforward.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"] as const;

export type PortForwardRequest = Extract<StreamingRequest, { kind: "portforward" }>;

export interface PortForwardOptions {
  backend: StreamingBackend;
  req: PortForwardRequest;
  /** How long the second stream of a pair may lag behind the first. */
  streamCreationTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** Parses and checks a port; returns an error message or the port. */
export function checkPort(raw: string | undefined, allowed: number[]): number | string {
  if (raw === undefined || raw === "") return "port header is required";
  if (!/^\d+$/.test(raw)) return `invalid port "${raw}"`;
  const port = Number(raw);
  if (port < 1 || port > 65535) return `invalid port ${raw}: must be between 1 and 65535`;
  if (allowed.length > 0 && !allowed.includes(port)) return `port ${port} was not requested for this pod`;
  return port;
}

/** Parses the WebSocket query's ports; returns an error message or the list. */
export function queryPorts(url: URL, allowed: number[]): number[] | string {
  const raw = [...url.searchParams.getAll("port"), ...url.searchParams.getAll("ports")].flatMap((s) => s.split(","));
  if (raw.length === 0) return allowed.length > 0 ? allowed : "query parameter \"port\" is required";
  const out: number[] = [];
  for (const r of raw) {
    const p = checkPort(r.trim(), allowed);
    if (typeof p === "string") return p;
    out.push(p);
  }
  return out;
}

interface Pair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

async function forwardPair(p: Required<Omit<Pair, "timer">>, o: PortForwardOptions, signal: AbortSignal): Promise<void> {
  const port = checkPort(p.data.header("port"), o.req.ports);
  try {
    if (typeof port === "string") throw new Error(port);
    await o.backend.portForward(o.req.podId, port, p.data, signal);
    p.error.end();
  } catch (err) {
    const msg = `error forwarding port ${String(port)} to pod ${o.req.podId}: ${err instanceof Error ? err.message : String(err)}`;
    o.log.info({ podId: o.req.podId, port }, msg);
    if (!p.error.destroyed) p.error.end(msg);
  } finally {
    if (!p.data.destroyed && !p.data.writableEnded) p.data.end();
  }
}

/** Serves one SPDY port-forward session; resolves when the client has gone and all pairs ended. */
export async function serveSpdyPortForward(session: SpdySession, streams: StreamInbox, o: PortForwardOptions): Promise<void> {
  const ac = new AbortController();
  // One listener per forwarded connection: a session may carry many at once.
  const signal = sharedSignal(AbortSignal.any([ac.signal, o.signal]));
  const onClose = () => {
    ac.abort();
    streams.end();
  };
  session.once("close", onClose);
  signal.addEventListener("abort", onClose, { once: true });
  const pairs = new Map<string, Pair>();
  const running = new Set<Promise<void>>();
  try {
    for await (const s of streams) {
      const type = (s.header("streamtype") ?? "").toLowerCase();
      if (type !== "data" && type !== "error") {
        s.reset(RstStatus.ProtocolError);
        continue;
      }
      void s.reply().catch(() => undefined);
      let id = s.header("requestid");
      if (id === undefined || id === "") id = String(type === "error" ? s.id : s.id - 2);
      let pair = pairs.get(id);
      if (!pair) {
        const key = id;
        pair = {
          timer: setTimeout(() => {
            const p = pairs.get(key);
            pairs.delete(key);
            if (p?.error) p.error.end(`timed out waiting for the data stream of request ${key}`);
            p?.data?.reset(RstStatus.Cancel);
          }, o.streamCreationTimeoutMs),
        };
        pairs.set(id, pair);
      }
      if (pair[type]) {
        s.reset(RstStatus.ProtocolError);
        continue;
      }
      pair[type] = s;
      if (type === "error") s.resume();
      if (pair.data && pair.error) {
        clearTimeout(pair.timer);
        pairs.delete(id);
        const run = forwardPair({ data: pair.data, error: pair.error }, o, signal);
        running.add(run);
        void run.finally(() => running.delete(run));
      }
    }
  } finally {
    for (const p of pairs.values()) clearTimeout(p.timer);
    session.off("close", onClose);
    signal.removeEventListener("abort", onClose);
    ac.abort();
    await Promise.allSettled([...running]);
    await session.close();
  }
}

/** Serves one WebSocket port-forward; resolves when every port's connection is done. */
export async function serveWsPortForward(ws: WsConnection, ports: number[], o: PortForwardOptions): Promise<void> {
  const ac = new AbortController();
  const signal = sharedSignal(AbortSignal.any([ac.signal, o.signal]));
  const send = (ch: number, data: Buffer) => {
    const m = encodeChannelMessage(ws.protocol || "v4.channel.k8s.io", ch, data);
    return ws.send(m.data, m.binary);
  };
  const conns = ports.map(
    (_port, i) =>
      new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          send(2 * i, chunk).then(() => cb(), cb);
        },
      }),
  );
  const onClose = () => {
    ac.abort();
    for (const c of conns) c.push(null);
  };
  ws.once("close", onClose);
  ws.on("message", (msg: Buffer) => {
    const m = decodeChannelMessage(ws.protocol || "v4.channel.k8s.io", msg);
    if (!m || m.channel % 2 !== 0) return;
    conns[m.channel / 2]?.push(m.data);
  });
  try {
    await Promise.all(
      ports.map(async (port, i) => {
        const le = Buffer.alloc(2);
        le.writeUInt16LE(port);
        await send(2 * i, le);
        await send(2 * i + 1, le);
        try {
          await o.backend.portForward(o.req.podId, port, conns[i]!, signal);
        } catch (err) {
          const msg = `error forwarding port ${port} to pod ${o.req.podId}: ${err instanceof Error ? err.message : String(err)}`;
          if (!signal.aborted) await send(2 * i + 1, Buffer.from(msg));
        }
      }),
    );
  } finally {
    ws.off("close", onClose);
    onClose();
    await ws.close(1000);
  }
}
