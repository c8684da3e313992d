/**
 * `skiff doctor` against a real skiffd process with one live pod and container: an orphan shim
 * (started straight through the shim binary, with no record), an overlay mount under the state
 * dir and a netns named like skiff's are found, `--repair` removes exactly them, the live
 * container still runs and answers ExecSync, and a second check is clean.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import type * as net from "node:net";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { makeEnv, cleanupEnv, spawnDaemon, startDaemon, stopDaemon } from "./harness.js";
import { call, criClients } from "./cri-client.js";
import { ctrConfig, podConfig, waitState } from "./cri-helpers.js";
import { createNetns, listNetns, netnsNameForPod, removeNetns } from "../../src/cni/netns.js";
import { DebugClient } from "../../src/daemon/debug-client.js";
import { shimsOfNamespace } from "../../src/doctor/host-linux.js";
import type { DoctorReport } from "../../src/doctor/types.js";
import type { DoctorMetrics } from "../../src/doctor/doctor.js";
import { mkfifo, openFifoReader } from "../../src/runtime/fifo.js";
import { mountsUnder, unmountAll } from "../../src/runtime/mount-linux.js";
import { SANDBOX_ID_ANNOTATION } from "../../src/runtime/shim-manager.js";
import { bundlePath, createBundle } from "../../src/runtime/bundle.js";
import { bindRootfs, defaultSpec } from "../../src/oci/spec.js";
import { startShimProcess } from "../../src/runtime/shim-binary.js";
import { run, runChecked } from "../../src/util/exec.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";

const cli = path.resolve(import.meta.dirname, "../../src/cmd/skiff.ts");
const skiff = (socket: string, ...args: string[]) => run(process.execPath, ["--import", "tsx", cli, "--debug-socket", socket, ...args]);

test("skiff doctor finds an orphan shim, mount and netns, repairs them, and leaves the live pod alone", { timeout: 180_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const daemon = await spawnDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  const { cfg } = env;
  const orphanGroup = "doctor-orphan";
  const orphanHome = path.join(cfg.state, "shims", cfg.namespace, orphanGroup);
  const ovl = path.join(cfg.state, "doctor-ovl");
  const orphanNetns = netnsNameForPod(`${cfg.namespace}-doctor-orphan`);
  let orphanShimPid = 0;
  let shimLog: net.Socket | undefined;
  t.after(async () => {
    close();
    // What the test made by hand, in case a repair did not happen (by PID / exact path / name).
    if (orphanShimPid && (await isAlive(orphanShimPid))) {
      process.kill(orphanShimPid, "SIGKILL");
      await waitForExit(orphanShimPid, 3000);
    }
    shimLog?.destroy();
    await unmountAll(ovl).catch(() => {});
    await removeNetns(orphanNetns).catch(() => {});
    await stopDaemon(daemon);
    assert.deepEqual(await cleanupEnv(env), []);
  });
  const sock = cfg.debugSocket;

  // A live pod with a long-running container.
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir, { recursive: true });
  const { pod_sandbox_id: pod } = await call(runtime, "RunPodSandbox", { config: podConfig("doc1", logDir) });
  const { container_id: ctr } = await call(runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: ctrConfig("c1", ["sleep", "3600"]),
    sandbox_config: podConfig("doc1", logDir),
  });
  await call(runtime, "StartContainer", { container_id: ctr });
  await waitState(runtime, ctr, "CONTAINER_RUNNING");

  const first = await skiff(sock, "doctor");
  assert.equal(first.code, 0, `a consistent host is clean: ${first.stdout}${first.stderr}`);
  assert.match(first.stdout.toString(), /no drift/);

  // 1. A shim of skiff's namespace that no record knows (its home as the shim manager makes one).
  await mkdir(orphanHome, { recursive: true });
  await writeFile(path.join(orphanHome, "config.json"), JSON.stringify({ annotations: { [SANDBOX_ID_ANNOTATION]: orphanGroup } }));
  await mkfifo(path.join(orphanHome, "log"));
  shimLog = await openFifoReader(path.join(orphanHome, "log"), { keepOpen: true });
  await startShimProcess(
    { binary: cfg.runtimes.runc!.shim, namespace: cfg.namespace, daemonAddress: cfg.socket, ttrpcAddress: `${cfg.socket}.ttrpc` },
    { id: orphanGroup, cwd: orphanHome, timeoutMs: 10_000 },
  );
  orphanShimPid = (await shimsOfNamespace(cfg.namespace)).find((s) => s.group === orphanGroup)?.pid ?? 0;
  assert.ok(orphanShimPid > 0, "the orphan shim runs");
  // 2. An overlay mount under the state dir.
  for (const d of ["lower", "upper", "work", "merged"]) await mkdir(path.join(ovl, d), { recursive: true });
  await runChecked("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${ovl}/lower,upperdir=${ovl}/upper,workdir=${ovl}/work`, `${ovl}/merged`]);
  // 3. A netns named like skiff's pods' ones.
  await createNetns(orphanNetns);

  const found = await skiff(sock, "doctor", "-o", "json");
  assert.equal(found.code, 1, `drift found and not repaired exits 1: ${found.stderr}`);
  const report = JSON.parse(found.stdout.toString()) as DoctorReport;
  const got = report.findings.map((f) => `${f.kind} ${f.object}`).sort();
  assert.deepEqual(got, [
    `orphan-mount ${ovl}/merged`,
    `orphan-netns ${orphanNetns}`,
    `orphan-shim pid ${orphanShimPid} (group ${orphanGroup})`,
    `orphan-shim-home ${orphanHome}`,
  ]);
  assert.deepEqual(report.repairs, []);
  const text = await skiff(sock, "doctor");
  assert.equal(text.code, 1);
  assert.match(text.stdout.toString(), new RegExp(`orphan-shim +pid ${orphanShimPid} \\(group ${orphanGroup}\\)`));
  assert.match(text.stdout.toString(), /4 finding\(s\); run with --repair/);

  const fixed = await skiff(sock, "doctor", "--repair", "-o", "json");
  const repaired = JSON.parse(fixed.stdout.toString()) as DoctorReport;
  assert.deepEqual(
    repaired.repairs.map((r) => [r.kind, r.outcome]).sort(),
    [["orphan-mount", "repaired"], ["orphan-netns", "repaired"], ["orphan-shim", "repaired"], ["orphan-shim-home", "repaired"]],
    JSON.stringify(repaired.repairs),
  );
  assert.equal(fixed.code, 0, fixed.stderr.toString());
  assert.equal(await isAlive(orphanShimPid), false, "the orphan shim is gone");
  assert.deepEqual(await mountsUnder(ovl), [], "the orphan mount is gone");
  assert.ok(!(await listNetns()).includes(orphanNetns), "the orphan netns is gone");

  // The live pod and container are untouched.
  await waitState(runtime, ctr, "CONTAINER_RUNNING", 1000);
  const e = await call(runtime, "ExecSync", { container_id: ctr, cmd: ["echo", "still here"] });
  assert.equal(e.stdout.toString(), "still here\n");
  assert.equal((await call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod })).status.state, "SANDBOX_READY");

  const again = await skiff(sock, "doctor");
  assert.equal(again.code, 0, `second check is clean: ${again.stdout}`);
  const badFormat = await skiff(sock, "doctor", "-o", "yaml");
  assert.equal(badFormat.code, 1);
  assert.match(badFormat.stderr.toString(), /unknown output format "yaml".*invalid_argument/);
  const noDaemon = await skiff(path.join(env.dir, "no-such.sock"), "doctor");
  assert.equal(noDaemon.code, 1);
  assert.match(noDaemon.stderr.toString(), /cannot reach skiffd/);

  const c = await DebugClient.connect(sock);
  try {
    const m = await c.call<{ doctor: DoctorMetrics }>("Metrics");
    assert.equal(m.doctor.findings["orphan-shim"], 3, "seen by three checks, repaired by the last");
    assert.equal(m.doctor.repairs.repaired, 4);
    assert.equal(m.doctor.lastFindings, 0);
    await assert.rejects(c.call("Doctor", { repair: "yes" }), /repair must be a boolean/);
  } finally {
    c.close();
  }

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});

test("the doctor repairs crash leftovers (runc container, bundle, mount, pod dir) and a task whose shim died, through the daemon", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.doctor = { intervalMs: 0, repair: false, bundleGraceMs: 0 };
  const d = await startDaemon(env);
  const { cfg } = env;
  const runcRoot = path.join("/run/containerd/runc", cfg.namespace);
  const ghost = bundlePath(cfg.state, cfg.namespace, "ghost");
  t.after(async () => {
    await unmountAll(ghost).catch(() => {});
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const doctor = d.doctor!;
  const addContainer = (id: string, args: string[]) => d.containers.create({ id, spec: defaultSpec({ args }), rootfs: bindRootfs(env.rootfs) });

  // A live task that must survive every repair.
  addContainer("live", ["sleep", "3600"]);
  await d.tasks.create("live");
  await d.tasks.start("live");
  assert.deepEqual((await doctor.check({ repair: false })).findings, []);

  // What a crash between runc create and the task record leaves: bundle, rootfs mount, container.
  await createBundle(ghost, defaultSpec({ args: ["sleep", "3600"] }));
  await runChecked("mount", ["--bind", env.rootfs, path.join(ghost, "rootfs")]);
  const runc = spawn("runc", ["--root", runcRoot, "run", "-d", "--bundle", ghost, "ghost"], { stdio: "ignore" });
  assert.equal(await new Promise((r) => runc.on("exit", r)), 0, "runc run -d ghost");
  // A pod dir whose pod record is gone.
  await mkdir(path.join(cfg.root, "pods", "ghost-pod"), { recursive: true });
  // Records of a task whose shim died without the daemon noticing (its disconnect handling failed).
  const dead = spawn("true");
  const deadPid = dead.pid!;
  await new Promise((r) => dead.on("exit", r));
  addContainer("lost", ["sleep", "3600"]);
  d.meta.shims.create({
    id: "lost",
    runtime: "runc",
    binary: cfg.runtimes.runc!.shim,
    bundle: d.shims.homeDir("lost"),
    namespace: cfg.namespace,
    pid: deadPid,
    address: path.join(env.dir, "gone.sock"),
    state: "running",
  });
  await createBundle(bundlePath(cfg.state, cfg.namespace, "lost"), defaultSpec({ args: ["sleep", "3600"] }));
  // The file the shim's Create writes into the bundle (its `delete` action reads the runc binary from it).
  await writeFile(path.join(bundlePath(cfg.state, cfg.namespace, "lost"), "runtime"), "runc");
  d.meta.tasks.create({ id: "lost", shimId: "lost", bundle: bundlePath(cfg.state, cfg.namespace, "lost"), status: "running", pid: deadPid });

  const report = await doctor.check({ repair: false });
  assert.deepEqual(report.findings.map((f) => `${f.kind} ${f.object}`).sort(), [
    `orphan-bundle ${ghost}`,
    `orphan-mount ${ghost}/rootfs`,
    `orphan-pod-dir ${path.join(cfg.root, "pods", "ghost-pod")}`,
    "orphan-runc-container ghost",
    "task-without-shim lost",
  ]);
  assert.equal(report.clean, false);

  const fixed = await doctor.check({ repair: true });
  assert.deepEqual(
    fixed.repairs.map((r) => [r.kind, r.outcome]),
    [
      ["orphan-runc-container", "repaired"],
      ["task-without-shim", "repaired"],
      ["orphan-mount", "repaired"],
      ["orphan-bundle", "repaired"],
      ["orphan-pod-dir", "repaired"],
    ],
    JSON.stringify(fixed.repairs),
  );
  assert.equal(fixed.clean, true);
  // The lost task went through the daemon's teardown: exit decided, record tombstoned, shim record gone.
  const lost = d.tasks.info("lost");
  assert.equal(lost.status, "deleted");
  assert.equal(lost.exit?.exitStatus, 255);
  assert.equal(d.meta.shims.find("lost"), undefined);
  const left = (await run("runc", ["--root", runcRoot, "list", "-q"])).stdout.toString().split("\n").filter(Boolean);
  assert.deepEqual(left, ["live"]);
  assert.deepEqual(await mountsUnder(ghost), []);
  assert.equal((await d.tasks.state("live")).status, "running");
  assert.deepEqual((await doctor.check({ repair: false })).findings, []);

  await d.tasks.delete("live", { force: true, signal: AbortSignal.timeout(20_000) });
  await d.containers.delete("live");
  await d.containers.delete("lost");
});
