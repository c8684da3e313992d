/**
 * The seed scenario through CRI (containerd issues 7496/8931): a pod's container exits with 3
 * while the shim's umount2 is delayed 15 s by strace (IO pressure on the rootfs unmount). The exit
 * is visible at once with its real code, Stop/RemovePodSandbox succeed, and shortly after no
 * shim, mount, netns or bundle of the pod is left.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, mkdir } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients } from "./cri-client.js";
import { podConfig, ctrConfig } from "./cri-helpers.js";
import { isAlive } from "../../src/util/proc.js";
import { listNetns } from "../../src/cni/netns.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { bundlePath } from "../../src/runtime/bundle.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (p: string) => access(p).then(() => true, () => false);

test("seed scenario via CRI: exit 3 under a 15 s umount2 stall", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  let strace: ReturnType<typeof spawn> | undefined;
  t.after(async () => {
    close();
    if (strace?.pid && strace.exitCode === null) strace.kill("SIGKILL");
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const pod = (await call(runtime, "RunPodSandbox", { config: podConfig("seed", logDir) })).pod_sandbox_id;
  const shim = d.meta.shims.list().find((s) => s.id === pod)!;
  assert.ok(shim?.pid, "the pod has its own shim");
  env.shimPids.add(shim.pid!);
  const c = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("seed", ["sh", "-c", "sleep 3; exit 3"]) }))
    .container_id;
  await call(runtime, "StartContainer", { container_id: c });
  // Attached once the container runs (runc's own set-up unmounts would take the stall otherwise).
  strace = spawn(
    "strace",
    ["-f", "-qq", "-o", "/dev/null", "-e", "trace=umount2", "-e", "inject=umount2:delay_enter=15s:when=1", "-p", String(shim.pid)],
    { stdio: "ignore" },
  );
  await sleep(1000); // let strace attach to every thread
  let seenAt = 0;
  let st;
  for (const end = Date.now() + 10_000; Date.now() < end; await sleep(20)) {
    st = (await call(runtime, "ContainerStatus", { container_id: c })).status;
    if (st.state === "CONTAINER_EXITED") {
      seenAt = Date.now();
      break;
    }
  }
  assert.ok(seenAt, "the exit became visible");
  assert.equal(st.exit_code, 3);
  const lagMs = seenAt - Number(BigInt(st.finished_at) / 1_000_000n);
  assert.ok(lagMs < 1000, `EXITED visible ${lagMs} ms after the exit`);

  // The container's teardown is stuck in the shim's umount2; the pod still stops and goes away.
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  // Both return at once (removal is daemon work); the stalled teardown keeps the shim a while,
  // which shows the stall was really injected.
  await sleep(2000);
  assert.ok(await isAlive(shim.pid!), "the shim is still busy in the stalled umount2 (was it injected?)");
  assert.equal((await call(runtime, "ListPodSandbox", {})).items.length, 0);

  // The shim going is not the end: the pod's removal goes on after it (netns, /dev/shm, pod
  // dir), so wait for every leftover to be gone, within 30 s of the exit.
  const bundles = [pod, c].map((id) => bundlePath(env.cfg.state, env.cfg.namespace, id));
  const leftovers = async () => ({
    shimAlive: await isAlive(shim.pid!),
    mounts: await mountsUnder(env.dir),
    netns: (await listNetns()).filter((n) => n.includes(pod)),
    bundles: (await Promise.all(bundles.map(async (b) => ((await exists(b)) ? b : "")))).filter(Boolean),
    shimRecords: d.meta.shims.list().map((s) => s.id),
  });
  const clean = { shimAlive: false, mounts: [], netns: [], bundles: [], shimRecords: [] };
  const deadline = seenAt + 30_000;
  let left = await leftovers();
  while (JSON.stringify(left) !== JSON.stringify(clean) && Date.now() < deadline) {
    await sleep(200);
    left = await leftovers();
  }
  assert.deepEqual(left, clean, "nothing of the pod is left within 30 s of the exit");
});
