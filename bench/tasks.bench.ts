/**
 * Runtime-core benchmark: task create+start and kill+delete through skiff (real shim, real runc)
 * against raw `runc run -d` / `runc delete -f` of an equivalent bundle, and the daemon's RSS
 * with 50 running tasks. Prints a table; asserts nothing.
 *
 *   node --import tsx bench/tasks.bench.ts [iterations=15]
 */
import { mkdir, writeFile, rm } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, startDaemon, cleanupEnv } from "../test/integration/harness.js";
import { bindRootfs, defaultSpec } from "../src/oci/spec.js";
import { spawn } from "node:child_process";
import { run, runChecked } from "../src/util/exec.js";
import { machine } from "./machine.js";

/** `runc run -d` with stdio detached: the container would otherwise hold our pipes open. */
function runcRunDetached(root: string, bundle: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn("runc", ["--root", root, "run", "-d", "--bundle", bundle, id], { stdio: "ignore" });
    c.on("error", reject);
    c.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`runc run ${id}: exit ${code}`))));
  });
}

const N = Number(process.argv[2] ?? 15);

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p99: q(0.99) };
}
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

const env = await makeEnv("skiff-bench-");
const d = await startDaemon(env);
const rows: [string, number, number, string][] = [];
let rootRunc = "";
try {
  // skiff: create+start, kill+delete (each task gets its own shim, as an ungrouped container).
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < N; i++) {
    const id = `b${i}`;
    d.containers.create({ id, spec: defaultSpec({ args: ["sleep", "1000"] }), rootfs: bindRootfs(env.rootfs) });
    let t0 = process.hrtime.bigint();
    await d.tasks.create(id);
    await d.tasks.start(id);
    up.push(ms(t0));
    t0 = process.hrtime.bigint();
    await d.tasks.kill(id, 9);
    await d.tasks.wait(id);
    await d.tasks.delete(id);
    down.push(ms(t0));
    await d.containers.delete(id);
  }

  // raw runc on an equivalent bundle (rootfs bind-mounted by hand, like the shim does).
  rootRunc = path.join(env.dir, "runc-root");
  const rawUp: number[] = [];
  const rawDown: number[] = [];
  for (let i = 0; i < N; i++) {
    const b = path.join(env.dir, `raw${i}`);
    await mkdir(path.join(b, "rootfs"), { recursive: true });
    await writeFile(path.join(b, "config.json"), JSON.stringify(defaultSpec({ args: ["sleep", "1000"] })));
    let t0 = process.hrtime.bigint();
    await runChecked("mount", ["--bind", env.rootfs, path.join(b, "rootfs")]);
    await runcRunDetached(rootRunc, b, `raw${i}`);
    rawUp.push(ms(t0));
    t0 = process.hrtime.bigint();
    await runChecked("runc", ["--root", rootRunc, "kill", `raw${i}`, "9"]);
    await runChecked("runc", ["--root", rootRunc, "delete", "-f", `raw${i}`]); // -f waits for the kill
    await runChecked("umount", [path.join(b, "rootfs")]);
    rawDown.push(ms(t0));
    await rm(b, { recursive: true, force: true });
  }
  const su = stats(up), sd = stats(down), ru = stats(rawUp), rd = stats(rawDown);
  rows.push(["task create+start", su.p50, su.p99, `${(su.p50 / ru.p50).toFixed(2)}x runc run -d`]);
  rows.push(["runc run -d (raw)", ru.p50, ru.p99, ""]);
  rows.push(["task kill+wait+delete (shim gone)", sd.p50, sd.p99, `${(sd.p50 / rd.p50).toFixed(2)}x runc kill+delete`]);
  rows.push(["runc kill+delete -f (raw)", rd.p50, rd.p99, ""]);

  // Daemon RSS with 50 running tasks (in one group, as a pod would be).
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 50; i++) {
    const id = `m${i}`;
    d.containers.create({ id, spec: defaultSpec({ args: ["sleep", "1000"] }), rootfs: bindRootfs(env.rootfs), sandboxId: "memgroup" });
    await d.tasks.create(id);
    await d.tasks.start(id);
  }
  global.gc?.();
  const rss50 = process.memoryUsage().rss;
  rows.push(["process RSS, 50 running tasks (MiB)", rss50 / 2 ** 20, rss50 / 2 ** 20, `+${((rss50 - rss0) / 2 ** 20).toFixed(1)} MiB over idle`]);
  for (let i = 0; i < 50; i++) await d.tasks.delete(`m${i}`, { force: true });
  await run("true", []);
} finally {
  // Raw runc containers and bind mounts of a failed run are ours: remove them by id and path.
  if (rootRunc) {
    const ids = (await run("runc", ["--root", rootRunc, "list", "-q"])).stdout.toString().split("\n").filter(Boolean);
    for (const id of ids) await run("runc", ["--root", rootRunc, "delete", "-f", id]);
  }
  const left = await cleanupEnv(env, d);
  if (left.length) console.error("leftovers:", left);
}

console.log(`\nskiff runtime core — ${N} iterations, ${new Date().toISOString()}, ${machine()}`);
console.log("| operation | p50 ms | p99 ms | ratio |\n|---|---:|---:|---|");
for (const [name, p50, p99, ratio] of rows) console.log(`| ${name} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${ratio} |`);
