/** CRI container logs from a real task: FIFOs → pump → CRI log file, and re-attach after a "restart". */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, startDaemon, cleanupEnv, noteShims } from "./harness.js";
import { bindRootfs, defaultSpec } from "../../src/oci/spec.js";
import { attachLogs, createLogFifos } from "../../src/logs/pump.js";
import { CriLogWriter } from "../../src/logs/writer.js";
import { joinCriLogLines, parseCriLog } from "../../src/logs/parse.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a task's stdout and stderr land in the CRI log with the right streams and P/F tags", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  const fifos = await createLogFifos(path.join(env.dir, "io"), "logs1");
  const writer = new CriLogWriter(path.join(env.dir, "pods", "p1", "logs1", "0.log"));
  await writer.open();
  t.after(() => writer.close());
  // Readers first, then the task (the shim opens the FIFOs during Create).
  const pump = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer });
  t.after(() => pump.close());

  const script = "echo one; echo two; echo three; head -c 40960 /dev/zero | tr '\\0' x; echo; echo oops >&2";
  d.containers.create({ id: "logs1", spec: defaultSpec({ args: ["sh", "-c", script] }), rootfs: bindRootfs(env.rootfs) });
  await d.tasks.create("logs1", { stdout: fifos.stdout, stderr: fifos.stderr });
  noteShims(env, d);
  await d.tasks.start("logs1");
  assert.equal((await d.tasks.wait("logs1", { signal: AbortSignal.timeout(10_000) })).exitStatus, 0);
  await Promise.race([
    pump.done,
    sleep(10_000).then(() => assert.fail("log streams did not reach EOF after the task exited")),
  ]);
  assert.equal((await d.tasks.delete("logs1", { signal: AbortSignal.timeout(20_000) })).exitStatus, 0);
  await writer.close();

  const recs = parseCriLog(await readFile(writer.path, "utf8"));
  const x = "x".repeat(16384);
  assert.deepEqual(
    recs.filter((r) => r.stream === "stdout").map((r) => [r.tag, r.content]),
    [
      ["F", "one"],
      ["F", "two"],
      ["F", "three"],
      ["P", x],
      ["P", x],
      ["F", "x".repeat(40960 - 2 * 16384)],
    ],
  );
  assert.deepEqual(
    recs.filter((r) => r.stream === "stderr").map((r) => [r.tag, r.content]),
    [["F", "oops"]],
  );
  for (let i = 0; i < recs.length; i++) {
    assert.ok(!Number.isNaN(Date.parse(recs[i]!.timestamp)), `timestamp parses: ${recs[i]!.timestamp}`);
  }
});

test("output written while no reader is attached (daemon down) arrives exactly once after re-attach", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  const fifos = await createLogFifos(path.join(env.dir, "io"), "logs2");
  const logPath = path.join(env.dir, "pods", "p2", "logs2", "0.log");
  const w1 = new CriLogWriter(logPath);
  await w1.open();
  const p1 = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer: w1 });
  t.after(async () => {
    await p1.close();
    await w1.close();
  });

  const script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done";
  d.containers.create({ id: "logs2", spec: defaultSpec({ args: ["sh", "-c", script] }), rootfs: bindRootfs(env.rootfs) });
  await d.tasks.create("logs2", { stdout: fifos.stdout, stderr: fifos.stderr });
  noteShims(env, d);
  await d.tasks.start("logs2");

  // Wait for the first line, then go "down": readers closed, writer closed.
  const lines = async () => joinCriLogLines(parseCriLog(await readFile(logPath, "utf8"))).map((l) => `${l.stream}:${l.line}`);
  for (const deadline = Date.now() + 5000; !(await lines()).includes("stdout:line1"); ) {
    if (Date.now() > deadline) assert.fail("line1 never reached the log");
    await sleep(20);
  }
  await p1.close();
  await p1.done;
  await w1.close();
  const beforeDown = await lines();

  await sleep(600);
  assert.deepEqual(await lines(), beforeDown, "nothing is written while no reader is attached");

  // "Restart": a new writer and new readers on the same FIFOs the shim still holds.
  const w2 = new CriLogWriter(logPath);
  await w2.open();
  const p2 = await attachLogs({ stdoutFifo: fifos.stdout, stderrFifo: fifos.stderr, writer: w2 });
  t.after(async () => {
    await p2.close();
    await w2.close();
  });
  assert.equal((await d.tasks.wait("logs2", { signal: AbortSignal.timeout(10_000) })).exitStatus, 0);
  await Promise.race([
    p2.done,
    sleep(10_000).then(() => assert.fail("log streams did not reach EOF after the task exited")),
  ]);
  assert.equal((await d.tasks.delete("logs2", { signal: AbortSignal.timeout(20_000) })).exitStatus, 0);
  await w2.close();

  assert.deepEqual(await lines(), ["stdout:line1", "stdout:line2", "stdout:line3", "stdout:line4", "stdout:line5"]);
  const recs = parseCriLog(await readFile(logPath, "utf8"));
  assert.ok(recs.every((r) => r.tag === "F"));
  assert.ok(beforeDown.length < 5, "some lines were written while no reader was attached");
});
