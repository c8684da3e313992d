/** The `skiff task` CLI against a real skiffd process. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon } from "./harness.js";
import { run } from "../../src/util/exec.js";
import { call, criClients } from "./cri-client.js";

const cli = path.resolve(import.meta.dirname, "../../src/cmd/skiff.ts");
const skiff = (socket: string, ...args: string[]) =>
  run(process.execPath, ["--import", "tsx", cli, "--debug-socket", socket, ...args]);

test("skiff task run/ls/kill/delete drive skiffd; a missing daemon gets a clear error", { timeout: 90_000 }, async (t) => {
  const env = await makeEnv();
  const daemon = await spawnDaemon(env);
  t.after(async () => {
    await stopDaemon(daemon);
    assert.deepEqual(await cleanupEnv(env), []);
  });
  const sock = env.cfg.debugSocket;

  // The CRI socket of the same daemon answers Version (the rest of CRI lands with its issue).
  const cri = criClients(env.cfg.socket);
  t.after(() => cri.close());
  const v = await call(cri.runtime, "Version", { version: "v1" });
  assert.equal(v.runtime_name, "skiff");
  assert.equal(v.runtime_api_version, "v1");
  const outFile = path.join(env.dir, "out.log");

  const r1 = await skiff(sock, "task", "run", "--id", "cli1", "--rootfs", env.rootfs, "--stdout", outFile, "--", "sh", "-c", "echo hi; exit 3");
  assert.equal(r1.code, 3, `exit code passes through (stderr: ${r1.stderr})`);
  assert.equal(await readFile(outFile, "utf8"), "hi\n");

  const r2 = await skiff(sock, "task", "run", "-d", "--id", "cli2", "--rootfs", env.rootfs, "--", "sleep", "1000");
  assert.equal(r2.code, 0, r2.stderr.toString());
  const ls = JSON.parse((await skiff(sock, "task", "ls")).stdout.toString()) as { tasks: { id: string; status: string }[] };
  assert.deepEqual(ls.tasks.map((x) => [x.id, x.status]), [["cli2", "running"]]);

  const busy = await skiff(sock, "task", "delete", "cli2");
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr.toString(), /running.*failed_precondition/);

  assert.equal((await skiff(sock, "task", "kill", "cli2", "-s", "9")).code, 0);
  const w = JSON.parse((await skiff(sock, "task", "wait", "cli2")).stdout.toString()) as { exitStatus: number };
  assert.equal(w.exitStatus, 137);
  const del = await skiff(sock, "task", "delete", "cli2");
  assert.equal(del.code, 0, del.stderr.toString());
  assert.equal((JSON.parse(del.stdout.toString()) as { exitStatus: number }).exitStatus, 137);

  const bad = await skiff(sock, "task", "info", "nope");
  assert.match(bad.stderr.toString(), /task "nope" not found/);

  const none = await skiff(path.join(env.dir, "no-such.sock"), "task", "ls");
  assert.notEqual(none.code, 0);
  assert.match(none.stderr.toString(), /cannot reach skiffd .* is it running/);
});
