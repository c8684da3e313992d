import { test } from "node:test";
import assert from "node:assert/strict";
import type { CommandRequest } from "./command-run.js";
import { expectedStreamTypes, supportsResize, usesJsonStatus } from "./remotecommand.js";
import { decodeChannelMessage, encodeChannelMessage } from "./remotecommand-ws.js";

const req = (o: { stdin?: boolean; tty?: boolean; stderr?: boolean }): CommandRequest => ({
  kind: "exec",
  containerId: "c",
  cmd: ["sh"],
  stdin: o.stdin ?? false,
  stdout: true,
  stderr: o.stderr ?? true,
  tty: o.tty ?? false,
});

test("the expected SPDY streams follow the request and the version", () => {
  assert.deepEqual(expectedStreamTypes(req({}), "v4.channel.k8s.io").sort(), ["error", "stderr", "stdout"]);
  assert.deepEqual(expectedStreamTypes(req({ stdin: true, tty: true }), "v4.channel.k8s.io").sort(), ["error", "resize", "stdin", "stdout"]);
  assert.deepEqual(expectedStreamTypes(req({ stdin: true, tty: true }), "v2.channel.k8s.io").sort(), ["error", "stdin", "stdout"]);
  assert.ok(supportsResize("v3.channel.k8s.io") && !supportsResize("channel.k8s.io"));
  assert.ok(usesJsonStatus("v4.channel.k8s.io") && !usesJsonStatus("v3.channel.k8s.io"));
});

test("WebSocket channel messages: binary with a channel byte, base64 with an ASCII digit", () => {
  assert.deepEqual(encodeChannelMessage("v4.channel.k8s.io", 1, Buffer.from("hi")), { data: Buffer.from([1, 0x68, 0x69]), binary: true });
  assert.deepEqual(encodeChannelMessage("v4.base64.channel.k8s.io", 2, Buffer.from("hi")), { data: Buffer.from("2aGk="), binary: false });
  assert.deepEqual(decodeChannelMessage("base64.channel.k8s.io", Buffer.from("0aGk=")), { channel: 0, data: Buffer.from("hi") });
  assert.deepEqual(decodeChannelMessage("v5.channel.k8s.io", Buffer.from([255, 0])), { channel: 255, data: Buffer.from([0]) });
  assert.equal(decodeChannelMessage("v5.channel.k8s.io", Buffer.alloc(0)), undefined);
});
