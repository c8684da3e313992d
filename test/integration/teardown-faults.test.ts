/**
 * The seed scenario and its held-pipe variant: a delete that takes longer than the caller's
 * deadline must still end with the shim shut down and the real exit code kept.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFile, chmod } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, startDaemon, cleanupEnv, noteShims, type Env } from "./harness.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import { bindRootfs, defaultSpec } from "../../src/oci/spec.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { ErrorCode, codeOf } from "../../src/errors.js";
import { sleep } from "../../src/util/signal.js";
import { bundlePath, createBundle } from "../../src/runtime/bundle.js";
import { access } from "node:fs/promises";

const exists = (p: string) => access(p).then(() => true, () => false);

async function runExit3(d: Daemon, env: Env, id: string, runtime?: string) {
  d.containers.create({ id, spec: defaultSpec({ args: ["sh", "-c", "exit 3"] }), rootfs: bindRootfs(env.rootfs), runtime });
  const info = await d.tasks.create(id);
  noteShims(env, d);
  await d.tasks.start(id);
  assert.equal((await d.tasks.wait(id, { signal: AbortSignal.timeout(10_000) })).exitStatus, 3);
  return { info, shimPid: d.meta.shims.get(id).pid! };
}

/** Delete with a 2 s deadline fails, the retry joins the daemon's teardown, and the shim goes. */
async function assertSlowDeleteRecovers(d: Daemon, id: string, shimPid: number, bundle: string) {
  const t0 = Date.now();
  await assert.rejects(
    d.tasks.delete(id, { signal: AbortSignal.timeout(2000) }),
    (e) => codeOf(e) === ErrorCode.DeadlineExceeded,
  );
  assert.ok(Date.now() - t0 < 4000, "the caller's deadline bounds its wait");
  assert.equal(await isAlive(shimPid), true, "the slow delete is still under way in the shim");
  const exit = await d.tasks.delete(id, { signal: AbortSignal.timeout(40_000) });
  assert.equal(exit.exitStatus, 3, "the recorded exit code is still 3");
  assert.equal(await waitForExit(shimPid, 30_000 - (Date.now() - t0)), true, "shim gone within 30 s");
  assert.ok(d.tasks.teardown.stats.retries >= 1, "the teardown step was retried after the shim call timed out");
  assert.deepEqual(await mountsUnder(bundle), []);
  assert.equal(d.meta.shims.list().length, 0);
}

test("seed scenario: umount2 in the shim delayed 15 s by strace", { timeout: 90_000 }, async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  let strace: ReturnType<typeof spawn> | undefined;
  t.after(async () => {
    if (strace?.pid && strace.exitCode === null) strace.kill("SIGKILL");
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const { info, shimPid } = await runExit3(d, env, "seed");
  // One 15 s stall of the shim's first umount2 (the rootfs unmount under IO pressure). Without
  // `when=1` every umount2 of the delete path stalls and the shim alone needs 30 s.
  strace = spawn(
    "strace",
    ["-f", "-qq", "-o", "/dev/null", "-e", "trace=umount2", "-e", "inject=umount2:delay_enter=15s:when=1", "-p", String(shimPid)],
    { stdio: "ignore" },
  );
  await sleep(1000); // let strace attach to every thread
  await assertSlowDeleteRecovers(d, "seed", shimPid, info.bundle);
  assert.ok(d.tasks.teardown.stats.rejoined >= 1, "retries waited on the running shim Delete instead of piling up");
});

test("NotFound from the shim is not 'done': the shim is still shut down and the exit kept", async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));
  const { info, shimPid } = await runExit3(d, env, "nf");
  // Another actor (a delete whose reply was lost) already removed the task from the shim.
  const shim = d.shims.peek("nf")!;
  assert.equal((await shim.task.delete("nf", "", { timeoutMs: 5000 })).exitStatus, 3);
  await assert.rejects(shim.task.state("nf", "", { timeoutMs: 5000 }), (e) => codeOf(e) === ErrorCode.NotFound);
  const exit = await d.tasks.delete("nf", { signal: AbortSignal.timeout(20_000) });
  assert.equal(exit.exitStatus, 3);
  assert.equal(d.tasks.teardown.stats.shimNotFound, 1);
  assert.equal(await waitForExit(shimPid, 5000), true, "shim shut down despite NotFound");
  assert.deepEqual(await mountsUnder(info.bundle), []);
});

test("held-pipe variant: runc delete slowed 15 s by a wrapper runtime binary", { timeout: 90_000 }, async (t) => {
  const env = await makeEnv();
  const wrapper = path.join(env.dir, "slow-runc");
  await writeFile(
    wrapper,
    '#!/bin/sh\nfor a in "$@"; do if [ "$a" = delete ]; then sleep 15; break; fi; done\nexec runc "$@"\n',
  );
  await chmod(wrapper, 0o755);
  env.cfg.runtimes.slow = { shim: "containerd-shim-runc-v2", binaryName: wrapper, runcRoot: "" };
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));
  const { info, shimPid } = await runExit3(d, env, "held", "slow");
  await assertSlowDeleteRecovers(d, "held", shimPid, info.bundle);
});

test("a task whose shim died before its Create (no `runtime` file in the bundle) is torn down, not retried forever", async (t) => {
  const env = await makeEnv();
  const d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));
  // What a crash between the task record and the shim's Create leaves: records, a bundle without
  // the shim's files, and a shim that is gone.
  const dead = spawn("true");
  const deadPid = dead.pid!;
  await new Promise((r) => dead.on("exit", r));
  d.containers.create({ id: "early", spec: defaultSpec({ args: ["true"] }), rootfs: bindRootfs(env.rootfs) });
  d.meta.shims.create({
    id: "early",
    runtime: "runc",
    binary: env.cfg.runtimes.runc!.shim,
    bundle: d.shims.homeDir("early"),
    namespace: env.cfg.namespace,
    pid: deadPid,
    address: path.join(env.dir, "gone.sock"),
    state: "running",
  });
  const bundle = bundlePath(env.cfg.state, env.cfg.namespace, "early");
  await createBundle(bundle, defaultSpec({ args: ["true"] }));
  d.meta.tasks.create({ id: "early", shimId: "early", bundle, status: "created" });
  const exit = await d.tasks.delete("early", { signal: AbortSignal.timeout(10_000) });
  assert.equal(exit.exitStatus, 255, "no process ever ran: the code is unknown");
  assert.equal(d.tasks.teardown.stats.retries, 0, "done at the first attempt");
  assert.equal(d.tasks.info("early").status, "deleted");
  assert.equal(d.meta.shims.find("early"), undefined);
  assert.equal(await exists(bundle), false, "bundle removed");
  await d.containers.delete("early");
});
