/**
 * The one wrapper every CRI RPC passes through: logging with ids, per-method metrics, and the
 * mapping of thrown errors to gRPC status codes. Handlers only return results or throw
 * `SkiffError`s; they never log a call or build a `ConnectError` themselves.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { ErrorCode, GrpcCode, SkiffError, codeOf, codeToGrpc, unimplemented } from "../errors.js";
import type { Logger } from "../log.js";
import { sharedSignal } from "../util/signal.js";

/** Counters per full method name ("runtime.v1.RuntimeService/Version"). */
export interface MethodCounts {
  calls: number;
  /** Calls that ended with a status other than OK. */
  errors: number;
  /** Calls per final gRPC status code name ("OK", "NotFound", …). */
  codes: Record<string, number>;
}

/**
 * In-memory RPC counters, read later by a Prometheus exporter. Single-threaded use only (the
 * event loop), so plain increments are safe.
 */
export class RpcMetrics {
  readonly #methods = new Map<string, MethodCounts>();

  record(method: string, code: Code | 0): void {
    let m = this.#methods.get(method);
    if (m === undefined) {
      m = { calls: 0, errors: 0, codes: {} };
      this.#methods.set(method, m);
    }
    m.calls++;
    if (code !== 0) m.errors++;
    const name = codeName(code);
    m.codes[name] = (m.codes[name] ?? 0) + 1;
  }

  /** Counts of one method (zeros if never called). The result is a copy. */
  get(method: string): MethodCounts {
    const m = this.#methods.get(method);
    return m === undefined ? { calls: 0, errors: 0, codes: {} } : { ...m, codes: { ...m.codes } };
  }

