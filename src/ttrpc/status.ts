/**
 * ttrpc status ↔ SkiffError. The mapping between numeric codes and ErrorCode lives in
 * `src/errors.ts` (`codeToGrpc` / `grpcToCode`); this file only carries the numbers along.
 */
import { codeToGrpc, GrpcCode, grpcToCode, SkiffError } from "../errors.js";

/** A `google.protobuf.Any` as carried in `google.rpc.Status.details`, left undecoded. */
export interface AnyDetail {
  typeUrl: string;
  value: Uint8Array;
}

/** `google.rpc.Status`. Code 0 means OK. */
export interface RpcStatus {
  code: number;
  message: string;
  details: AnyDetail[];
}

/**
 * A non-OK status, received from or destined for a peer. `code` is the SkiffError mapping of
 * `grpcCode`; `grpcCode` keeps the exact number (PermissionDenied and Unknown both map to
 * ErrorCode.Unknown, for instance) so a status can be relayed unchanged.
 */
export class TtrpcStatusError extends SkiffError {
  override name = "TtrpcStatusError";
  readonly grpcCode: number;
  readonly details: AnyDetail[];
  constructor(grpcCode: number, message: string, options?: { cause?: unknown; details?: AnyDetail[] }) {
    super(grpcToCode(grpcCode), message, options);
    this.grpcCode = grpcCode;
    this.details = options?.details ?? [];
  }
}

/** The error a caller sees for a non-OK remote status. */
export function errorFromStatus(status: RpcStatus): TtrpcStatusError {
  return new TtrpcStatusError(status.code, status.message, { details: status.details });
}

/**
 * The status a server sends for a handler failure: a TtrpcStatusError keeps its number, a
 * SkiffError maps through `codeToGrpc`, anything else is Internal with its message.
 */
export function statusFromError(err: unknown): RpcStatus {
  if (err instanceof TtrpcStatusError) {
    return { code: err.grpcCode, message: err.message, details: err.details };
  }
  if (err instanceof SkiffError) return { code: codeToGrpc(err.code), message: err.message, details: [] };
  const message = err instanceof Error ? err.message : String(err);
  return { code: GrpcCode.Internal, message, details: [] };
}
