/**
 * The server half of the RFC 6455 opening handshake on a node:http 'upgrade' event.
 *
 * `negotiate` picks the subprotocol: the first protocol in the client's
 * Sec-WebSocket-Protocol list that the server supports (client preference wins, as in
 * Kubernetes' wsstream). `accept` writes the 101 response; `reject` writes a plain HTTP error and
 * ends the socket. Neither throws.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (section 4.2.2). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** True when the request asks for a WebSocket upgrade (as opposed to SPDY). */
export function isWebSocketRequest(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? "").toLowerCase() === "websocket";
}

/** The client's offered subprotocols, in order. */
export function offeredProtocols(req: IncomingMessage): string[] {
  const raw = req.headers["sec-websocket-protocol"];
  const all = Array.isArray(raw) ? raw.join(",") : (raw ?? "");
  return all
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/**
 * Returns the chosen subprotocol, "" when the client offered none and `allowNone`, or
 * undefined when nothing fits.
 */
export function negotiate(offered: string[], supported: readonly string[], allowNone: boolean): string | undefined {
  if (offered.length === 0) return allowNone ? "" : undefined;
  return offered.find((p) => supported.includes(p));
}

/** Validates the handshake headers; returns an error message or undefined. */
export function validateHandshake(req: IncomingMessage): string | undefined {
  if (req.method !== "GET") return "websocket handshake must be a GET";
  if (!(req.headers.connection ?? "").toLowerCase().split(/\s*,\s*/).includes("upgrade")) return "missing Connection: Upgrade";
  if (req.headers["sec-websocket-version"] !== "13") return "unsupported Sec-WebSocket-Version (want 13)";
  const key = req.headers["sec-websocket-key"];
  if (!key || Buffer.from(key, "base64").length !== 16) return "invalid Sec-WebSocket-Key";
  return undefined;
}

/** Completes the handshake with the given subprotocol ("" = no header). */
export function accept(req: IncomingMessage, socket: Duplex, protocol: string): void {
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${acceptKey(req.headers["sec-websocket-key"] ?? "")}`,
  ];
  if (protocol !== "") lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  socket.write(lines.join("\r\n") + "\r\n\r\n");
}

const REASONS: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable" };

/** Writes a plain-text HTTP error on a not-yet-upgraded socket and ends it. */
export function rejectUpgrade(socket: Duplex, status: number, body: string, extra: Record<string, string> = {}): void {
  const head = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`, "Content-Type: text/plain; charset=utf-8", `Content-Length: ${Buffer.byteLength(body)}`, "Connection: close"];
  for (const [k, v] of Object.entries(extra)) head.push(`${k}: ${v}`);
  socket.end(head.join("\r\n") + "\r\n\r\n" + body);
}