  /** A copy of every method's counts. */
  snapshot(): Record<string, MethodCounts> {
    const out: Record<string, MethodCounts> = {};
    for (const name of this.#methods.keys()) out[name] = this.get(name);
    return out;
  }
}

function codeName(code: Code | 0): string {
  return code === 0 ? "OK" : (Code[code] ?? String(code));
}

/**
 * Maps anything a handler threw to the ConnectError sent to the client. This is the only place
 * where errors become gRPC codes: a SkiffError anywhere in the `cause` chain (and aborts /
 * timeouts, which `codeOf` recognises) keeps its code; anything else is Internal. The message is
 * the thrown error's own message.
 */
export function toConnectError(err: unknown): ConnectError {
  let code = codeOf(err);
  if (code === ErrorCode.Unknown && !(err instanceof SkiffError)) code = ErrorCode.Internal;
  const grpc = codeToGrpc(code);
  const full = err instanceof Error ? err.message : String(err);
  // Messages echo request strings; a long one, percent-encoded, would not fit the grpc-message
  // trailer in one HTTP/2 frame and the client would see a reset instead of the status.
  // Head and tail are kept: the tail usually says what was wrong.
  const message =
    full.length > MAX_MESSAGE_CHARS ? `${full.slice(0, MAX_MESSAGE_CHARS / 2)}…${full.slice(-MAX_MESSAGE_CHARS / 4)}` : full;
  // Code's numeric values are the gRPC status numbers.
  return new ConnectError(message, grpc === GrpcCode.OK ? Code.Internal : (grpc as Code), undefined, undefined, err);
}

/** Longest status message sent (characters before percent-encoding, which can grow them 9×). */
export const MAX_MESSAGE_CHARS = 1024;

/** Longest id value logged; requests can carry multi-MiB strings. */
const MAX_ID_LOG = 256;

/** The ids worth a log field: pod sandbox, container and image reference, when present. */
export function requestIds(req: unknown): Record<string, string> {
  const ids: Record<string, string> = {};
  if (typeof req !== "object" || req === null) return ids;
  const r = req as { podSandboxId?: unknown; containerId?: unknown; image?: unknown };
  if (typeof r.podSandboxId === "string" && r.podSandboxId !== "") ids.pod_sandbox_id = clip(r.podSandboxId);
  if (typeof r.containerId === "string" && r.containerId !== "") ids.container_id = clip(r.containerId);
  const image = r.image as { image?: unknown } | undefined;
  if (typeof image === "object" && image !== null && typeof image.image === "string" && image.image !== "") {
    ids.image = clip(image.image);
  }
  return ids;
}

function clip(s: string): string {
  return s.length <= MAX_ID_LOG ? s : `${s.slice(0, MAX_ID_LOG)}…(${s.length} chars)`;
}

export interface InstrumentOptions {
  log: Logger;
  metrics: RpcMetrics;
}

type AnyHandler = (req: unknown, ctx: HandlerContext) => unknown;

/**
 * Returns a complete implementation of `service`: every method of the descriptor, wrapped.
 * Methods missing from `impl` throw Unimplemented naming the RPC (through the same wrapper, so
 * they are logged and counted too). Unary and server-streaming methods are supported; the CRI
 * has no client or bidi streams.
 */
export function instrumentService(
  service: DescService,
  impl: Record<string, unknown>,
  opts: InstrumentOptions,
): Record<string, AnyHandler> {
  const out: Record<string, AnyHandler> = {};
  for (const method of service.methods) {
    const given = impl[method.localName];
    const handler: AnyHandler =
      typeof given === "function"
        ? (given as AnyHandler).bind(impl)
        : () => {
            // "." not "/": grpc-js clients show a percent-encoded "/" (%2F) in status details.
            throw unimplemented(`${method.parent.typeName}.${method.name} is not implemented`);
          };
    const kind = method.methodKind;
    switch (kind) {
      case "unary":
        out[method.localName] = wrapUnary(method, handler, opts);
        break;
      case "server_streaming":
        out[method.localName] = wrapServerStream(method, handler, opts);
        break;
      case "client_streaming":
      case "bidi_streaming":
        throw new Error(`instrument: ${kind} method ${method.name} is not supported`);
      default: {
        const never: never = kind;
        throw new Error(`instrument: unknown method kind ${String(never)}`);
      }
    }
  }
  return out;
}

function fullName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** Logs and counts one finished call; returns the error to send (undefined when OK). */
function finish(method: DescMethod, req: unknown, start: bigint, err: unknown, ok: boolean, opts: InstrumentOptions) {
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const name = fullName(method);
  const fields = { method: name, ...requestIds(req), duration_ms: Math.round(ms * 1000) / 1000 };
  if (ok) {
    opts.metrics.record(name, 0);
    opts.log.debug({ ...fields, code: "OK" }, "cri call");
    return undefined;
  }
  const cerr = toConnectError(err);
  opts.metrics.record(name, cerr.code);
  opts.log.warn({ ...fields, code: Code[cerr.code], err: cerr.rawMessage }, "cri call failed");
  return cerr;
}

function wrapUnary(method: DescMethod, handler: AnyHandler, opts: InstrumentOptions): AnyHandler {
  return async (req, ctx) => {
    // A call's signal reaches every step it fans out to (e.g. one kill per container of a pod).
    sharedSignal(ctx.signal);
    const start = process.hrtime.bigint();
    let res: unknown;
    try {
      res = await handler(req, ctx);
    } catch (err) {
      throw finish(method, req, start, err, false, opts);
    }
    finish(method, req, start, undefined, true, opts);
    return res;
  };
}

function wrapServerStream(method: DescMethod, handler: AnyHandler, opts: InstrumentOptions): AnyHandler {
  return async function* (req, ctx) {
    const start = process.hrtime.bigint();
    let done = false;
    try {
      yield* handler(req, ctx) as AsyncIterable<unknown>;
      done = true;
      finish(method, req, start, undefined, true, opts);
    } catch (err) {
      done = true;
      throw finish(method, req, start, err, false, opts);
    } finally {
      // Reached without `done` when the client went away and connect returned the generator.
      if (!done) finish(method, req, start, ctx.signal.reason ?? new DOMException("stream closed", "AbortError"), false, opts);
    }
  };
}
