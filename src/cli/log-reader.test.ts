import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile, appendFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { readLog, splitLines, formatRecord, parseRecords } from "./log-reader.js";
import { isNotFound } from "../errors.js";

const T1 = "2026-01-02T03:04:05.123456789Z";
const T2 = "2026-01-02T03:04:06.000000001Z";

function collector() {
  const out: string[] = [];
  return { out, sink: { write: (stream: string, text: string) => void out.push(`${stream}:${text}`) } };
}

test("records: P continues a line, F ends it; timestamps on request; junk passes through", () => {
  const recs = parseRecords([`${T1} stdout P hel`, `${T1} stdout F lo`, `${T2} stderr F oops`, "not a record"]);
  assert.deepEqual(recs.map((r) => formatRecord(r)), ["hel", "lo\n", "oops\n", "not a record\n"]);
  assert.equal(formatRecord(recs[2]!, true), `${T2} oops\n`);
  assert.equal(recs[2]!.stream, "stderr");
  assert.deepEqual(splitLines("a\nb\nc"), { lines: ["a", "b"], rest: "c" });
});

test("reads a whole file, the last N records, and never a torn last record", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-logs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "c.log");
  await writeFile(file, `${T1} stdout F one\n${T1} stderr F two\n${T2} stdout F three\n${T2} stdout F fo`);
  const all = collector();
  await readLog(file, all.sink);
  assert.deepEqual(all.out, ["stdout:one\n", "stderr:two\n", "stdout:three\n"]);
  const last = collector();
  await readLog(file, last.sink, { tail: 1, timestamps: true });
  assert.deepEqual(last.out, [`stdout:${T2} three\n`]);
  const none = collector();
  await readLog(file, none.sink, { tail: 0 });
  assert.deepEqual(none.out, []);
  await assert.rejects(readLog(path.join(dir, "missing.log"), none.sink), (e: Error) => isNotFound(e) && /missing\.log/.test(e.message));
});

test("follow: new records, a rotation (rename + new file) and the end when the writer stops", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-logs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "c.log");
  await writeFile(file, `${T1} stdout F before\n`);
  const c = collector();
  let writing = true;
  const done = readLog(file, c.sink, { follow: true, tail: 5, pollMs: 20, stillWriting: async () => writing });
  const until = async (n: number) => {
    const end = Date.now() + 5000;
    while (c.out.length < n) {
      if (Date.now() > end) assert.fail(`got ${JSON.stringify(c.out)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(1);
  await appendFile(file, `${T1} stdout P par`);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(c.out, ["stdout:before\n"], "an unfinished record is held back");
  await appendFile(file, `t\n${T1} stdout F whole\n`);
  await until(3);
  // ReopenContainerLog: the old file is renamed; the last write to it still shows, then the new file.
  await rename(file, `${file}.1`);
  await appendFile(`${file}.1`, `${T2} stdout F late-in-old\n`);
  await writeFile(file, `${T2} stderr F in-new\n`);
  await until(5);
  writing = false;
  await done;
  assert.deepEqual(c.out, ["stdout:before\n", "stdout:part", "stdout:whole\n", "stdout:late-in-old\n", "stderr:in-new\n"]);
});

test("follow ends promptly when the signal aborts", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-logs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "c.log");
  await writeFile(file, "");
  const ac = new AbortController();
  const c = collector();
  const started = Date.now();
  const p = readLog(file, c.sink, { follow: true, pollMs: 10_000, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await p;
  assert.ok(Date.now() - started < 2000);
});
