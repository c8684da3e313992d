import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CriLogWriter } from "./writer.js";
import { formatRfc3339Nano } from "./timestamp.js";
import { parseCriLog as parse } from "./parse.js";
import { ErrorCode, codeOf } from "../errors.js";

type Rec = { ts: string; stream: string; tag: string; content: string };

function parseCriLog(text: string): Rec[] {
  return parse(text).map((r) => ({ ts: r.timestamp, stream: r.stream, tag: r.tag, content: r.content }));
}

async function withWriter(
  t: import("node:test").TestContext,
  opts: ConstructorParameters<typeof CriLogWriter>[1] = {},
) {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-logs-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "pods", "p1", "c1", "0.log"); // parent dirs do not exist yet
  const w = new CriLogWriter(file, opts);
  await w.open();
  t.after(() => w.close().catch(() => {}));
  return { dir, file, w, read: async () => parseCriLog(await readFile(file, "utf8")) };
}

const short = (r: Rec[]) => r.map((x) => [x.stream, x.tag, x.content]);

test("creates parent dirs and the file with mode 0640", async (t) => {
  const { file } = await withWriter(t);
  assert.equal((await stat(file)).mode & 0o777, 0o640 & ~process.umask());
});

test("multi-line chunks, chunks split mid-line, empty lines and CRLF", async (t) => {
  const { w, read } = await withWriter(t);
  await w.write("stdout", Buffer.from("one\ntwo\nth"));
  await w.write("stdout", Buffer.from("r"));
  await w.write("stdout", Buffer.from("ee\n\nwin\r"));
  await w.write("stdout", Buffer.from("\nmid\rdle\r\n"));
  assert.deepEqual(short(await read()), [
    ["stdout", "F", "one"],
    ["stdout", "F", "two"],
    ["stdout", "F", "three"],
    ["stdout", "F", ""],
    ["stdout", "F", "win"],
    ["stdout", "F", "mid\rdle"],
  ]);
});

test("lines longer than 16 KiB are split into P records of exactly 16 KiB then F", async (t) => {
  const { w, read } = await withWriter(t);
  const K16 = 16384;
  const exact = "a".repeat(K16);
  const plusOne = "b".repeat(K16) + "c";
  const double = "d".repeat(K16) + "e".repeat(K16);
  const big = "f".repeat(40 * 1024);
  await w.write("stdout", Buffer.from(`${exact}\n${plusOne}\n${double}\n`));
  // A long line arriving in small pieces is cut the same way.
  const buf = Buffer.from(big + "\n");
  for (let off = 0; off < buf.length; off += 1000) await w.write("stderr", buf.subarray(off, off + 1000));
  // A \r\n ending straddling the split point is not content.
  await w.write("stdout", Buffer.from("g".repeat(K16) + "\r"));
  await w.write("stdout", Buffer.from("\n"));
  assert.deepEqual(
    (await read()).map((r) => [r.stream, r.tag, r.content.length, r.content[0]]),
    [
      ["stdout", "F", K16, "a"],
      ["stdout", "P", K16, "b"],
      ["stdout", "F", 1, "c"],
      ["stdout", "P", K16, "d"],
      ["stdout", "F", K16, "e"],
      ["stderr", "P", K16, "f"],
      ["stderr", "P", K16, "f"],
      ["stderr", "F", 40 * 1024 - 2 * K16, "f"],
      ["stdout", "F", K16, "g"],
    ],
  );
});

test("a small maxLineBytes cuts partial lines as soon as they are longer", async (t) => {
  const { w, read } = await withWriter(t, { maxLineBytes: 4 });
  await w.write("stdout", Buffer.from("abcdefghi"));
  assert.deepEqual(short(await read()), [
    ["stdout", "P", "abcd"],
    ["stdout", "P", "efgh"],
  ]);
  await w.write("stdout", Buffer.from("j\n"));
  assert.deepEqual(short(await read()).slice(2), [["stdout", "F", "ij"]]);
});

test("interleaved stdout and stderr keep each stream's lines whole", async (t) => {
  const { w, read } = await withWriter(t);
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 50; i++) {
    writes.push(w.write("stdout", Buffer.from(`out-${i}-`)));
    writes.push(w.write("stderr", Buffer.from(`err-${i}-`)));
    writes.push(w.write("stdout", Buffer.from(`end\n`)));
    writes.push(w.write("stderr", Buffer.from(`end\n`)));
  }
  await Promise.all(writes);
  const recs = await read();
  assert.deepEqual(
    recs.filter((r) => r.stream === "stdout").map((r) => r.content),
    Array.from({ length: 50 }, (_, i) => `out-${i}-end`),
  );
  assert.deepEqual(
    recs.filter((r) => r.stream === "stderr").map((r) => r.content),
    Array.from({ length: 50 }, (_, i) => `err-${i}-end`),
  );
  assert.ok(recs.every((r) => r.tag === "F"));
});

