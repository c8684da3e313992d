import { test } from "node:test";
import assert from "node:assert/strict";
import { parseYaml } from "./yaml.js";
import { stringifyYaml } from "./yaml-stringify.js";
import { isInvalidArgument } from "../errors.js";

test("reads a crictl-style config file", () => {
  const doc = parseYaml("# comment\nruntime-endpoint: unix:///run/skiff/skiff.sock\ntimeout: 10\ndebug: false # trailing\n");
  assert.deepEqual(doc, { "runtime-endpoint": "unix:///run/skiff/skiff.sock", timeout: 10, debug: false });
});

test("reads nested mappings, sequences at the key's indent, lists of mappings and flow collections", () => {
  const text = [
    "metadata:",
    "  name: web",
    "  attempt: 0",
    "command:",
    "- sh",
    "- -c",
    "- 'echo it''s # not a comment'",
    "envs:",
    "  - key: A",
    "    value: \"1\"",
    "  - key: B",
    "    value: two words",
    "labels: {app: web, \"tier\": 'front'}",
    "args: [1, \"x\", true]",
    "empty: {}",
    "nothing:",
    "script: |",
    "  line one",
    "    indented # kept",
    "after: ~",
  ].join("\n");
  assert.deepEqual(parseYaml(text), {
    metadata: { name: "web", attempt: 0 },
    command: ["sh", "-c", "echo it's # not a comment"],
    envs: [
      { key: "A", value: "1" },
      { key: "B", value: "two words" },
    ],
    labels: { app: "web", tier: "front" },
    args: [1, "x", true],
    empty: {},
    nothing: null,
    script: "line one\n  indented # kept\n",
    after: null,
  });
});

test("rejects what the subset does not cover, naming the source and line", () => {
  for (const [text, re] of [
    ["a: 1\n  b: 2\n", /pod\.yaml: line 2: unexpected indentation/],
    ["a: 1\na: 2\n", /line 2: duplicate key "a"/],
    ["a: &x 1\n", /anchors/],
    ["\ta: 1\n", /tabs/],
    ["a: 1\n---\nb: 2\n", /one document/],
    ['a: "unterminated\n', /double-quoted/],
  ] as const) {
    assert.throws(() => parseYaml(text, "pod.yaml"), (e: Error) => isInvalidArgument(e) && re.test(e.message), text);
  }
});

test("stringify output reads back to the same value", () => {
  const v = {
    id: "abc",
    n: 3,
    ok: true,
    s: "true",
    num: "0123",
    colon: "a: b",
    empty: "",
    list: ["x", { k: "v", deep: { z: [1, 2] } }, []],
    map: { "with space": "y", nested: { none: null } },
    nil: {},
    hexId: "944fe918b7a2",
    ip: "10.252.233.3",
    bigNumber: "1795874345852000000",
    hexNumber: "0x1f",
    mode: "on",
  };
  const text = stringifyYaml(v);
  assert.deepEqual(parseYaml(text), v);
  assert.match(text, /^id: abc$/m);
  assert.match(text, /^s: "true"$/m, "a string that looks like a boolean is quoted");
  assert.match(text, /^hexId: 944fe918b7a2$/m, "ids that start with a digit stay plain");
  assert.match(text, /^bigNumber: "1795874345852000000"$/m);
  assert.match(text, /^hexNumber: "0x1f"$/m);
  assert.match(text, /^mode: "on"$/m, "YAML 1.1 booleans are quoted for other readers");
  assert.equal(stringifyYaml([]), "[]\n");
});
