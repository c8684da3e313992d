/**
 * The CLI's CRI client: `runtime.v1.RuntimeService` and `runtime.v1.ImageService` over gRPC on
 * HTTP/2 on the daemon's unix socket (connect-es, 16 MiB messages as kubelet allows), and the one
 * place that turns errors into the messages the CLI prints.
 *
 * The client owns its HTTP/2 sessions; `close()` ends them (idempotent) so the process can exit.
 */
import * as net from "node:net";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ImageService, RuntimeService } from "../gen/runtime/v1/api_pb.js";
import { codeOf, ErrorCode, SkiffError } from "../errors.js";
import type { CliSettings } from "./settings.js";

export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export type RuntimeClient = Client<typeof RuntimeService>;
export type ImageClient = Client<typeof ImageService>;

export class CriClient {
  readonly runtime: RuntimeClient;
  readonly image: ImageClient;
  readonly #sessions: Http2SessionManager[] = [];

  constructor(readonly settings: CliSettings) {
    this.runtime = createClient(RuntimeService, this.#transport(settings.runtimeSocket));
    this.image = createClient(ImageService, this.#transport(settings.imageSocket));
  }

  #transport(socket: string) {
    // gRPC is always HTTP/2 here. The authority is never used for routing: every connection goes to the socket.
    const baseUrl = "http://localhost";
    const sessionManager = new Http2SessionManager(baseUrl, {}, { createConnection: () => net.connect(socket) });
    this.#sessions.push(sessionManager);
    return createGrpcTransport({
      baseUrl,
      sessionManager,
      readMaxBytes: MAX_MESSAGE_BYTES,
      writeMaxBytes: MAX_MESSAGE_BYTES,
    });
  }

  /** Call options with the configured deadline, extended by `extraMs` (e.g. a stop's grace period). */
  call(extraMs = 0, signal?: AbortSignal): { timeoutMs: number; signal?: AbortSignal } {
    return { timeoutMs: this.settings.timeoutMs + extraMs, ...(signal ? { signal } : {}) };
  }

  close(): void {
    for (const s of this.#sessions.splice(0)) s.abort();
  }
}

/** The gRPC code name as Go prints it (`NotFound`, `Unimplemented`, …). */
export function grpcCodeName(code: Code): string {
  return Code[code] ?? `Code(${code})`;
}

/** The errno code (ENOENT, ECONNREFUSED, …) somewhere in `err`'s cause chain. */
export function errnoOf(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let cur: unknown = err; cur instanceof Error && !seen.has(cur); cur = (cur as Error & { cause?: unknown }).cause) {
    seen.add(cur);
    const code = (cur as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

export function isUnimplementedError(err: unknown): boolean {
  return err instanceof ConnectError ? err.code === Code.Unimplemented : codeOf(err) === ErrorCode.Unimplemented;
}

/**
 * The line the CLI prints for an error of `verb`: a missing daemon gets how to start it; a gRPC
 * status gets `<verb>: <Code>: <message>`; a local SkiffError (bad flag, bad file) its code too.
 */
export function describeError(verb: string, err: unknown, socket: string): string {
  const errno = errnoOf(err);
  if (errno === "ENOENT" || errno === "ECONNREFUSED") {
    return `skiffd is not running at ${socket} — start it with \`make run\` or \`skiffd --config …\``;
  }
  if (errno === "EACCES") return `${verb}: permission denied on ${socket} (the CRI socket is mode 0660: run as root)`;
  if (err instanceof ConnectError) return `${verb}: ${grpcCodeName(err.code)}: ${err.rawMessage}`;
  if (err instanceof SkiffError) return `${verb}: ${err.code}: ${err.message}`;
  return `${verb}: ${(err as Error)?.message ?? String(err)}`;
}
