import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { ContainerState } from "../gen/runtime/v1/api_pb.js";
import { CliContext, intFlag, parseContainerState, resolvePrefix } from "./context.js";
import { isInvalidArgument } from "../errors.js";

test("ids: exact, unique prefix, unknown passed on, ambiguous refused", () => {
  const all = ["abc123", "abd456", "ff00"];
  assert.equal(resolvePrefix("abc123", all, "container"), "abc123");
  assert.equal(resolvePrefix("abc", all, "container"), "abc123");
  assert.equal(resolvePrefix("zz", all, "container"), "zz", "the runtime answers NotFound for it");
  assert.throws(() => resolvePrefix("ab", all, "container"), (e: Error) => isInvalidArgument(e) && /prefix "ab" is ambiguous: it matches 2 containers/.test(e.message));
  assert.throws(() => resolvePrefix("", all, "pod sandbox"), /pod sandbox id must not be empty/);
});

test("states and integer flags", () => {
  assert.equal(parseContainerState("running"), ContainerState.CONTAINER_RUNNING);
  assert.equal(parseContainerState("CONTAINER_EXITED"), ContainerState.CONTAINER_EXITED);
  assert.throws(() => parseContainerState("gone"), /use one of created, running, exited, unknown/);
  assert.equal(intFlag("10", "--tail"), 10);
  assert.equal(intFlag(undefined, "--tail"), undefined);
  assert.throws(() => intFlag("-1", "--tail"), /--tail: "-1" is not a non-negative integer/);
});

test("action: an error is printed as skiff: <verb>: <code>: <message> with exit code 1", async () => {
  const errs: string[] = [];
  const ctx = new CliContext(new Command(), { out: () => {}, err: (t) => void errs.push(t), isTty: false });
  const saved = process.exitCode;
  try {
    await ctx.action("ps", async () => {
      intFlag("x", "--tail");
    })();
    assert.equal(process.exitCode, 1);
  } finally {
    process.exitCode = saved;
  }
  assert.deepEqual(errs, ['skiff: ps: invalid_argument: --tail: "x" is not a non-negative integer\n']);
});
