import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEndpoint, parseTimeout, resolveSettings, parseCliConfig, DEFAULT_TIMEOUT_MS } from "./settings.js";
import { isInvalidArgument } from "../errors.js";

test("endpoints: unix URLs and bare paths; other schemes refused", () => {
  assert.equal(parseEndpoint("unix:///run/skiff/skiff.sock"), "/run/skiff/skiff.sock");
  assert.equal(parseEndpoint("unix:/tmp/a.sock"), "/tmp/a.sock");
  assert.equal(parseEndpoint("/tmp/b.sock"), "/tmp/b.sock");
  assert.throws(() => parseEndpoint("tcp://127.0.0.1:1234"), (e: Error) => isInvalidArgument(e) && /only unix/.test(e.message));
  assert.throws(() => parseEndpoint("unix://relative.sock"), /absolute/);
});

test("timeouts: crictl durations and bare seconds", () => {
  assert.equal(parseTimeout("10s"), 10_000);
  assert.equal(parseTimeout("2m"), 120_000);
  assert.equal(parseTimeout("500ms"), 500);
  assert.equal(parseTimeout("3"), 3000);
  assert.equal(parseTimeout(4), 4000);
  assert.throws(() => parseTimeout("soon"), (e: Error) => isInvalidArgument(e) && /soon/.test(e.message));
  assert.throws(() => parseTimeout("0s"), /not a duration/);
});

test("config file: crictl keys, unknown keys named with the file", () => {
  assert.deepEqual(parseCliConfig("runtime-endpoint: unix:///x.sock\ntimeout: 5\ndebug: true\n", "f.yaml"), {
    runtimeEndpoint: "unix:///x.sock",
    timeoutMs: 5000,
    debug: true,
  });
  assert.throws(() => parseCliConfig("runtime_endpoint: x\n", "f.yaml"), (e: Error) => isInvalidArgument(e) && /f\.yaml: unknown key "runtime_endpoint"/.test(e.message));
  assert.throws(() => parseCliConfig("debug: yes-please\n", "f.yaml"), /debug must be true or false/);
});

test("precedence: flag, then environment, then config file, then default", async () => {
  const file = "runtime-endpoint: unix:///from/config.sock\ntimeout: 7s\n";
  const read = async () => file;
  const s1 = await resolveSettings({ flags: {}, env: {}, readFile: read });
  assert.equal(s1.runtimeSocket, "/from/config.sock");
  assert.equal(s1.imageSocket, "/from/config.sock", "the image service defaults to the runtime endpoint");
  assert.equal(s1.timeoutMs, 7000);
  const s2 = await resolveSettings({ flags: {}, env: { CONTAINER_RUNTIME_ENDPOINT: "unix:///from/env.sock" }, readFile: read });
  assert.equal(s2.runtimeSocket, "/from/env.sock");
  const s3 = await resolveSettings({
    flags: { runtimeEndpoint: "/from/flag.sock", timeout: "1s" },
    env: { CONTAINER_RUNTIME_ENDPOINT: "unix:///from/env.sock" },
    readFile: read,
  });
  assert.equal(s3.runtimeSocket, "/from/flag.sock");
  assert.equal(s3.timeoutMs, 1000);
  const s4 = await resolveSettings({ flags: {}, env: {}, readFile: async () => undefined });
  assert.equal(s4.runtimeSocket, "/run/skiff/skiff.sock");
  assert.equal(s4.timeoutMs, DEFAULT_TIMEOUT_MS);
  const none = await resolveSettings({ flags: {}, env: { SKIFF_CLI_CONFIG: "" }, readFile: async () => assert.fail("no file is read") });
  assert.equal(none.runtimeSocket, "/run/skiff/skiff.sock");
  await assert.rejects(resolveSettings({ flags: { config: "/nope.yaml" }, env: {}, readFile: async () => undefined }), /config file \/nope\.yaml does not exist/);
});
