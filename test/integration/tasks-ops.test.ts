/** Exec processes, pids, stats, resource updates and stdin close on a real running task. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, open } from "node:fs/promises";
import { constants } from "node:fs";
import * as path from "node:path";
import { makeEnv, startDaemon, cleanupEnv, stdoutCollector, noteShims } from "./harness.js";
import { bindRootfs, defaultSpec } from "../../src/oci/spec.js";
import { mkfifo } from "../../src/runtime/fifo.js";
import { unpackAny } from "../../src/proto/any.js";
import { MetricsSchema } from "../../src/gen/cgroups/v1/metrics_pb.js";
import { ErrorCode, codeOf } from "../../src/errors.js";

test("exec, pids, stats, update and closeIO on a running task", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  const cgroup = `/${env.cfg.namespace}-ops`;
  const stdin = path.join(env.dir, "ops.stdin");
  await mkfifo(stdin);
  // Our writer end is opened O_RDWR so it never blocks waiting for the shim's reader.
  const stdinWriter = await open(stdin, constants.O_RDWR);
  t.after(() => stdinWriter.close().catch(() => {}));
  const out = await stdoutCollector(env, "ops");
  d.containers.create({
    id: "ops",
    spec: defaultSpec({ args: ["cat"], cgroupsPath: cgroup }),
    rootfs: bindRootfs(env.rootfs),
  });
  await d.tasks.create("ops", { stdin, stdout: out.path });
  noteShims(env, d);
  const { pid } = await d.tasks.start("ops");

  // Pids lists the init process.
  assert.ok((await d.tasks.pids("ops")).includes(pid));

  // Exec: separate output, its own exit code, deleted afterwards.
  const execOut = await stdoutCollector(env, "exec1");
  await d.tasks.execs.add({
    taskId: "ops",
    execId: "e1",
    process: { args: ["sh", "-c", "echo from-exec; exit 4"], cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } },
    stdout: execOut.path,
  });
  await d.tasks.execs.start("ops", "e1");
  assert.equal((await d.tasks.execs.wait("ops", "e1", { signal: AbortSignal.timeout(10_000) })).exitStatus, 4);
  await execOut.ended;
  assert.equal(execOut.text(), "from-exec\n");
  assert.equal((await d.tasks.execs.delete("ops", "e1")).exitStatus, 4);
  await assert.rejects(d.tasks.execs.delete("ops", "e1"), (e) => codeOf(e) === ErrorCode.NotFound);
  execOut.close();

  // Stats: cgroup v1 metrics from the shim.
  const any = await d.tasks.stats("ops");
  const metrics = unpackAny(any, MetricsSchema);
  assert.ok(metrics, `stats decode as cgroups v1 Metrics (got ${any?.typeUrl})`);
  assert.ok((metrics.memory?.usage?.usage ?? 0n) > 0n, "memory usage is reported");
  assert.ok((metrics.pids?.current ?? 0n) >= 1n, "pids are counted");

  // Update: a new memory limit lands in the container's cgroup.
  await d.tasks.update("ops", { memory: { limit: 64 * 1024 * 1024 } });
  const limit = await readFile(path.join("/sys/fs/cgroup/memory", cgroup, "memory.limit_in_bytes"), "utf8");
  assert.equal(Number(limit.trim()), 64 * 1024 * 1024);

  // Stdin reaches the process. The shim holds a writer on the stdin FIFO until CloseIO, so cat
  // sees EOF (and exits 0) only after both our writer is closed and CloseIO.
  await stdinWriter.write("hello\n");
  await stdinWriter.close();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(d.tasks.info("ops").status, "running", "still running before CloseIO");
  await d.tasks.closeIO("ops");
  assert.equal((await d.tasks.wait("ops", { signal: AbortSignal.timeout(10_000) })).exitStatus, 0);
  await out.ended;
  assert.equal(out.text(), "hello\n");
  assert.equal((await d.tasks.delete("ops", { signal: AbortSignal.timeout(20_000) })).exitStatus, 0);
  out.close();
});
