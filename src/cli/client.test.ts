import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { CriClient, describeError, errnoOf } from "./client.js";
import { invalidArgument } from "../errors.js";
import { DEFAULT_TIMEOUT_MS } from "./settings.js";

const settings = (socket: string) => ({ runtimeSocket: socket, imageSocket: socket, timeoutMs: 2000, debug: false, pullImageOnCreate: false });

test("a missing socket and a socket nobody listens on both say the daemon is not running", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const missing = path.join(dir, "none.sock");
  const c = new CriClient(settings(missing));
  t.after(() => c.close());
  const err = await c.runtime.version({ version: "v1" }, c.call()).then(
    () => assert.fail("no daemon, no answer"),
    (e: unknown) => e,
  );
  assert.equal(errnoOf(err), "ENOENT");
  assert.equal(describeError("ps", err, missing), `skiffd is not running at ${missing} — start it with \`make run\` or \`skiffd --config …\``);

  // A file left where the socket was (the daemon died): connect() is refused.
  const stale = path.join(dir, "stale.sock");
  await writeFile(stale, "");
  const c2 = new CriClient(settings(stale));
  t.after(() => c2.close());
  const err2 = await c2.runtime.version({ version: "v1" }, c2.call()).then(() => undefined, (e: unknown) => e);
  assert.equal(errnoOf(err2), "ECONNREFUSED");
  assert.match(describeError("pods", err2, stale), /^skiffd is not running at .*stale\.sock — start it with/);
});

test("gRPC statuses and local errors are printed with the verb and the code", () => {
  assert.equal(describeError("inspect", new ConnectError("container \"x\" not found", Code.NotFound), "/s"), 'inspect: NotFound: container "x" not found');
  assert.equal(describeError("runp", invalidArgument("pod.json: bad"), "/s"), "runp: invalid_argument: pod.json: bad");
  assert.ok(DEFAULT_TIMEOUT_MS > 0);
});
