/**
 * The test fixtures against the real thing: a busybox rootfs and a minimal spec run by plain
 * runc, with host snapshots around it. Needs root, runc and busybox-static (scripts/setup.sh).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { HostLeakError, assertNoLeaks, snapshotHost } from "../../src/testing/leaks.js";
import { minimalSpec } from "../../src/testing/oci-spec.js";
import { isAlive, tmpDir, waitForPidExit } from "../../src/testing/proc.js";
import { makeBusyboxRootfs } from "../../src/testing/rootfs.js";

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function mustRun(cmd: string, args: string[], opts: { cwd?: string; detaches?: boolean } = {}): Promise<string> {
  const res = await run(cmd, args, { cwd: opts.cwd ?? "/", timeoutMs: 30_000, detaches: opts.detaches ?? false });
  assert.equal(res.code, 0, `${cmd} ${args.join(" ")} failed: ${res.stderr}`);
  return res.stdout;
}

/**
 * Runs a command to completion, capturing its output. `detaches`: the command leaves a process
 * behind that inherits its stdout/stderr (`runc run --detach`), so the pipes never close; settle
 * on the command's own exit instead.
 */
function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; timeoutMs: number; detaches?: boolean },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on(opts.detaches ? "exit" : "close", (code) => {
      if (opts.detaches) {
        child.stdout.destroy();
        child.stderr.destroy();
      }
      resolve({ code, stdout, stderr });
    });
  });
}

for (const dynamic of [false, true]) {
  test(`runc runs a minimalSpec container in a ${dynamic ? "dynamic" : "static"} busybox rootfs without leaks`, async (t) => {
    assert.equal(process.getuid?.(), 0, "integration tests run as root");
    const dir = await tmpDir("skiff-fx-");
    t.after(() => dir.cleanup());
    const runcRoot = join(dir.path, "runc");
    const bundle = join(dir.path, "bundle");
    const id = `skiff-fixtures-${process.pid}-${dynamic ? "d" : "s"}`;

    const before = await snapshotHost({ runcRoots: [runcRoot] });

    const started = performance.now();
    await makeBusyboxRootfs(join(bundle, "rootfs"), { dynamic });
    // Includes the one-time `busybox --list` (and `ldd`) of this process; the warm-build time
    // is asserted by src/testing/rootfs.test.ts.
    t.diagnostic(`rootfs built in ${(performance.now() - started).toFixed(0)} ms`);

    const spec = minimalSpec({ args: ["sh", "-c", "echo hi; exit 3"] });
    await mkdir(bundle, { recursive: true });
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec, null, 2));

    const res = await run("runc", ["--root", runcRoot, "run", id], { cwd: bundle, timeoutMs: 30_000 });
    assert.equal(res.stdout, "hi\n", `stdout; stderr was: ${res.stderr}`);
    assert.equal(res.code, 3, `exit code; stderr was: ${res.stderr}`);

    const after = await snapshotHost({ runcRoots: [runcRoot] });
    assertNoLeaks(before, after);
  });
}

test("assertNoLeaks reports a shim process, a mount, a netns and a runc container left behind", async (t) => {
  assert.equal(process.getuid?.(), 0, "integration tests run as root");
  const dir = await tmpDir("skiff-fx-");
  const runcRoot = join(dir.path, "runc");
  const bundle = join(dir.path, "bundle");
  const mountPoint = join(dir.path, "mnt");
  const id = `skiff-leak-${process.pid}`;
  const netns = `skiff-fx-${process.pid}`;
  // Undo in reverse, whatever the assertions did; the tmp dir last (it refuses while mounted).
  const undo: (() => Promise<unknown>)[] = [() => dir.cleanup()];
  t.after(async () => {
    for (const step of undo.reverse()) await step().catch((err: unknown) => t.diagnostic(`cleanup: ${String(err)}`));
  });

  await makeBusyboxRootfs(join(bundle, "rootfs"));
  await writeFile(join(bundle, "config.json"), JSON.stringify(minimalSpec({ args: ["sleep", "600"] })));
  await mkdir(mountPoint);
  // A stand-in shim: any process whose argv[0] is named containerd-shim-runc-v2.
  const fakeShim = join(dir.path, "containerd-shim-runc-v2");
  await copyFile("/bin/sleep", fakeShim);

  const before = await snapshotHost({ runcRoots: [runcRoot] });

  const shim = spawn(fakeShim, ["600"], { stdio: "ignore" });
  const shimPid = shim.pid;
  assert.ok(shimPid !== undefined);
  undo.push(async () => {
    shim.kill("SIGKILL");
    assert.ok(await waitForPidExit(shimPid, 5_000), "fake shim did not exit");
  });
  await mustRun("mount", ["--bind", join(bundle, "rootfs"), mountPoint]);
  undo.push(() => mustRun("umount", [mountPoint]));
  await mustRun("ip", ["netns", "add", netns]);
  undo.push(() => mustRun("ip", ["netns", "delete", netns]));
  await mustRun("runc", ["--root", runcRoot, "run", "--detach", id], { cwd: bundle, detaches: true });
  undo.push(() => mustRun("runc", ["--root", runcRoot, "delete", "--force", id]));

  const during = await snapshotHost({ runcRoots: [runcRoot] });
  const err = (() => {
    try {
      assertNoLeaks(before, during);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof HostLeakError, "assertNoLeaks should throw");
  assert.deepEqual(err.diff.newShimPids, [shimPid]);
  assert.deepEqual(
    err.diff.newMounts.map((m) => m.mountPoint),
    [mountPoint],
  );
  assert.deepEqual(err.diff.newNetns, [netns]);
  assert.deepEqual(
    err.diff.newRuncContainers.map((c) => [c.id, c.status]),
    [[id, "running"]],
  );
  for (const needle of [`shim pid ${shimPid}`, mountPoint, `netns ${netns}`, `runc container ${id}`]) {
    assert.ok(err.message.includes(needle), `message lists ${needle}:\n${err.message}`);
  }
  assert.ok(await isAlive(shimPid));

  // Undo everything now (t.after would too) and check the host is back to `before`.
  for (const step of undo.splice(1).reverse()) await step();
  assert.equal(await isAlive(shimPid), false);
  assertNoLeaks(before, await snapshotHost({ runcRoots: [runcRoot] }));
});
