/**
 * Runtime core on real runc and the real containerd-shim-runc-v2: lifecycle, grouping,
 * shutdown retry, shim death. Every test ends by proving that nothing is left.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { access } from "node:fs/promises";
import { makeEnv, startDaemon, cleanupEnv, stdoutCollector, noteShims, type Env } from "./harness.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import { bindRootfs, defaultSpec } from "../../src/oci/spec.js";
import { SANDBOX_ID_ANNOTATION } from "../../src/runtime/shim-manager.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { ErrorCode, codeOf } from "../../src/errors.js";

function addContainer(d: Daemon, env: Env, id: string, args: string[], group?: string) {
  d.containers.create({
    id,
    spec: defaultSpec({ args, annotations: group ? { [SANDBOX_ID_ANNOTATION]: group } : {} }),
    rootfs: bindRootfs(env.rootfs),
    sandboxId: group,
  });
}

const exists = (p: string) => access(p).then(() => true, () => false);

test("a task prints, exits 3, and teardown removes shim, bundle and rootfs mount", async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  const out = await stdoutCollector(env, "c1");
  addContainer(d, env, "c1", ["sh", "-c", "echo hi; exit 3"]);
  const created = await d.tasks.create("c1", { stdout: out.path });
  noteShims(env, d);
  assert.equal(created.status, "created");
  assert.ok(created.pid > 0);
  const shim = d.meta.shims.get("c1");
  assert.ok(shim.pid && (await isAlive(shim.pid)), "shim process runs");
  assert.deepEqual(await mountsUnder(created.bundle), [`${created.bundle}/rootfs`]);

  assert.equal((await d.tasks.state("c1")).status, "created");
  await d.tasks.start("c1");
  const exit = await d.tasks.wait("c1", { signal: AbortSignal.timeout(10_000) });
  assert.equal(exit.exitStatus, 3);
  const st = await d.tasks.state("c1");
  assert.equal(st.status, "stopped");
  assert.equal(st.exit?.exitStatus, 3);
  assert.equal(st.exit?.exitedAt, exit.exitedAt, "the shim's exit time is kept to the nanosecond");
  await out.ended;
  assert.equal(out.text(), "hi\n");

  const del = await d.tasks.delete("c1", { signal: AbortSignal.timeout(20_000) });
  assert.equal(del.exitStatus, 3);
  assert.equal(await waitForExit(shim.pid, 5000), true, "shim exited after the last delete");
  assert.equal(await exists(created.bundle), false, "bundle removed");
  assert.deepEqual(await mountsUnder(created.bundle), []);
  assert.equal(d.meta.shims.find("c1"), undefined, "shim record removed");
  // Delete is idempotent and keeps the recorded exit.
  assert.equal((await d.tasks.delete("c1")).exitStatus, 3);
  await d.containers.delete("c1");
  out.close();
});

test("two tasks of one group share one shim, which exits after the last delete", async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  addContainer(d, env, "a", ["sleep", "1000"], "pod1");
  addContainer(d, env, "b", ["sleep", "1000"], "pod1");
  await d.tasks.create("a");
  await d.tasks.start("a");
  await d.tasks.create("b");
  await d.tasks.start("b");
  noteShims(env, d);
  const shims = d.meta.shims.list();
  assert.equal(shims.length, 1, "one shim for the group");
  const pid = shims[0]!.pid!;
  assert.equal(d.tasks.info("a").shimId, "pod1");
  assert.equal(d.tasks.info("b").shimId, "pod1");

  await d.tasks.kill("a", 9);
  assert.equal((await d.tasks.wait("a", { signal: AbortSignal.timeout(10_000) })).exitStatus, 137);
  assert.equal((await d.tasks.delete("a", { signal: AbortSignal.timeout(20_000) })).exitStatus, 137);
  assert.equal(await isAlive(pid), true, "shim stays while a task remains");
  assert.equal(d.tasks.info("b").status, "running");

  await assert.rejects(d.tasks.delete("b"), (e) => codeOf(e) === ErrorCode.FailedPrecondition);
  const exit = await d.tasks.delete("b", { force: true, signal: AbortSignal.timeout(20_000) });
  assert.equal(exit.exitStatus, 137);
  assert.equal(await waitForExit(pid, 5000), true, "shim exits after the last delete");
  assert.equal(d.meta.shims.list().length, 0);
});

test("a failed Shutdown is retried until the shim is gone", async (t) => {
  const env = await makeEnv();
  let failures = 0;
  const d = await startDaemon(env, {
    beforePhase: (_id, phase, attempt) => {
      if (phase === "shutdown_shim" && attempt === 0) {
        failures++;
        throw new Error("injected: Shutdown failed");
      }
    },
  });
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  addContainer(d, env, "s1", ["sh", "-c", "exit 5"]);
  await d.tasks.create("s1");
  noteShims(env, d);
  const pid = d.meta.shims.get("s1").pid!;
  await d.tasks.start("s1");
  assert.equal((await d.tasks.wait("s1")).exitStatus, 5);
  const exit = await d.tasks.delete("s1", { signal: AbortSignal.timeout(20_000) });
  assert.equal(exit.exitStatus, 5);
  assert.equal(failures, 1, "the injected failure happened once");
  assert.equal(await waitForExit(pid, 5000), true);
  assert.equal(d.meta.teardowns.list().length, 0);
});

test("a SIGKILLed shim: the exit is recorded, the container and mounts are cleaned up", async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  addContainer(d, env, "k1", ["sleep", "1000"]);
  const info = await d.tasks.create("k1");
  await d.tasks.start("k1");
  noteShims(env, d);
  const shimPid = d.meta.shims.get("k1").pid!;
  const socket = d.meta.shims.get("k1").address.replace(/^unix:\/\//, "");
  assert.ok(existsSync(socket), `shim socket ${socket}`);
  const taskPid = d.tasks.info("k1").pid;
  process.kill(shimPid, "SIGKILL");

  const exit = await d.tasks.wait("k1", { signal: AbortSignal.timeout(20_000) });
  assert.ok([137, 255].includes(exit.exitStatus), `exit ${exit.exitStatus} is 137 (killed by cleanup) or 255 (unknown)`);
  assert.equal(exit.reason, "shim died");
  // Teardown goes on by itself; wait for it, then check nothing is left.
  await d.tasks.teardown.running("k1");
  assert.equal(d.tasks.info("k1").status, "deleted");
  assert.equal(await waitForExit(taskPid, 5000), true, "container process gone");
  assert.deepEqual(await mountsUnder(info.bundle), []);
  assert.equal(d.meta.shims.list().length, 0);
  assert.ok(!existsSync(socket), "the dead shim's socket file is removed");
  assert.equal((await d.tasks.delete("k1")).exitStatus, exit.exitStatus, "delete reports the recorded exit");
});

test("bad input gets the right error codes and leaves nothing half-made", async (t) => {
  const env = await makeEnv();
  env.cfg.runtimes.broken = { shim: "/nonexistent/containerd-shim-nope", binaryName: "", runcRoot: "" };
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));

  await assert.rejects(d.tasks.create("ghost"), (e) => codeOf(e) === ErrorCode.NotFound && /ghost/.test((e as Error).message));
  await assert.rejects(d.tasks.create("../etc"), (e) => codeOf(e) === ErrorCode.InvalidArgument);
  assert.throws(
    () => d.containers.create({ id: "x", spec: defaultSpec({ args: ["true"] }), rootfs: bindRootfs(env.rootfs), runtime: "kata" }),
    (e) => codeOf(e) === ErrorCode.InvalidArgument && /kata/.test((e as Error).message),
  );
  assert.throws(
    () => d.containers.create({ id: "x", spec: { process: { args: [] } }, rootfs: bindRootfs(env.rootfs) }),
    (e) => codeOf(e) === ErrorCode.InvalidArgument,
  );

  // A shim that cannot start: the error names it; no shim record, home or bundle is left.
  d.containers.create({ id: "nb", spec: defaultSpec({ args: ["true"] }), rootfs: bindRootfs(env.rootfs), runtime: "broken" });
  await assert.rejects(d.tasks.create("nb"), (e) => /containerd-shim-nope/.test((e as Error).message));
  assert.equal(d.meta.shims.find("nb"), undefined);
  assert.equal(d.meta.tasks.find("nb"), undefined);
  assert.equal(await exists(d.shims.homeDir("nb")), false);
  assert.equal(await exists(`${env.cfg.state}/tasks/${env.cfg.namespace}/nb`), false);

  // A second task for the same container while the first lives: AlreadyExists.
  addContainer(d, env, "dup", ["sleep", "1000"]);
  await d.tasks.create("dup");
  noteShims(env, d);
  await assert.rejects(d.tasks.create("dup"), (e) => codeOf(e) === ErrorCode.AlreadyExists);
  await assert.rejects(d.containers.delete("dup"), (e) => codeOf(e) === ErrorCode.FailedPrecondition);
  // A created (never started) task is deleted by killing it.
  assert.equal((await d.tasks.delete("dup", { signal: AbortSignal.timeout(20_000) })).exitStatus, 137);
  await d.containers.delete("dup");
  assert.throws(() => d.containers.get("dup"), (e) => codeOf(e) === ErrorCode.NotFound);
});

test("five tasks of one group created and deleted concurrently: one shim, gone at the end", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));
  const ids = ["g0", "g1", "g2", "g3", "g4"];
  for (const id of ids) addContainer(d, env, id, ["sh", "-c", `exit ${id.slice(1)}`], "podc");
  await Promise.all(ids.map((id) => d.tasks.create(id)));
  noteShims(env, d);
  assert.equal(d.meta.shims.list().length, 1, "concurrent creates share one shim");
  const pid = d.meta.shims.get("podc").pid!;
  await Promise.all(ids.map((id) => d.tasks.start(id)));
  const exits = await Promise.all(ids.map((id) => d.tasks.delete(id, { force: true, signal: AbortSignal.timeout(30_000) })));
  assert.deepEqual(exits.map((e) => e.exitStatus), [0, 1, 2, 3, 4], "each task keeps its own exit code");
  assert.equal(await waitForExit(pid, 5000), true, "the shared shim is shut down after the last delete");
  assert.equal(d.meta.shims.list().length, 0);
  assert.equal(d.meta.teardowns.list().length, 0);
});
