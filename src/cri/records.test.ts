import { test } from "node:test";
import assert from "node:assert/strict";
import { containerNameKey, rfc3339ToNs, sandboxNameKey, type SandboxRecord } from "./records.js";

test("name keys follow containerd's reservation names", () => {
  const m = { name: "web", namespace: "default", uid: "u-1", attempt: 2 };
  assert.equal(sandboxNameKey(m), "web_default_u-1_2");
  assert.equal(containerNameKey("nginx", 1, m as SandboxRecord), "nginx_web_default_u-1_1");
});

test("rfc3339ToNs keeps nanoseconds exactly", () => {
  assert.equal(rfc3339ToNs("2026-11-28T02:59:22.334272655Z"), "1795834762334272655");
  assert.equal(rfc3339ToNs("2026-11-28T02:59:22Z"), "1795834762000000000");
  assert.equal(rfc3339ToNs("2026-11-28T02:59:22.5Z"), "1795834762500000000");
});
