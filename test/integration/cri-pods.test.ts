/**
 * Pods and containers through the CRI socket, driven by the independent grpc-js client:
 * the whole lifecycle (pod, container that prints and exits 3, its CRI log, ExecSync incl. a
 * timeout, stop, remove), name reservation, and nothing left behind afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, mkdir } from "node:fs/promises";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon, noteShims } from "./harness.js";
import { call, criClients, rejectsWith } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import { listNetns } from "../../src/cni/netns.js";

test("CRI pod and container lifecycle end to end", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, image, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs", "pod1");
  await mkdir(logDir, { recursive: true });

  const st = await call(runtime, "Status", {});
  assert.deepEqual(
    st.status.conditions.map((c: { type: string; status: boolean }) => [c.type, c.status]),
    [["RuntimeReady", true], ["NetworkReady", true]],
  );
  const img = await call(image, "ImageStatus", { image: { image: "busybox" } }).catch(() => undefined);
  void img; // image RPCs are covered by cri-images.test.ts

  const { pod_sandbox_id: pod } = await call(runtime, "RunPodSandbox", { config: podConfig("pod1", logDir) });
  assert.match(pod, /^[0-9a-f]{64}$/);
  noteShims(env, d);
  await rejectsWith(call(runtime, "RunPodSandbox", { config: podConfig("pod1", logDir) }), grpc.status.ALREADY_EXISTS, new RegExp(pod));

  const ps = await call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod });
  assert.equal(ps.status.state, "SANDBOX_READY");
  assert.equal(ps.status.metadata.name, "pod1");
  const prefix = env.cfg.cni.defaultSubnet.split(".").slice(0, 3).join(".") + ".";
  assert.ok(ps.status.network.ip.startsWith(prefix), `pod ip ${ps.status.network.ip} in ${env.cfg.cni.defaultSubnet}`);
  assert.deepEqual(ps.status.labels, { app: "pod1" });

  // A container that prints and exits 3.
  const { container_id: c1 } = await call(runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: ctrConfig("c1", ["sh", "-c", "echo hello; echo oops >&2; hostname; exit 3"]),
    sandbox_config: podConfig("pod1", logDir),
  });
  assert.equal((await call(runtime, "ContainerStatus", { container_id: c1 })).status.state, "CONTAINER_CREATED");
  await rejectsWith(
    call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("c1", ["true"]) }),
    grpc.status.ALREADY_EXISTS,
    new RegExp(c1),
  );
  await call(runtime, "StartContainer", { container_id: c1 });
  const s1 = await waitState(runtime, c1, "CONTAINER_EXITED");
  assert.equal(s1.exit_code, 3);
  assert.equal(s1.reason, "Error");
  assert.ok(BigInt(s1.finished_at) >= BigInt(s1.started_at) && BigInt(s1.started_at) > 0n);
  assert.equal(s1.log_path, path.join(logDir, "c1.log"));
  // The log is complete once the exit is handled (the shim closes the FIFOs after copying).
  let logText = "";
  for (let i = 0; i < 50 && !logText.includes("pod1"); i++) {
    logText = await readFile(path.join(logDir, "c1.log"), "utf8").catch(() => "");
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = logText.trim().split("\n").map((l) => l.replace(/^\S+ /, ""));
  assert.deepEqual(lines.sort(), ["stderr F oops", "stdout F hello", "stdout F pod1"]);
  assert.match(logText, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) /);
  await rejectsWith(call(runtime, "ExecSync", { container_id: c1, cmd: ["true"] }), grpc.status.FAILED_PRECONDITION, new RegExp(c1));

  // A long-running container: exec, timeout, stop with grace period.
  const { container_id: c2 } = await call(runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: ctrConfig("c2", ["sh", "-c", "trap '' TERM; sleep 3600 & wait; wait"]),
  });
  await call(runtime, "StartContainer", { container_id: c2 });
  await waitState(runtime, c2, "CONTAINER_RUNNING");
  const e1 = await call(runtime, "ExecSync", { container_id: c2, cmd: ["sh", "-c", "echo hi; echo there >&2"] });
  assert.equal(e1.stdout.toString(), "hi\n");
  assert.equal(e1.stderr.toString(), "there\n");
  assert.equal(e1.exit_code, 0);
  // Output past the cap is dropped (and drained, so the command finishes); both streams at the
  // cap still fit one 16 MiB message.
  const cap = env.cfg.cri.execSyncMaxOutputBytes;
  const big = await call(runtime, "ExecSync", {
    container_id: c2,
    cmd: ["sh", "-c", `head -c ${cap + 100000} /dev/zero; head -c ${cap + 5} /dev/zero >&2; exit 4`],
  });
  assert.equal(big.stdout.length, cap);
  assert.equal(big.stderr.length, cap);
  assert.equal(big.exit_code, 4);
  const e2 = await call(runtime, "ExecSync", { container_id: c2, cmd: ["sh", "-c", "exit 5"] });
  assert.equal(e2.exit_code, 5);
  const t0 = Date.now();
  const e3 = await call(runtime, "ExecSync", { container_id: c2, cmd: ["sh", "-c", "echo before; sleep 10"], timeout: 1 });
  assert.ok(Date.now() - t0 < 5000, `timed-out exec took ${Date.now() - t0} ms`);
  assert.equal(e3.stdout.toString(), "before\n");
  assert.notEqual(e3.exit_code, 0);
  // Only the exec was killed: the container still runs and answers.
  assert.equal((await call(runtime, "ContainerStatus", { container_id: c2 })).status.state, "CONTAINER_RUNNING");
  assert.equal((await call(runtime, "ExecSync", { container_id: c2, cmd: ["echo", "alive"] })).stdout.toString(), "alive\n");

  const listed = await call(runtime, "ListContainers", { filter: { pod_sandbox_id: pod, state: { state: "CONTAINER_RUNNING" } } });
  assert.deepEqual(listed.containers.map((c: { id: string }) => c.id), [c2]);
  const byLabel = await call(runtime, "ListContainers", { filter: { label_selector: { c: "c1" } } });
  assert.deepEqual(byLabel.containers.map((c: { id: string }) => c.id), [c1]);
  const pods = await call(runtime, "ListPodSandbox", { filter: { label_selector: { app: "pod1" } } });
  assert.deepEqual(pods.items.map((p: { id: string }) => p.id), [pod]);
  assert.equal((await call(runtime, "ListPodSandbox", { filter: { label_selector: { app: "other" } } })).items.length, 0);

  // The shell ignores SIGTERM: StopContainer kills it after the 1 s grace period.
  const t1 = Date.now();
  await call(runtime, "StopContainer", { container_id: c2, timeout: 1 });
  assert.ok(Date.now() - t1 >= 900, "the grace period was honoured");
  const s2 = (await call(runtime, "ContainerStatus", { container_id: c2 })).status;
  assert.equal(s2.state, "CONTAINER_EXITED");
  assert.equal(s2.exit_code, 137);
  // Idempotent stops and removes.
  await call(runtime, "StopContainer", { container_id: c2, timeout: 0 });
  await call(runtime, "StopContainer", { container_id: "0".repeat(64), timeout: 0 });
  await call(runtime, "RemoveContainer", { container_id: "0".repeat(64) });
  await call(runtime, "RemoveContainer", { container_id: c1 });
  await rejectsWith(call(runtime, "ContainerStatus", { container_id: c1 }), grpc.status.NOT_FOUND, new RegExp(c1));

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  const stopped = await call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod });
  assert.equal(stopped.status.state, "SANDBOX_NOTREADY");
  assert.equal(stopped.status.network.ip, "");
  // The network and netns go in the background once the pod is NOTREADY.
  const netnsGone = Date.now() + 10_000;
  while ((await listNetns()).some((n) => n.includes(pod)) && Date.now() < netnsGone) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!(await listNetns()).some((n) => n.includes(pod)), "netns removed after stop");
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  await rejectsWith(call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod }), grpc.status.NOT_FOUND, new RegExp(pod));
  assert.equal((await call(runtime, "ListContainers", {})).containers.length, 0);
  assert.equal((await call(runtime, "ListPodSandbox", {})).items.length, 0);
  // The pod's shim is gone once its last task is torn down.
  const end = Date.now() + 10_000;
  while (d.meta.shims.list().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(d.meta.shims.list(), []);
});

test("ReopenContainerLog: after a rotation the output goes to the new file, nothing lost", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const cfg = podConfig("rot", logDir);
  const pod = (await call(runtime, "RunPodSandbox", { config: cfg })).pod_sandbox_id;
  const c = (
    await call(runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: ctrConfig("ticker", ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"]),
      sandbox_config: cfg,
    })
  ).container_id;
  await call(runtime, "StartContainer", { container_id: c });
  const file = path.join(logDir, "ticker.log");
  await new Promise((r) => setTimeout(r, 500));
  const { rename } = await import("node:fs/promises");
  await rename(file, `${file}.1`); // what kubelet's log rotation does before asking to reopen
  await call(runtime, "ReopenContainerLog", { container_id: c });
  await new Promise((r) => setTimeout(r, 500));
  await call(runtime, "StopContainer", { container_id: c, timeout: 0 });
  const ticks = (text: string) => text.trim().split("\n").map((l) => Number(/stdout F tick (\d+)$/.exec(l)?.[1]));
  const before = ticks(await readFile(`${file}.1`, "utf8"));
  const after = ticks(await readFile(file, "utf8"));
  assert.ok(before.length > 3 && after.length > 3, `${before.length} lines before, ${after.length} after the reopen`);
  assert.deepEqual([...before, ...after], [...before, ...after].map((_, i) => i), "consecutive across the two files");
  await rejectsWith(call(runtime, "ReopenContainerLog", { container_id: c }), grpc.status.FAILED_PRECONDITION, new RegExp(c));
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});

test("/dev/shm is shared by the containers of a pod (one 64 MiB tmpfs), the host's with host IPC, and unmounted with the pod", { timeout: 90_000 }, async (t) => {
  const { criFixture, runPod } = await import("./cri-helpers.js");
  const { mountsUnder } = await import("../../src/runtime/mount-linux.js");
  const { writeFile: write, rm } = await import("node:fs/promises");
  const { env, runtime, logDir } = await criFixture(t);
  const exec = async (id: string, cmd: string) => {
    const r = await call(runtime, "ExecSync", { container_id: id, cmd: ["sh", "-c", cmd], timeout: 10 });
    return { code: r.exit_code as number, out: Buffer.from(r.stdout).toString().trim() };
  };
  const { pod, start } = await runPod(runtime, "shm", logDir);
  const writer = await start("writer", ["sh", "-c", "echo from-writer > /dev/shm/token; sleep 600"]);
  const reader = await start("reader", ["sleep", "600"]);
  for (const end = Date.now() + 5000; (await exec(reader, "cat /dev/shm/token 2>/dev/null")).out !== "from-writer"; ) {
    assert.ok(Date.now() < end, "the reader never saw the writer's /dev/shm/token");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await exec(writer, "echo back > /dev/shm/reply && echo ok")).out, "ok");
  assert.equal((await exec(reader, "cat /dev/shm/reply")).out, "back", "both ways");
  const line = (await exec(reader, "grep ' /dev/shm ' /proc/mounts")).out;
  assert.match(line, /^shm \/dev\/shm tmpfs rw,nosuid,nodev,noexec,.*size=65536k/, line);
  const podDir = path.join(env.cfg.root, "pods", pod);
  assert.deepEqual(await mountsUnder(podDir), [path.join(podDir, "shm")], "the pod's tmpfs, in its dir");

  // Host IPC: the host's /dev/shm itself.
  const mark = `skiff-test-${process.pid}-${Date.now()}`;
  await write(`/dev/shm/${mark}`, "host");
  t.after(() => rm(`/dev/shm/${mark}`, { force: true }));
  const host = await runPod(runtime, "shm-host", logDir, { linux: { security_context: { namespace_options: { ipc: 2 } } } });
  const h = await host.start("h", ["sleep", "600"]);
  assert.equal((await exec(h, `cat /dev/shm/${mark}`)).out, "host");
  assert.equal((await exec(reader, `test -e /dev/shm/${mark} && echo leak || echo private`)).out, "private", "the pod's own is not the host's");
  assert.deepEqual(await mountsUnder(path.join(env.cfg.root, "pods", host.pod)), [], "no tmpfs of its own");

  for (const p of [pod, host.pod]) {
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: p });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: p });
  }
  for (const end = Date.now() + 15_000; (await mountsUnder(podDir)).length > 0; await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < end, "the pod's /dev/shm is still mounted after its removal");
  }
});

test("ExecSync calls cut by their client's deadline at any point leave no exec process or record", { timeout: 90_000 }, async (t) => {
  const { criFixture, runPod } = await import("./cri-helpers.js");
  const { readdir, readFile: read } = await import("node:fs/promises");
  const { d, runtime, logDir } = await criFixture(t);
  const { pod, start } = await runPod(runtime, "cut-exec", logDir);
  const c = await start("c", ["sleep", "600"]);
  // A number no other process sleeps for: its processes are the execs of this test.
  const marker = String(70_000 + (process.pid % 10_000));
  const sleepers = async () => {
    let n = 0;
    for (const p of await readdir("/proc")) {
      if (/^\d+$/.test(p) && (await read(`/proc/${p}/cmdline`, "utf8").catch(() => "")) === `sleep\0${marker}\0`) n++;
    }
    return n;
  };
  let cut = 0;
  for (let i = 0; i < 40; i++) {
    // Deadlines from 1 to 79 ms: they land before, during and after the shim's Exec and Start.
    const deadline = new Date(Date.now() + 1 + ((i * 7) % 40) * 2);
    await new Promise<void>((resolve) =>
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (runtime as any).ExecSync({ container_id: c, cmd: ["sleep", marker], timeout: 0 }, { deadline }, (err: grpc.ServiceError | null) => {
        if (err?.code === grpc.status.DEADLINE_EXCEEDED) cut++;
        resolve();
      }),
    );
  }
  assert.equal(cut, 40, "every call ended by its deadline");
  // The daemon finishes each cut exec's cleanup on its own: none may stay running or recorded.
  for (const end = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const left = await sleepers();
    const records = d.meta.execs.list(c).length;
    if (left === 0 && records === 0) break;
    assert.ok(Date.now() < end, `${left} exec process(es) and ${records} exec record(s) left`);
  }
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});
