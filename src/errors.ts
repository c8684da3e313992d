/**
 * One error taxonomy for the whole daemon, mirroring containerd's errdefs.
 *
 * Every layer throws `SkiffError` (or lets a foreign error pass, which counts as Internal).
 * Predicates follow the `cause` chain, so wrapping an error never hides its kind.
 * Mapping to gRPC / ttrpc status codes happens in `codeToGrpc` / `grpcToCode` only.
 */

export const ErrorCode = {
  Unknown: "unknown",
  InvalidArgument: "invalid_argument",
  NotFound: "not_found",
  AlreadyExists: "already_exists",
  FailedPrecondition: "failed_precondition",
  Unavailable: "unavailable",
  DeadlineExceeded: "deadline_exceeded",
  Canceled: "canceled",
  Unimplemented: "unimplemented",
  ResourceExhausted: "resource_exhausted",
  Internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class SkiffError extends Error {
  override name = "SkiffError";
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Walks `err` and its `cause` chain; returns the first SkiffError code found. */
export function codeOf(err: unknown): ErrorCode {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur !== undefined && cur !== null && !seen.has(cur)) {
    seen.add(cur);
    if (cur instanceof SkiffError) return cur.code;
    if (cur instanceof Error && cur.name === "AbortError") {
      const reason = (cur as Error & { cause?: unknown }).cause;
      if (reason instanceof SkiffError) return reason.code;
      return ErrorCode.Canceled;
    }
    if (cur instanceof Error && cur.name === "TimeoutError") return ErrorCode.DeadlineExceeded;
    cur = cur instanceof Error ? (cur as Error & { cause?: unknown }).cause : undefined;
  }
  return err === undefined || err === null ? ErrorCode.Unknown : ErrorCode.Internal;
}

export const isNotFound = (err: unknown) => codeOf(err) === ErrorCode.NotFound;
export const isAlreadyExists = (err: unknown) => codeOf(err) === ErrorCode.AlreadyExists;
export const isInvalidArgument = (err: unknown) => codeOf(err) === ErrorCode.InvalidArgument;
export const isFailedPrecondition = (err: unknown) => codeOf(err) === ErrorCode.FailedPrecondition;
export const isUnavailable = (err: unknown) => codeOf(err) === ErrorCode.Unavailable;
export const isDeadlineExceeded = (err: unknown) => codeOf(err) === ErrorCode.DeadlineExceeded;
export const isCanceled = (err: unknown) => codeOf(err) === ErrorCode.Canceled;
export const isUnimplemented = (err: unknown) => codeOf(err) === ErrorCode.Unimplemented;

export const notFound = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.NotFound, msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.AlreadyExists, msg, { cause });
export const invalidArgument = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.InvalidArgument, msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown) =>
  new SkiffError(ErrorCode.FailedPrecondition, msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.Unavailable, msg, { cause });
export const deadlineExceeded = (msg: string, cause?: unknown) =>
  new SkiffError(ErrorCode.DeadlineExceeded, msg, { cause });
export const canceled = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.Canceled, msg, { cause });
export const unimplemented = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.Unimplemented, msg, { cause });
export const internal = (msg: string, cause?: unknown) => new SkiffError(ErrorCode.Internal, msg, { cause });

/** gRPC / ttrpc numeric status codes (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

export function codeToGrpc(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.Unknown:
      return GrpcCode.Unknown;
    case ErrorCode.InvalidArgument:
      return GrpcCode.InvalidArgument;
    case ErrorCode.NotFound:
      return GrpcCode.NotFound;
    case ErrorCode.AlreadyExists:
      return GrpcCode.AlreadyExists;
    case ErrorCode.FailedPrecondition:
      return GrpcCode.FailedPrecondition;
    case ErrorCode.Unavailable:
      return GrpcCode.Unavailable;
    case ErrorCode.DeadlineExceeded:
      return GrpcCode.DeadlineExceeded;
    case ErrorCode.Canceled:
      return GrpcCode.Canceled;
    case ErrorCode.Unimplemented:
      return GrpcCode.Unimplemented;
    case ErrorCode.ResourceExhausted:
      return GrpcCode.ResourceExhausted;
    case ErrorCode.Internal:
      return GrpcCode.Internal;
    default: {
      const never: never = code;
      return never;
    }
  }
}

export function grpcToCode(grpc: number): ErrorCode {
  switch (grpc) {
    case GrpcCode.Canceled:
      return ErrorCode.Canceled;
    case GrpcCode.InvalidArgument:
    case GrpcCode.OutOfRange:
      return ErrorCode.InvalidArgument;
    case GrpcCode.DeadlineExceeded:
      return ErrorCode.DeadlineExceeded;
    case GrpcCode.NotFound:
      return ErrorCode.NotFound;
    case GrpcCode.AlreadyExists:
      return ErrorCode.AlreadyExists;
    case GrpcCode.FailedPrecondition:
    case GrpcCode.Aborted:
      return ErrorCode.FailedPrecondition;
    case GrpcCode.ResourceExhausted:
      return ErrorCode.ResourceExhausted;
    case GrpcCode.Unimplemented:
      return ErrorCode.Unimplemented;
    case GrpcCode.Unavailable:
      return ErrorCode.Unavailable;
    case GrpcCode.Internal:
    case GrpcCode.DataLoss:
      return ErrorCode.Internal;
    default:
      return ErrorCode.Unknown;
  }
}

/** Converts anything thrown to a SkiffError, keeping the original as `cause`. */
export function toSkiffError(err: unknown): SkiffError {
  if (err instanceof SkiffError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new SkiffError(codeOf(err), msg, { cause: err });
}
