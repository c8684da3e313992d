import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Spawner, useSpawner } from "./spawner.js";
import { run } from "./exec.js";
import { isAlive, waitForExit } from "./proc.js";

// Built by `make build` (make test builds first).
const BIN = path.resolve(import.meta.dirname, "../../dist/native/skiff-spawner");

test("skiff-spawner runs commands like Node's spawn: output, input, env, cwd, codes, signals", async (t) => {
  const sp = await Spawner.start(BIN);
  t.after(() => sp.close());
  const dir = await realpath(await mkdtemp(path.join(tmpdir(), "skiff-spawner-")));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = sp.run({ file: "sh", args: ["-c", 'cat; echo "[$FOO]" >&2; pwd; exit 3'], env: { PATH: process.env.PATH, FOO: "bar" }, cwd: dir, input: "in\n", maxOutput: 1 << 20 });
  const res = await r.done;
  assert.equal(res.code, 3);
  assert.equal(res.signal, null);
  assert.equal(res.stdout.toString(), `in\n${dir}\n`);
  assert.equal(res.stderr.toString(), "[bar]\n");
  assert.ok(res.pid > 0);
  // A signal, and output past the cap dropped.
  const big = await sp.run({ file: "sh", args: ["-c", "head -c 100000 /dev/zero; kill -TERM $$"], env: process.env, maxOutput: 1000 }).done;
  assert.equal(big.code, null);
  assert.equal(big.signal, "SIGTERM");
  assert.equal(big.stdout.length, 1000);
  await assert.rejects(sp.run({ file: "/nonexistent/x", args: [], env: process.env, maxOutput: 10 }).done, /ENOENT/);
  // kill(): a whole session (the shell and its child) goes.
  const h = sp.run({ file: "sh", args: ["-c", "sleep 30 & echo $!; wait"], env: process.env, maxOutput: 100, session: true });
  await new Promise((res2) => setTimeout(res2, 200));
  h.kill("SIGKILL");
  const killed = await h.done;
  assert.equal(killed.signal, "SIGKILL");
  // Many at once.
  const many = await Promise.all(Array.from({ length: 100 }, (_, i) => sp.run({ file: "echo", args: [String(i)], env: process.env, maxOutput: 100 }).done));
  assert.deepEqual(many.map((m) => m.stdout.toString()), Array.from({ length: 100 }, (_, i) => `${i}\n`));
});

test("run() goes through the installed spawner, and falls back to Node's spawn when it dies", async (t) => {
  const sp = await Spawner.start(BIN);
  useSpawner(sp);
  t.after(async () => {
    useSpawner(undefined);
    await sp.close();
  });
  const via = await run("sh", ["-c", "echo $PPID"]);
  assert.equal(Number(via.stdout.toString()), sp.pid, "the spawner is the parent");
  process.kill(sp.pid, "SIGKILL");
  await waitForExit(sp.pid, 2000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await isAlive(sp.pid), false);
  const direct = await run("sh", ["-c", "echo $PPID"]);
  assert.equal(Number(direct.stdout.toString()), process.pid, "Node's own spawn after the spawner died");
});
