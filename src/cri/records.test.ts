import { test } from "node:test";
import assert from "node:assert/strict";
import { containerNameKey, nowNs, rfc3339ToNs, sandboxNameKey, type SandboxRecord } from "./records.js";

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

test("rfc3339ToNs: other forms fall back to millisecond precision", () => {
  assert.equal(rfc3339ToNs("1970-01-01T00:00:00.000000001Z"), "1");
  assert.equal(rfc3339ToNs("2026-11-28T03:59:22.334+01:00"), "1795834762334000000");
});

test("rfc3339ToNs: a timestamp it cannot read is 'now', never an exception (exit handlers retry on throw)", () => {
  const before = BigInt(Date.now()) * 1_000_000n;
  for (const bad of ["", "garbage", "2026-13-45T99:99:99Z"]) {
    const ns = BigInt(rfc3339ToNs(bad));
    assert.ok(ns >= before && ns <= BigInt(Date.now()) * 1_000_000n, `${JSON.stringify(bad)} → ${ns}`);
  }
});

test("nowNs: the clock in nanoseconds (millisecond precision)", () => {
  const before = Date.now();
  const ns = BigInt(nowNs());
  assert.ok(ns >= BigInt(before) * 1_000_000n && ns <= BigInt(Date.now()) * 1_000_000n);
  assert.equal(ns % 1_000_000n, 0n);
});
