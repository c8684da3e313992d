import { test } from "node:test";
import assert from "node:assert/strict";
import { ResizeQueue, splitJsonObjects, toTerminalSize } from "./resize.js";

test("splits concatenated JSON objects, keeping a partial tail", () => {
  const r = splitJsonObjects('{"Width":1,"Height":2}\n{"Width":3,"He');
  assert.deepEqual(r.objects, ['{"Width":1,"Height":2}']);
  assert.equal(r.rest, '{"Width":3,"He');
  assert.deepEqual(splitJsonObjects('{"a":"}{"}{"b":1}').objects, ['{"a":"}{"}', '{"b":1}']);
});

test("only integer Width/Height in range make a size", () => {
  assert.deepEqual(toTerminalSize('{"Width":80,"Height":24}'), { width: 80, height: 24 });
  assert.equal(toTerminalSize('{"Width":"80","Height":24}'), undefined);
  assert.equal(toTerminalSize('{"Width":-1,"Height":24}'), undefined);
  assert.equal(toTerminalSize("{oops}"), undefined);
});

test("the queue yields sizes across chunk boundaries and ends on end()", async () => {
  const q = new ResizeQueue();
  q.write(Buffer.from('{"Width":10,'));
  q.write(Buffer.from('"Height":20}{"Width":30,"Height":40}'));
  q.write(Buffer.from('{"bogus":1}'));
  setTimeout(() => q.end(), 10);
  const got = [];
  for await (const s of q) got.push(s);
  assert.deepEqual(got, [{ width: 10, height: 20 }, { width: 30, height: 40 }]);
});
