import { test } from "node:test";
import assert from "node:assert/strict";
import { notFound } from "../errors.js";
import { commandStatus, encodeStatusJson, encodeStatusText, formatCommand } from "./status.js";

test("exit code 0 and an attach without code are Success", () => {
  assert.equal(encodeStatusJson(commandStatus({ exitCode: 0 }, undefined, "[true]")).toString(), '{"metadata":{},"status":"Success"}');
  assert.deepEqual(commandStatus({}, undefined, "attach c1"), { metadata: {}, status: "Success" });
  assert.equal(encodeStatusText(commandStatus({ exitCode: 0 }, undefined, "x")).length, 0);
});

test("a non-zero exit code is NonZeroExitCode with an ExitCode cause, in Go's field order", () => {
  const s = commandStatus({ exitCode: 7 }, undefined, formatCommand(["sh", "-c", "exit 7"]));
  assert.equal(
    encodeStatusJson(s).toString(),
    '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7",' +
      '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
  );
  assert.equal(encodeStatusText(s).toString(), s.message);
});

test("a backend error is an InternalError naming the object", () => {
  const s = commandStatus(undefined, notFound(`container "abc" not found`), "[ls]");
  assert.equal(s.status, "Failure");
  assert.equal(s.reason, "InternalError");
  assert.equal(s.code, 500);
  assert.match(s.message!, /^Internal error occurred: error executing command in container: container "abc" not found$/);
});
