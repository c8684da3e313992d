/**
 * skiffd SIGKILLed while two tasks run; one exits while the daemon is down. After a restart the
 * running one is still managed and the exited one reports its real exit code.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon, type Env } from "./harness.js";
import { DebugClient } from "../../src/daemon/debug-client.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { sleep } from "../../src/util/signal.js";

interface ListReply {
  tasks: { id: string; status: string; exit?: { exitStatus: number } }[];
  shims: { id: string; pid: number }[];
}

test("daemon SIGKILLed with two tasks; real exit codes after restart; no shim left", { timeout: 120_000 }, async (t) => {
  const env: Env = await makeEnv();
  let daemon = await spawnDaemon(env);
  let client: DebugClient | undefined;
  t.after(async () => {
    client?.close();
    await stopDaemon(daemon);
    assert.deepEqual(await cleanupEnv(env), []);
  });

  client = await DebugClient.connect(env.cfg.debugSocket);
  await client.call("Run", { id: "long", rootfs: env.rootfs, args: ["sleep", "1000"] });
  await client.call("Run", { id: "short", rootfs: env.rootfs, args: ["sh", "-c", "sleep 3; exit 7"] });
  const before = await client.call<ListReply>("List");
  for (const s of before.shims) env.shimPids.add(s.pid);
  assert.equal(before.shims.length, 2);
  client.close();
  client = undefined;

  daemon.kill("SIGKILL");
  await new Promise((r) => daemon.once("exit", r));
  for (const s of before.shims) assert.equal(await isAlive(s.pid), true, "shims outlive the daemon");
  await sleep(5000); // "short" exits while the daemon is down

  daemon = await spawnDaemon(env);
  client = await DebugClient.connect(env.cfg.debugSocket);
  const after = await client.call<ListReply>("List");
  const short = after.tasks.find((x) => x.id === "short");
  const long = after.tasks.find((x) => x.id === "long");
  assert.equal(short?.exit?.exitStatus, 7, "exit during downtime has its real code");
  assert.equal(long?.status, "running");
  assert.equal(long?.exit, undefined);

  // The running task is still managed: Kill and Wait work.
  await client.call("Kill", { id: "long", signal: 9 });
  const w = await client.call<{ exitStatus: number }>("Wait", { id: "long" }, { timeoutMs: 10_000 });
  assert.equal(w.exitStatus, 137);

  assert.equal((await client.call<{ exitStatus: number }>("Delete", { id: "short" }, { timeoutMs: 20_000 })).exitStatus, 7);
  assert.equal((await client.call<{ exitStatus: number }>("Delete", { id: "long" }, { timeoutMs: 20_000 })).exitStatus, 137);
  for (const s of before.shims) assert.equal(await waitForExit(s.pid, 5000), true, `shim ${s.pid} gone`);
  const final = await client.call<ListReply>("List");
  assert.deepEqual(final.tasks, []);
  assert.deepEqual(final.shims, []);
});
