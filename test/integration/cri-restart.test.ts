/**
 * skiffd SIGKILLed with three pods — one container running, one exited, one exiting while the
 * daemon is down — and restarted: every pod and container reports its right state and real exit
 * code, the running one keeps running, is monitored and keeps logging, and everything removes
 * cleanly with no shim left. And a kill while a removed pod's network is still being torn down
 * in the background: the restarted daemon finishes it (CNI DEL, netns) and the name is free.
 * A start cut before the shim made the task leaves the container CREATED; and start-up removes
 * what no record explains (bundles, mounts, netns, pod, FIFO and shim dirs) but nothing of a
 * live pod.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { access, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, spawnDaemon, startDaemon, stopDaemon, shimPidsOfNamespace } from "./harness.js";
import { call, criClients } from "./cri-client.js";
import { podConfig, ctrConfig, runPod, waitState } from "./cri-helpers.js";
import { isAlive } from "../../src/util/proc.js";
import { createNetns, listNetns, netnsNameForPod } from "../../src/cni/netns.js";
import { bundlePath } from "../../src/runtime/bundle.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { runChecked } from "../../src/util/exec.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("SIGKILL of skiffd with running, exited and exiting containers", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  let child = await spawnDaemon(env);
  let clients = criClients(env.cfg.socket);
  t.after(async () => {
    clients.close();
    await stopDaemon(child);
    assert.deepEqual(await cleanupEnv(env), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir, { recursive: true });
  const pods: Record<string, string> = {};
  const ctrs: Record<string, string> = {};
  const scripts: Record<string, string> = {
    running: "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    exited: "echo bye; exit 4",
    exiting: "echo started; sleep 3; exit 7",
  };
  for (const [name, script] of Object.entries(scripts)) {
    const { runtime } = clients;
    pods[name] = (await call(runtime, "RunPodSandbox", { config: podConfig(name, logDir) })).pod_sandbox_id;
    ctrs[name] = (
      await call(runtime, "CreateContainer", { pod_sandbox_id: pods[name], config: ctrConfig(name, ["sh", "-c", script]) })
    ).container_id;
    await call(runtime, "StartContainer", { container_id: ctrs[name] });
  }
  await waitState(clients.runtime, ctrs.exited!, "CONTAINER_EXITED");
  for (const p of await shimPidsOfNamespace(env.cfg.namespace)) env.shimPids.add(p);
  assert.equal(env.shimPids.size, 3, "one shim per pod");

  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  clients.close();
  await sleep(4000); // "exiting" exits with 7 while skiffd is down
  child = await spawnDaemon(env);
  clients = criClients(env.cfg.socket);
  const { runtime } = clients;

  const list = await call(runtime, "ListPodSandbox", {});
  assert.equal(list.items.length, 3);
  for (const p of list.items) assert.equal(p.state, "SANDBOX_READY", `pod ${p.metadata.name}`);
  const st = async (name: string) => (await call(runtime, "ContainerStatus", { container_id: ctrs[name] })).status;
  assert.equal((await st("running")).state, "CONTAINER_RUNNING");
  const ex = await st("exited");
  assert.deepEqual([ex.state, ex.exit_code, ex.reason], ["CONTAINER_EXITED", 4, "Error"]);
  const late = await waitState(runtime, ctrs.exiting!, "CONTAINER_EXITED", 10_000);
  assert.equal(late.exit_code, 7, "the real exit code of an exit during the downtime");
  assert.equal((await call(runtime, "ExecSync", { container_id: ctrs.running, cmd: ["echo", "ok"] })).stdout.toString(), "ok\n");

  // The running container's log continues without a gap: tick numbers are consecutive.
  await sleep(1000);
  const ticks = (await readFile(path.join(logDir, "running.log"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => Number(/stdout F tick (\d+)$/.exec(l)?.[1]));
  assert.ok(ticks.length > 20, `${ticks.length} ticks logged`);
  ticks.forEach((n, i) => assert.equal(n, i, `tick ${i} in the log`));
  assert.match(await readFile(path.join(logDir, "exiting.log"), "utf8"), /stdout F started/);

  // The running one is still monitored: stopping it records its exit.
  await call(runtime, "StopContainer", { container_id: ctrs.running, timeout: 0 });
  assert.equal((await st("running")).exit_code, 137);
  for (const id of Object.values(pods)) {
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: id });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: id });
  }
  assert.equal((await call(runtime, "ListContainers", {})).containers.length, 0);
  const end = Date.now() + 15_000;
  for (const pid of env.shimPids) while ((await isAlive(pid)) && Date.now() < end) await sleep(100);
  for (const pid of env.shimPids) assert.ok(!(await isAlive(pid)), `shim ${pid} shut down`);
  while ((await listNetns()).some((n) => n.includes(env.cfg.namespace)) && Date.now() < end) await sleep(100);
  assert.ok(!(await listNetns()).some((n) => n.includes(env.cfg.namespace)), "no netns left");
});

test("SIGKILL while a removed pod's network is still being torn down: the restarted daemon finishes it", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  // A last plugin in the chain whose DEL takes 3 s (DEL runs the chain in reverse, so it goes
  // first): the daemon is killed while the pod's network is half torn down.
  const binDir = path.join(env.dir, "cni-bin");
  await mkdir(binDir);
  const plugin = path.join(binDir, "skiff-test-slowdel");
  await writeFile(
    plugin,
    `#!${process.execPath}
let s = "";
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const c = JSON.parse(s || "{}");
  const cmd = process.env.CNI_COMMAND;
  if (cmd === "ADD") process.stdout.write(JSON.stringify(c.prevResult ?? { cniVersion: c.cniVersion }));
  else if (cmd === "DEL") setTimeout(() => {}, 3000);
  else if (cmd === "VERSION") process.stdout.write(JSON.stringify({ cniVersion: c.cniVersion ?? "1.0.0", supportedVersions: ["0.3.1", "0.4.0", "1.0.0"] }));
});
`,
    { mode: 0o755 },
  );
  env.cfg.cni.binDirs = [binDir, ...env.cfg.cni.binDirs];
  const confFile = path.join(env.cfg.cni.confDir, (await readdir(env.cfg.cni.confDir))[0]!);
  const conf = JSON.parse(await readFile(confFile, "utf8"));
  conf.plugins.push({ type: "skiff-test-slowdel" });
  await writeFile(confFile, JSON.stringify(conf));

  let child = await spawnDaemon(env);
  let clients = criClients(env.cfg.socket);
  t.after(async () => {
    clients.close();
    await stopDaemon(child);
    assert.deepEqual(await cleanupEnv(env), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir, { recursive: true });
  const pod = (await call(clients.runtime, "RunPodSandbox", { config: podConfig("slowdel", logDir) })).pod_sandbox_id;
  for (const p of await shimPidsOfNamespace(env.cfg.namespace)) env.shimPids.add(p);
  const ipamDir = path.join(env.dir, "ipam");
  const reservations = async () => {
    const out: string[] = [];
    for (const net of await readdir(ipamDir).catch(() => [] as string[])) {
      for (const f of await readdir(path.join(ipamDir, net)).catch(() => [] as string[])) {
        if ((await readFile(path.join(ipamDir, net, f), "utf8").catch(() => "")).includes(pod)) out.push(f);
      }
    }
    return out;
  };
  assert.equal((await reservations()).length, 1, "the pod holds one address");

  await call(clients.runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(clients.runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  assert.equal((await call(clients.runtime, "ListPodSandbox", {})).items.length, 0, "gone for CRI at once");
  await sleep(500);
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  clients.close();
  assert.equal((await reservations()).length, 1, "killed before host-local released the address");
  assert.ok((await listNetns()).some((n) => n.includes(pod)), "killed before the netns was removed");

  child = await spawnDaemon(env);
  clients = criClients(env.cfg.socket);
  assert.equal((await call(clients.runtime, "ListPodSandbox", {})).items.length, 0, "still gone after the restart");
  // The same name is free again at once.
  const again = (await call(clients.runtime, "RunPodSandbox", { config: podConfig("slowdel", logDir) })).pod_sandbox_id;
  assert.notEqual(again, pod);
  const end = Date.now() + 20_000;
  while (((await reservations()).length > 0 || (await listNetns()).some((n) => n.includes(pod))) && Date.now() < end) await sleep(200);
  assert.deepEqual(await reservations(), [], "the restarted daemon ran CNI DEL: the address is released");
  assert.ok(!(await listNetns()).some((n) => n.includes(pod)), "and removed the netns");
  const rules = (await runChecked("iptables-save", [])).stdout.toString();
  assert.ok(!rules.includes(pod), "no iptables rule of the removed pod left");
  await call(clients.runtime, "StopPodSandbox", { pod_sandbox_id: again });
  await call(clients.runtime, "RemovePodSandbox", { pod_sandbox_id: again });
  for (const p of await shimPidsOfNamespace(env.cfg.namespace)) env.shimPids.add(p);
  const gone = Date.now() + 15_000;
  for (const pid of env.shimPids) while ((await isAlive(pid)) && Date.now() < gone) await sleep(100);
  for (const pid of env.shimPids) assert.ok(!(await isAlive(pid)), `shim ${pid} shut down`);
});

/**
 * An in-process daemon with the built-in images that a test can restart gracefully (its shims
 * and containers keep running), with a CRI client that follows it and cleanup after `t`.
 */
