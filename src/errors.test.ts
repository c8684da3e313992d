import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, GrpcCode, codeOf, codeToGrpc, grpcToCode, isNotFound, notFound, toSkiffError } from "./errors.js";

test("predicates follow the cause chain", () => {
  const inner = notFound('task "x" not found');
  const outer = new Error("wrapped", { cause: new Error("middle", { cause: inner }) });
  assert.equal(isNotFound(outer), true);
  assert.equal(codeOf(new Error("plain")), ErrorCode.Internal);
  assert.equal(codeOf(undefined), ErrorCode.Unknown);
});

test("timeouts and aborts map to DeadlineExceeded and Canceled", () => {
  const timeout = AbortSignal.timeout(0);
  assert.equal(codeOf(new DOMException("t", "TimeoutError")), ErrorCode.DeadlineExceeded);
  assert.equal(codeOf(new DOMException("a", "AbortError")), ErrorCode.Canceled);
  void timeout;
});

test("every code round-trips through its gRPC number", () => {
  for (const code of Object.values(ErrorCode)) {
    if (code === ErrorCode.Unknown) continue;
    assert.equal(grpcToCode(codeToGrpc(code)), code, code);
  }
  assert.equal(grpcToCode(GrpcCode.Unauthenticated), ErrorCode.Unknown);
  assert.equal(toSkiffError(new Error("boom")).code, ErrorCode.Internal);
});
