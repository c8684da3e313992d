import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenStore } from "./tokens.js";
import type { StreamingRequest } from "./types.js";

const req: StreamingRequest = { kind: "exec", containerId: "c1", cmd: ["ls"], tty: false, stdin: false, stdout: true, stderr: true };

test("a token is URL-safe, long enough and unique", () => {
  const s = new TokenStore();
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const t = s.issue(req);
    assert.match(t, /^[A-Za-z0-9_-]{32}$/); // 24 bytes = 192 bits
    assert.ok(!seen.has(t));
    seen.add(t);
  }
});

test("a token is consumed on first use", () => {
  const s = new TokenStore();
  const t = s.issue(req);
  assert.deepEqual(s.consume(t), req);
  assert.equal(s.consume(t), undefined);
  assert.equal(s.size, 0);
});

test("expired and made-up tokens look the same as used ones", () => {
  let now = 1000;
  const s = new TokenStore(50, () => now);
  const t = s.issue(req);
  now += 50;
  assert.equal(s.consume(t), undefined);
  assert.equal(s.consume("made-up"), undefined);
  const t2 = s.issue(req);
  now += 49;
  assert.deepEqual(s.consume(t2), req);
});

test("expired entries are swept", () => {
  let now = 0;
  const s = new TokenStore(10, () => now);
  for (let i = 0; i < 5; i++) s.issue(req);
  assert.equal(s.size, 5);
  now = 11;
  assert.equal(s.size, 0);
});
