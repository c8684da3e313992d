import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, lstat, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { attachLogs, createLogFifos, logFifoPaths } from "./pump.js";
import { CriLogWriter } from "./writer.js";
import { joinCriLogLines, parseCriLog } from "./parse.js";
import { ErrorCode, codeOf } from "../errors.js";

async function tmp(t: import("node:test").TestContext) {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-pump-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Stands in for the shim: one O_RDWR descriptor per FIFO (a writer plus its own read end). */
async function fakeShim(fifos: { stdout: string; stderr: string }) {
  const out = await open(fifos.stdout, constants.O_RDWR);
  const err = await open(fifos.stderr, constants.O_RDWR);
  return {
    out: (s: string) => out.write(s),
    err: (s: string) => err.write(s),
    close: async () => {
      await out.close();
      await err.close();
    },
  };
}

test("createLogFifos makes FIFOs, keeps existing ones, rejects other files and bad ids", async (t) => {
  const dir = path.join(await tmp(t), "io");
  const f = await createLogFifos(dir, "c1");
  assert.deepEqual(f, logFifoPaths(dir, "c1"));
  assert.ok((await lstat(f.stdout)).isFIFO() && (await lstat(f.stderr)).isFIFO());
  assert.deepEqual(await createLogFifos(dir, "c1"), f, "existing FIFOs are reused");
  await writeFile(path.join(dir, "c2-stdout"), "");
  await assert.rejects(createLogFifos(dir, "c2"), (e) => codeOf(e) === ErrorCode.AlreadyExists);
  assert.throws(() => logFifoPaths(dir, "../x"), (e) => codeOf(e) === ErrorCode.InvalidArgument);
});

test("pumps both FIFOs into the log; done resolves at EOF with tails as P", async (t) => {
  const dir = await tmp(t);
  const fifos = await createLogFifos(dir, "c");
  const writer = new CriLogWriter(path.join(dir, "c.log"));
  await writer.open();
  t.after(() => writer.close());
  const pump = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer });
  const shim = await fakeShim(fifos);
  await shim.out("a\nb");
  await shim.err("e1\n");
  await shim.out("c\nunterminated");
  await shim.close();
  await pump.done;
  const recs = parseCriLog(await readFile(writer.path, "utf8"));
  const out = recs.filter((r) => r.stream === "stdout").map((r) => [r.tag, r.content]);
  assert.deepEqual(out, [
    ["F", "a"],
    ["F", "bc"],
    ["P", "unterminated"],
  ]);
  assert.deepEqual(
    recs.filter((r) => r.stream === "stderr").map((r) => [r.tag, r.content]),
    [["F", "e1"]],
  );
  await pump.close(); // idempotent after EOF
});

test("close then re-attach (daemon restart): output written in between arrives exactly once", async (t) => {
  const dir = await tmp(t);
  const fifos = await createLogFifos(dir, "c");
  const logPath = path.join(dir, "c.log");
  const w1 = new CriLogWriter(logPath);
  await w1.open();
  const p1 = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer: w1 });
  const shim = await fakeShim(fifos);
  t.after(() => shim.close().catch(() => {}));
  await shim.out("before-1\n");
  await new Promise((r) => setTimeout(r, 50));
  await shim.out("half-");
  await new Promise((r) => setTimeout(r, 50));
  // "Daemon down": readers closed, writer closed (the half line becomes a P record).
  await p1.close();
  await p1.done;
  await w1.close();
  for (let i = 1; i <= 100; i++) await shim.out(`down-${i}\n`);
  await shim.err("down-err\n");
  // "Daemon up": a new writer and new readers on the same FIFOs.
  const w2 = new CriLogWriter(logPath);
  await w2.open();
  t.after(() => w2.close());
  const p2 = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer: w2 });
  await shim.out("after\n");
  await shim.close();
  await p2.done;
  const lines = joinCriLogLines(parseCriLog(await readFile(logPath, "utf8")));
  assert.deepEqual(
    lines.filter((l) => l.stream === "stdout").map((l) => l.line),
    ["before-1", "half-down-1", ...Array.from({ length: 99 }, (_, i) => `down-${i + 2}`), "after"],
  );
  assert.deepEqual(
    lines.filter((l) => l.stream === "stderr").map((l) => l.line),
    ["down-err"],
  );
});

test("attachLogs with a missing FIFO fails and leaves nothing open", async (t) => {
  const dir = await tmp(t);
  const fifos = await createLogFifos(dir, "c");
  const writer = new CriLogWriter(path.join(dir, "c.log"));
  await writer.open();
  t.after(() => writer.close());
  await assert.rejects(attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: path.join(dir, "nope"), writer }), {
    code: "ENOENT",
  });
});

test("several MiB through both FIFOs arrive whole and in order", async (t) => {
  const dir = await tmp(t);
  const fifos = await createLogFifos(dir, "c");
  const writer = new CriLogWriter(path.join(dir, "c.log"));
  await writer.open();
  t.after(() => writer.close());
  const pump = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer });
  const shim = await fakeShim(fifos);
  const N = 2000;
  const body = "y".repeat(1500);
  const outLines = Array.from({ length: N }, (_, i) => `o${i}-${body}`);
  const errLines = Array.from({ length: N }, (_, i) => `e${i}-${body}`);
  // Writes far larger than the 64 KiB pipe buffer, from both streams at once.
  await Promise.all([shim.out(outLines.join("\n") + "\n"), shim.err(errLines.join("\n") + "\n")]);
  await shim.close();
  await pump.done;
  const lines = joinCriLogLines(parseCriLog(await readFile(writer.path, "utf8")));
  assert.deepEqual(
    lines.filter((l) => l.stream === "stdout").map((l) => l.line),
    outLines,
  );
  assert.deepEqual(
    lines.filter((l) => l.stream === "stderr").map((l) => l.line),
    errLines,
  );
});
