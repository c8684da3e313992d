import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PassThrough, Writable } from "node:stream";
import { ContainerStdio, TeeLogWriter, stdinFifoPath } from "./container-stdio.js";
import { openFifoReader } from "../runtime/fifo.js";
import { isAlreadyExists } from "../errors.js";

const collect = (s: PassThrough) => {
  const chunks: Buffer[] = [];
  s.on("data", (b: Buffer) => chunks.push(b));
  return () => Buffer.concat(chunks).toString();
};

test("publish fans out per stream to every subscriber; unsubscribed ones get nothing more", async () => {
  const io = await ContainerStdio.open();
  assert.equal(io.hasStdin, false);
  const a = { stdout: new PassThrough(), stderr: new PassThrough() };
  const b = { stdout: new PassThrough() };
  const [aOut, aErr, bOut] = [collect(a.stdout), collect(a.stderr), collect(b.stdout)];
  io.subscribe(a);
  const sb = io.subscribe(b);
  io.publish("stdout", Buffer.from("one "));
  io.publish("stderr", Buffer.from("oops"));
  sb.unsubscribe();
  io.publish("stdout", Buffer.from("two"));
  await new Promise((r) => setImmediate(r));
  assert.equal(aOut(), "one two");
  assert.equal(aErr(), "oops");
  assert.equal(bOut(), "one ");
  await io.close();
});

test("a slow subscriber misses chunks instead of blocking the others", async () => {
  const io = await ContainerStdio.open();
  // Never consumes: its buffer only grows.
  const stuck = new Writable({ highWaterMark: 4, write: () => {} });
  const fast = new PassThrough();
  const fastOut = collect(fast);
  const slow = io.subscribe({ stdout: stuck, maxBufferedBytes: 10 });
  const ok = io.subscribe({ stdout: fast });
  for (let i = 0; i < 5; i++) io.publish("stdout", Buffer.from("12345"));
  await new Promise((r) => setImmediate(r));
  assert.equal(fastOut(), "12345".repeat(5));
  assert.equal(ok.dropped, 0);
  // The first write is taken by the stream; the next chunks queue up to the 10-byte bound.
  assert.ok(slow.dropped >= 2 && slow.dropped <= 3, `dropped ${slow.dropped}`);
  await io.close();
});

test("ended resolves for subscribers when the output ends", async () => {
  const io = await ContainerStdio.open();
  const sub = io.subscribe({ stdout: new PassThrough() });
  let ended = false;
  void sub.ended.then(() => (ended = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(ended, false);
  io.outputEnded();
  await sub.ended;
  assert.equal(ended, true);
});

test("the stdin FIFO: written through, EOF for the reader only on closeStdin, stdin_once claimed once", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-stdio-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const p = stdinFifoPath(dir, "c1");
  assert.equal(p, path.join(dir, "c1-stdin"));
  const io = await ContainerStdio.open({ stdinFifo: p });
  assert.ok((await stat(p)).isFIFO());
  assert.ok(io.hasStdin && io.stdinOpen);
  // The shim's side: a non-blocking reader opened after the daemon's writer.
  const reader = await openFifoReader(p);
  let got = "";
  const eof = new Promise<void>((resolve) => {
    reader.on("data", (b: Buffer) => (got += b.toString()));
    reader.on("end", () => resolve());
  });
  assert.equal(io.writeStdin(Buffer.from("hello ")), true);
  io.writeStdin(Buffer.from("world"));
  await io.drainStdin();
  assert.equal(io.claimStdinOnce(), true);
  assert.equal(io.claimStdinOnce(), false);
  await io.closeStdin();
  assert.equal(io.stdinOpen, false);
  await eof;
  assert.equal(got, "hello world");
  // After the close, input is dropped rather than failing the attacher.
  assert.equal(io.writeStdin(Buffer.from("late")), true);
  reader.destroy();
  await io.close();
});

test("open refuses a stdin path that is not a FIFO", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-stdio-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const p = path.join(dir, "c1-stdin");
  await writeFile(p, "");
  await assert.rejects(ContainerStdio.open({ stdinFifo: p }), (e: Error) => isAlreadyExists(e) && e.message.includes(p));
});

test("TeeLogWriter logs every chunk and hands it to the attachers", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-stdio-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const io = await ContainerStdio.open();
  const out = new PassThrough();
  const text = collect(out);
  io.subscribe({ stdout: out });
  const log = path.join(dir, "c.log");
  const w = new TeeLogWriter(log, io);
  await w.open();
  await w.write("stdout", Buffer.from("line 1\n"));
  await w.close();
  assert.equal(text(), "line 1\n");
  assert.match(await readFile(log, "utf8"), /^\S+ stdout F line 1\n$/);
  await io.close();
});