test("timestamps are RFC3339Nano, parse, are close to now and never decrease", async (t) => {
  const { w, read } = await withWriter(t);
  const before = Date.now();
  for (let i = 0; i < 200; i++) void w.write(i % 2 ? "stdout" : "stderr", Buffer.from(`l${i}\n`));
  await w.drain();
  const after = Date.now();
  const recs = await read();
  assert.equal(recs.length, 200);
  const rfc3339Nano = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
  let prev = -Infinity;
  let prevFrac = "";
  for (const r of recs) {
    assert.match(r.ts, rfc3339Nano);
    assert.ok(!/\.\d*0(Z|[+-])/.test(r.ts), `trailing zeros trimmed: ${r.ts}`);
    const ms = Date.parse(r.ts);
    assert.ok(ms >= before - 1 && ms <= after + 1, `${r.ts} within the test`);
    // Compare at nanosecond precision: same ms → compare the fraction digits.
    const frac = (/\.(\d+)/.exec(r.ts)?.[1] ?? "").padEnd(9, "0");
    assert.ok(ms > prev || (ms === prev && frac >= prevFrac), `${r.ts} not before the previous record`);
    prev = ms;
    prevFrac = frac;
  }
});

test("timestamp formatting matches Go's RFC3339Nano", () => {
  const saved = process.env.TZ;
  // Date reads TZ on each call in Node 20.
  process.env.TZ = "UTC";
  try {
    const s = 1_795_000_000n * 1_000_000_000n;
    assert.equal(formatRfc3339Nano(s), "2026-11-18T11:06:40Z");
    assert.equal(formatRfc3339Nano(s + 120_000_000n), "2026-11-18T11:06:40.12Z");
    assert.equal(formatRfc3339Nano(s + 1n), "2026-11-18T11:06:40.000000001Z");
    process.env.TZ = "Asia/Kolkata";
    assert.equal(formatRfc3339Nano(s + 5n), "2026-11-18T16:36:40.000000005+05:30");
    process.env.TZ = "America/New_York";
    assert.equal(formatRfc3339Nano(s), "2026-11-18T06:06:40-05:00");
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test("a clock stepping backwards does not make timestamps decrease", async (t) => {
  const times = [2_000_000_000_000_000_000n, 1_000_000_000_000_000_000n, 2_000_000_000_000_000_001n];
  const { w, read } = await withWriter(t, { now: () => times.shift() ?? 0n });
  await w.write("stdout", Buffer.from("a\nb\nc\n"));
  const ts = (await read()).map((r) => Date.parse(r.ts));
  assert.equal(ts[1], ts[0]);
  assert.ok(ts[2]! >= ts[1]!);
});

test("reopen after rotation: the old file has whole records, the new one the rest", async (t) => {
  const { w, file } = await withWriter(t, { maxLineBytes: 64 });
  const rotated = `${file}.1`;
  let i = 0;
  const writes: Promise<void>[] = [];
  const line = () => `line-${String(i++).padStart(4, "0")}-${"x".repeat(i % 100)}\n`;
  for (let k = 0; k < 200; k++) writes.push(w.write(k % 2 ? "stdout" : "stderr", Buffer.from(line())));
  // A partial line spans the reopen: its pieces land on either side as P…F records.
  writes.push(w.write("stdout", Buffer.from("spans-")));
  await rename(file, rotated);
  const reopened = w.reopen();
  writes.push(w.write("stdout", Buffer.from("the-reopen\n")));
  for (let k = 0; k < 200; k++) writes.push(w.write(k % 2 ? "stdout" : "stderr", Buffer.from(line())));
  await reopened;
  await Promise.all(writes);
  await w.close();

  const oldRecs = parseCriLog(await readFile(rotated, "utf8"));
  const newRecs = parseCriLog(await readFile(file, "utf8"));
  assert.ok(oldRecs.length > 0 && newRecs.length > 0, "both files got records");
  // Rebuild the lines of each stream across both files: every line exactly once, in order.
  const lines: Record<string, string[]> = { stdout: [], stderr: [] };
  const partial: Record<string, string> = { stdout: "", stderr: "" };
  for (const r of [...oldRecs, ...newRecs]) {
    partial[r.stream] += r.content;
    if (r.tag === "F") {
      lines[r.stream]!.push(partial[r.stream]!);
      partial[r.stream] = "";
    }
  }
  assert.deepEqual(partial, { stdout: "", stderr: "" });
  const all = [...lines.stdout!, ...lines.stderr!].sort();
  assert.equal(all.length, 401);
  assert.ok(all.includes("spans-the-reopen"));
  assert.equal(new Set(all).size, 401);
});

test("close writes unterminated output as P records, like containerd at EOF", async (t) => {
  const { w, read } = await withWriter(t, { maxLineBytes: 8 });
  await w.write("stdout", Buffer.from("done\nno newline"));
  await w.write("stderr", Buffer.from("tail"));
  await w.close();
  await w.close(); // idempotent
  assert.deepEqual(short(await read()), [
    ["stdout", "F", "done"],
    ["stdout", "P", "no newli"],
    ["stdout", "P", "ne"],
    ["stderr", "P", "tail"],
  ]);
  await assert.rejects(w.write("stdout", Buffer.from("x\n")), (e) => codeOf(e) === ErrorCode.FailedPrecondition);
});

test("endStream writes one stream's tail as P and keeps the writer open", async (t) => {
  const { w, read } = await withWriter(t);
  await w.write("stdout", Buffer.from("half"));
  await w.write("stderr", Buffer.from("err-half"));
  await w.endStream("stdout");
  await w.endStream("stdout"); // nothing left: no record
  await w.write("stderr", Buffer.from("-rest\n"));
  assert.deepEqual(short(await read()), [
    ["stdout", "P", "half"],
    ["stderr", "F", "err-half-rest"],
  ]);
});

test("rejects a bad maxLineBytes", () => {
  assert.throws(() => new CriLogWriter("/tmp/x", { maxLineBytes: 0 }), (e) => codeOf(e) === ErrorCode.InvalidArgument);
});
