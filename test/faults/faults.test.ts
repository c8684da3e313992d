/**
 * The fault tools work on their own (root): strace really delays umount2, the runc wrapper delays
 * and fails only `delete`, the CNI plugin fails ADD and hangs DEL as told, the small fs fills to
 * ENOSPC and frees, kills hit exactly the pids named, and the seeded random source repeats.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { run, runChecked } from "../../src/util/exec.js";
import { isAlive } from "../../src/util/proc.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { delayUmount2 } from "./strace.js";
import { installRuncWrapper } from "./runc-wrapper.js";
import { installFaultyCni } from "./cni-plugin.js";
import { mountSmallFs } from "./full-disk.js";
import { killAfter } from "./kill.js";
import { makeRng } from "./random.js";

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-faults-"));
  t.after(async () => {
    await run("umount", ["-l", path.join(dir, "m")]);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

test("strace delays the traced process's (and its children's) umount2", { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const m = path.join(dir, "m");
  await mkdir(m);
  await runChecked("mount", ["-t", "tmpfs", "none", m]);
  // sh waits for a go file, then forks umount: strace -f must follow the fork.
  const go = path.join(dir, "go");
  const sh = spawn("sh", ["-c", `while [ ! -e ${go} ]; do sleep 0.05; done; umount ${m}`], { stdio: "ignore" });
  const exited = new Promise<number | null>((r) => sh.once("exit", (c) => r(c)));
  const h = await delayUmount2(sh.pid!, { delayMs: 1500, log: path.join(dir, "strace.log") });
  t.after(() => h.detach());
  const t0 = Date.now();
  await writeFile(go, "");
  assert.equal(await exited, 0);
  assert.ok(Date.now() - t0 >= 1400, `umount took ${Date.now() - t0} ms, want ≥ 1.5 s`);
  assert.equal(await h.delayed(), 1);
  assert.deepEqual(await mountsUnder(m), []);
  await h.detach();
  assert.equal(await isAlive(h.pid), false, "strace stopped");
});

test("runc wrapper: delete delayed or failed per the control file, other commands pass", { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const w = await installRuncWrapper(dir, { runc: "/bin/echo" });
  assert.equal((await runChecked(w.binary, ["--root", "/x", "state", "id1"])).stdout.toString(), "--root /x state id1\n");
  await w.set({ deleteDelayS: 1 });
  const t0 = Date.now();
  assert.equal((await runChecked(w.binary, ["--root", "/x", "delete", "--force", "id1"])).stdout.toString(), "--root /x delete --force id1\n");
  assert.ok(Date.now() - t0 >= 900);
  await w.set({ deleteFail: true });
  const r = await run(w.binary, ["delete", "id2"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr.toString(), /injected failure/);
  await w.set({});
  assert.equal((await run(w.binary, ["delete", "id3"])).code, 0);
  await w.set({ deleteDelayS: 1, deleteDelayOnce: true });
  const t1 = Date.now();
  await runChecked(w.binary, ["delete", "id1"]); // id1 was delayed before
  assert.ok(Date.now() - t1 < 900, "a second delete of the same id is not delayed");
  await runChecked(w.binary, ["delete", "id4"]);
  assert.ok(Date.now() - t1 >= 900, "the first delete of a new id is");
  assert.deepEqual(
    (await w.deletes()).map((d) => d.action),
    ["delayed", "failed", "pass", "pass", "delayed"],
  );
});

test("CNI fault plugin: fails ADD, hangs the first DEL of each container, then passes", { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, "net.d");
  await mkdir(confDir);
  await writeFile(path.join(confDir, "10-x.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "bridge" }] }));
  const p = await installFaultyCni(path.join(dir, "bin"), confDir);
  const conf = JSON.parse(await readFile(path.join(confDir, "10-x.conflist"), "utf8"));
  assert.deepEqual(conf.plugins.map((x: { type: string }) => x.type), ["bridge", p.type]);
  const bin = path.join(p.binDir, p.type);
  const call = (cmd: string, id: string) =>
    run(bin, [], { input: JSON.stringify({ cniVersion: "1.0.0", name: "x", type: p.type, prevResult: { cniVersion: "1.0.0", ips: [] } }), env: { ...process.env, CNI_COMMAND: cmd, CNI_CONTAINERID: id } });
  await p.set({ failAdd: true });
  const add = await call("ADD", "a");
  assert.equal(add.code, 1);
  assert.equal(JSON.parse(add.stdout.toString()).code, 999);
  await p.set({ hangDels: 1, hangDelMs: 60_000 });
  assert.equal((await call("ADD", "a")).code, 0);
  const hung = spawn(bin, [], { env: { ...process.env, CNI_COMMAND: "DEL", CNI_CONTAINERID: "a" }, stdio: ["pipe", "ignore", "ignore"] });
  hung.stdin!.end("{}");
  for (const end = Date.now() + 5000; (await p.running()).length === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await p.running(), [hung.pid]);
  assert.equal((await call("DEL", "a")).code, 0, "the second DEL of the container passes");
  hung.kill("SIGKILL");
  await new Promise((r) => hung.once("exit", r));
  assert.deepEqual(await p.running(), []);
  assert.deepEqual(
    (await p.calls()).map((c) => `${c.cmd}:${c.action}`),
    ["ADD:failed", "ADD:ok", "DEL:hung", "DEL:ok"],
  );
});

test("small fs: fills to ENOSPC, frees, unmounts", { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const fs = await mountSmallFs(path.join(dir, "m"), 1 << 20);
  const n = await fs.fill();
  assert.ok(n > 900_000 && n <= 1 << 20, `${n} bytes`);
  await assert.rejects(writeFile(path.join(fs.dir, "x"), "data"), { code: "ENOSPC" });
  await fs.free();
  await writeFile(path.join(fs.dir, "x"), "data");
  await fs.unmount();
  assert.deepEqual(await mountsUnder(fs.dir), []);
});

test("killAfter kills the named pid at the chosen time; the rng repeats from its seed", async () => {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  const k = killAfter(child.pid!, 200);
  const t0 = Date.now();
  assert.equal(await k.done, true);
  assert.ok(Date.now() - t0 >= 180);
  assert.equal(k.fired, true);
  assert.equal(await killAfter(child.pid!, 0).done, false, "a gone process is not signalled");
  const a = makeRng(42);
  const b = makeRng(42);
  const xs = Array.from({ length: 5 }, () => a.int(0, 1000));
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.int(0, 1000)));
  assert.deepEqual(makeRng(7).shuffle([1, 2, 3, 4]).sort(), [1, 2, 3, 4]);
});
