import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { isAlive, procState, tmpDir, waitForPidExit } from "./proc.js";

test("isAlive: this process is, a never-used pid is not", async () => {
  assert.equal(await isAlive(process.pid), true);
  assert.equal(await isAlive(2 ** 22 + 1), false); // above pid_max's ceiling
  assert.equal(await isAlive(0), false);
});

test("waitForPidExit: true once a child exits, false on timeout", async () => {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  try {
    assert.equal(await waitForPidExit(pid, 50), false);
    // Not reaped yet while the listener is not run: a zombie must count as exited.
    child.kill("SIGKILL");
    assert.equal(await waitForPidExit(pid, 5_000), true);
  } finally {
    child.kill("SIGKILL");
  }
});

test("procState reads the state after the last parenthesis", async () => {
  assert.match((await procState(process.pid)) ?? "", /^[RSD]$/);
  assert.equal(await procState(2 ** 22 + 1), undefined);
});

test("tmpDir creates a private directory and cleanup removes it, idempotently", async () => {
  const dir = await tmpDir("skiff-proc-");
  assert.equal((await stat(dir.path)).mode & 0o777, 0o700);
  await mkdir(join(dir.path, "a/b"), { recursive: true });
  await writeFile(join(dir.path, "a/b/f"), "x");
  await dir.cleanup();
  await dir.cleanup();
  await assert.rejects(stat(dir.path), { code: "ENOENT" });
});
