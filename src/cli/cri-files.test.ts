import { test } from "node:test";
import assert from "node:assert/strict";
import { ContainerConfigSchema, PodSandboxConfigSchema } from "../gen/runtime/v1/api_pb.js";
import { infoJson, messageJson, parseMessage } from "./cri-files.js";
import { isInvalidArgument } from "../errors.js";

test("pod configs in crictl's JSON (snake_case) and in YAML (camelCase) read the same", () => {
  const json = parseMessage(
    PodSandboxConfigSchema,
    JSON.stringify({ metadata: { name: "p", namespace: "default", uid: "u1", attempt: 1 }, log_directory: "/tmp/logs", labels: { a: "b" } }),
    "pod.json",
  );
  const yaml = parseMessage(PodSandboxConfigSchema, "metadata:\n  name: p\n  namespace: default\n  uid: u1\n  attempt: 1\nlogDirectory: /tmp/logs\nlabels:\n  a: b\n", "pod.yaml");
  assert.equal(json.logDirectory, "/tmp/logs");
  assert.equal(json.metadata?.attempt, 1);
  assert.deepEqual(messageJson(PodSandboxConfigSchema, json), messageJson(PodSandboxConfigSchema, yaml));
});

test("a container config with a command, args and envs", () => {
  const c = parseMessage(
    ContainerConfigSchema,
    '{"metadata":{"name":"c"},"image":{"image":"busybox"},"command":["sh","-c"],"args":["echo hi"],"envs":[{"key":"A","value":"1"}],"log_path":"c.log"}',
    "ctr.json",
  );
  assert.deepEqual(c.command, ["sh", "-c"]);
  assert.equal(c.envs[0]?.value, "1");
  assert.equal(c.logPath, "c.log");
});

test("the example container config reads the same from JSON and from YAML", async () => {
  const { readFile } = await import("node:fs/promises");
  const dir = new URL("../../examples/", import.meta.url);
  const json = parseMessage(ContainerConfigSchema, await readFile(new URL("ctr.json", dir), "utf8"), "ctr.json");
  const yaml = parseMessage(ContainerConfigSchema, await readFile(new URL("ctr.yaml", dir), "utf8"), "ctr.yaml");
  assert.deepEqual(messageJson(ContainerConfigSchema, yaml), messageJson(ContainerConfigSchema, json));
  assert.equal(json.image?.image, "docker.io/library/busybox:latest");
});

test("typos and bad files are InvalidArgument naming the file", () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(() => parseMessage(PodSandboxConfigSchema, text, "pod.json"), (e: Error) => isInvalidArgument(e) && /pod\.json/.test(e.message) && re.test(e.message), text);
  bad('{"metdata": {}}', /metdata/);
  bad('{"metadata": {"attempt": "x"}}', /attempt|uint32/);
  bad("{nope", /not valid JSON/);
  bad("- a\n- b\n", /expected a runtime\.v1\.PodSandboxConfig object/);
});

test("verbose info values are parsed when they are JSON", () => {
  assert.deepEqual(infoJson({ info: '{"pid":5}', note: "plain" }), { info: { pid: 5 }, note: "plain" });
});
