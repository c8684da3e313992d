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

test("a shim started just before the daemon died, still waiting for a reader of its log, is shut down by the next daemon", { timeout: 60_000 }, async (t) => {
  const { startDaemon } = await import("./harness.js");
  const { mkdir, rm, writeFile } = await import("node:fs/promises");
  const path = await import("node:path");
  const { mkfifo } = await import("../../src/runtime/fifo.js");
  const { startShimProcess } = await import("../../src/runtime/shim-binary.js");
  const { shimsOfNamespace } = await import("../../src/doctor/host-linux.js");
  const { TtrpcClient } = await import("../../src/ttrpc/index.js");
  const { ShimTaskClient } = await import("../../src/runtime/shim-client.js");
  const env = await makeEnv();
  let d = await startDaemon(env);
  t.after(async () => assert.deepEqual(await cleanupEnv(env, d), []));
  // What a kill right after the shim's `start` leaves: a 'starting' record, the shim's home with
  // its log FIFO and address file, and a shim daemon blocked opening that FIFO (no reader).
  const cutStart = async (group: string) => {
    const home = path.join(env.cfg.state, "shims", env.cfg.namespace, group);
    const now = Date.now();
    d.meta.shims.create({ id: group, runtime: "runc", binary: "containerd-shim-runc-v2", address: "", bundle: home, pid: null, namespace: env.cfg.namespace, state: "starting", createdAt: now, updatedAt: now });
    await mkdir(home, { recursive: true });
    await writeFile(path.join(home, "config.json"), JSON.stringify({ annotations: { "io.kubernetes.cri.sandbox-id": group } }));
    await mkfifo(path.join(home, "log"));
    const address = await startShimProcess(d.shims.binaryOptions("runc"), { id: group, cwd: home, timeoutMs: 10_000 });
    const [shim] = (await shimsOfNamespace(env.cfg.namespace)).filter((s) => s.group === group);
    assert.ok(shim, "the shim daemon runs");
    env.shimPids.add(shim.pid);
    return { home, address, shim };
  };
  const group = "cut-start";
  const { address, shim } = await cutStart(group);
  // And one whose address file never came (the start cut even earlier): no way to reach it.
  const other = await cutStart("cut-start-no-address");
  await rm(path.join(other.home, "address"));
  // It does not answer while nobody reads its log.
  const probe = await TtrpcClient.connect(address.replace(/^unix:\/\//, ""), { namespace: env.cfg.namespace, timeoutMs: 1000 });
  await assert.rejects(new ShimTaskClient(probe).connect(group, { timeoutMs: 1000 }), /deadline|timeout/i);
  probe.destroy();
  await d.close();
  d = await startDaemon(env);
  assert.equal(await waitForExit(shim.pid, 10_000), true, "the unused shim was shut down by recovery");
  assert.equal(d.meta.shims.find(group), undefined, "and its record dropped");
  assert.equal(await waitForExit(other.shim.pid, 10_000), true, "the unreachable one was killed");
  assert.equal(d.meta.shims.find("cut-start-no-address"), undefined);
});
