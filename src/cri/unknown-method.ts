/**
 * The answer to a call of a method skiff does not serve, as a gRPC server gives it: HTTP 200
 * with `grpc-status: 12` (UNIMPLEMENTED) and a message naming the method, in a trailers-only
 * response. Clients probe for optional RPCs this way (containerd's version service, a CRI RPC
 * newer than skiff's proto) and treat anything else, such as a bare HTTP 404, as a broken server.
 */
import type * as http2 from "node:http2";
import { ImageService, RuntimeService } from "../gen/runtime/v1/api_pb.js";
import type { Logger } from "../log.js";

/** gRPC's UNIMPLEMENTED status code. */
export const GRPC_UNIMPLEMENTED = 12;

/** Which services this server knows, for the message: "unknown method" versus "unknown service". */
const KNOWN_SERVICES = new Set([RuntimeService.typeName, ImageService.typeName]);

/** The message for a call of `path` ("/package.Service/Method"). */
export function unknownMethodMessage(path: string): string {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return `unknown method path "${path}"`;
  const [, service, method] = m;
  return KNOWN_SERVICES.has(service!)
    ? `unknown method ${method} for service ${service}`
    : `unknown service ${service} (method ${method})`;
}

/**
 * Percent-encodes a status message as the gRPC HTTP/2 protocol requires for `grpc-message`:
 * the UTF-8 octets outside printable ASCII, and '%' itself.
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function answerUnknownMethod(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, log: Logger): void {
  const path = (req.url ?? "").split("?", 1)[0]!;
  const contentType = String(req.headers["content-type"] ?? "");
  if (!/^application\/grpc(?:$|[+;])/.test(contentType)) {
    // Not a gRPC request at all; gRPC servers answer 415 Unsupported Media Type.
    res.writeHead(415, { "content-type": "text/plain; charset=utf-8" });
    res.end(`skiff serves gRPC only; content-type "${contentType.slice(0, 100)}" is not application/grpc\n`);
    return;
  }
  const message = unknownMethodMessage(path.slice(0, 512));
  log.debug({ method: path.slice(0, 512) }, "cri: call of an unknown method");
  req.resume();
  if (req.stream.destroyed || req.stream.headersSent) return;
  req.stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(GRPC_UNIMPLEMENTED),
      "grpc-message": encodeGrpcMessage(message),
    },
    { endStream: true },
  );
}