async function restartableDaemon(t: { after: (fn: () => Promise<void>) => void }) {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const s = { env, d: await startDaemon(env), clients: criClients(env.cfg.socket), logDir: path.join(env.dir, "logs") };
  t.after(async () => {
    s.clients.close();
    assert.deepEqual(await cleanupEnv(env, s.d), []);
  });
  await mkdir(s.logDir);
  /** Closes the daemon, runs `meanwhile` while it is down, starts a new one. */
  const restart = async (meanwhile: () => Promise<void> = async () => {}) => {
    s.clients.close();
    await s.d.close();
    await meanwhile();
    s.d = await startDaemon(env);
    s.clients = criClients(env.cfg.socket);
  };
  return Object.assign(s, { restart, rt: () => s.clients.runtime });
}

test("a daemon killed during StartContainer before the shim made the task: the container stays CREATED and starts again", { timeout: 120_000 }, async (t) => {
  const f = await restartableDaemon(t);
  const { env } = f;
  const { pod, podCfg } = await runPod(f.rt(), "cut", f.logDir);
  const ctr = (await call(f.rt(), "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("cut", ["sh", "-c", "exit 3"]), sandbox_config: podCfg })).container_id as string;
  // What the crash leaves: the task's record (written before the shim's Create), no task in the shim.
  f.d.meta.tasks.create({ id: ctr, shimId: f.d.meta.shims.list()[0]!.id, bundle: bundlePath(env.cfg.state, env.cfg.namespace, ctr), status: "unknown" });
  await f.restart();
  assert.equal((await call(f.rt(), "ContainerStatus", { container_id: ctr })).status.state, "CONTAINER_CREATED", "it never ran: no exit to report");
  await call(f.rt(), "StartContainer", { container_id: ctr });
  const st = await waitState(f.rt(), ctr, "CONTAINER_EXITED");
  assert.equal(st.exit_code, 3, "its own exit code once it ran");
  await call(f.rt(), "StopPodSandbox", { pod_sandbox_id: pod });
  await call(f.rt(), "RemovePodSandbox", { pod_sandbox_id: pod });
});

test("start-up removes bundles, mounts, netns, pod dirs and FIFO dirs no record explains, and leaves a live pod alone", { timeout: 120_000 }, async (t) => {
  const f = await restartableDaemon(t);
  const { env } = f;
  const exists = (p: string) => access(p).then(() => true, () => false);
  const live = await runPod(f.rt(), "live", f.logDir);
  const ctr = await live.start("live", ["sleep", "3600"]);
  const livePodDir = path.join(env.cfg.root, "pods", live.pod);
  const liveNetns = (await listNetns()).filter((n) => n.includes(live.pod));
  assert.equal(liveNetns.length, 1);

  // What a crash at the wrong moment can leave behind with no record of it, made while the
  // daemon is down (shims and containers keep running across the restart).
  const ghost = "0123456789abcdef".repeat(4);
  const bundle = bundlePath(env.cfg.state, env.cfg.namespace, ghost);
  const podDir = path.join(env.cfg.root, "pods", ghost);
  const netns = netnsNameForPod(`${env.cfg.namespace}-${ghost}`);
  const fifoDir = path.join(env.cfg.state, "cri", "io", ghost);
  const shimHome = path.join(env.cfg.state, "shims", env.cfg.namespace, ghost);
  await f.restart(async () => {
    await mkdir(path.join(bundle, "rootfs"), { recursive: true });
    await writeFile(path.join(bundle, "config.json"), "{}");
    await runChecked("mount", ["-t", "tmpfs", "tmpfs", path.join(bundle, "rootfs")]);
    await mkdir(path.join(podDir, "shm"), { recursive: true });
    await runChecked("mount", ["-t", "tmpfs", "tmpfs", path.join(podDir, "shm")]);
    await writeFile(path.join(podDir, "hostname"), "ghost\n");
    await createNetns(netns);
    await mkdir(fifoDir, { recursive: true });
    await writeFile(path.join(fifoDir, "stdout"), "");
    await mkdir(shimHome, { recursive: true });
  });

  assert.deepEqual(await mountsUnder(bundle), [], "the orphan bundle's mount is gone");
  for (const p of [bundle, podDir, fifoDir, shimHome]) assert.equal(await exists(p), false, `${p} removed`);
  assert.ok(!(await listNetns()).includes(netns), "the orphan netns is removed");
  // The live pod: untouched, still running and reachable.
  assert.deepEqual(await mountsUnder(livePodDir), [path.join(livePodDir, "shm")], "the live pod keeps its /dev/shm");
  assert.deepEqual((await listNetns()).filter((n) => n.includes(live.pod)), liveNetns, "and its netns");
  assert.equal((await call(f.rt(), "ContainerStatus", { container_id: ctr })).status.state, "CONTAINER_RUNNING");
  assert.equal((await call(f.rt(), "ExecSync", { container_id: ctr, cmd: ["echo", "alive"] })).stdout.toString(), "alive\n");
  await call(f.rt(), "StopPodSandbox", { pod_sandbox_id: live.pod });
  await call(f.rt(), "RemovePodSandbox", { pod_sandbox_id: live.pod });
});
