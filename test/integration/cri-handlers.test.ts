/**
 * Runtime handlers through the CRI socket: a pod with a `crun` handler runs its pause and app
 * containers with crun, a pod with `runc` with runc (checked in each runtime's own state); an
 * unknown handler is refused naming it with nothing made; Status lists the handlers and
 * RuntimeConfig reports cgroupfs.
 *
 * crun (1.8) refuses every container on hybrid cgroup hosts whose v2 hierarchy has controllers
 * (this kind of machine). There the first test checks instead that the crun pod reached crun (its
 * refusal comes back as FailedPrecondition with crun's message, and the handler's binary ran
 * with the handler's root) and that the failed pod left nothing behind; the second moves the
 * (unused) v2 controllers to v1 hierarchies for its duration, as a host with every controller on
 * v1 has them, and runs a crun pod with a memory limit, then gives them back to v2.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFileSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon, noteShims, shimPidsOfNamespace } from "./harness.js";
import { call, criClients, rejectsWith } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import { listNetns } from "../../src/cni/netns.js";
import { run } from "../../src/util/exec.js";

const CRUN = "/usr/bin/crun";

function hybridWithV2Controllers(): boolean {
  try {
    return readFileSync("/sys/fs/cgroup/unified/cgroup.controllers", "utf8").trim() !== "";
  } catch {
    return false;
  }
}

/** Container ids in an OCI runtime's state dir. */
async function listIds(binary: string, root: string): Promise<string[]> {
  const r = await run(binary, ["--root", root, "list", "-q"]);
  return r.stdout.toString().split("\n").map((l) => l.trim()).filter(Boolean);
}

/** cleanupEnv, plus crun's state (cleanupEnv knows runc's only): what was left, then cleared. */
async function cleanupWithCrun(env: Parameters<typeof cleanupEnv>[0], d: Parameters<typeof cleanupEnv>[1], crunRoot: string): Promise<string[]> {
  const leftovers = await cleanupEnv(env, d);
  for (const id of await listIds(CRUN, crunRoot).catch(() => [])) {
    leftovers.push(`crun container ${id}`);
    await run(CRUN, ["--root", crunRoot, "delete", "-f", id]);
  }
  await rm(crunRoot, { recursive: true, force: true });
  return leftovers;
}

/** What a refused RunPodSandbox must not change: pods listed, shims, netns of this daemon. */
async function nothingMadeProbe(runtime: grpc.Client, namespace: string) {
  return {
    pods: ((await call(runtime, "ListPodSandbox", {})).items as { id: string }[]).map((p) => p.id).sort(),
    shims: (await shimPidsOfNamespace(namespace)).sort(),
    netns: (await listNetns()).filter((n) => n.includes(namespace)).sort(),
  };
}

test("runtime handlers: crun and runc pods run with their runtime; unknown handlers are refused", { timeout: 180_000 }, async (t) => {
  // In CI a missing prerequisite is a failure, not a skip.
  assert.ok(existsSync(CRUN), `${CRUN} is required (Debian package crun)`);
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  // As an operator configures it (the default config has it only where crun can run), through
  // a wrapper that records how the shim ran it.
  const crunUsable = !hybridWithV2Controllers();
  const binary = path.join(env.dir, "crun-logged");
  const invocations = path.join(env.dir, "crun-invocations");
  await writeFile(binary, `#!/bin/sh\necho "$@" >> ${invocations}\nexec ${CRUN} "$@"\n`);
  await chmod(binary, 0o755);
  env.cfg.runtimes.crun = { shim: "containerd-shim-runc-v2", binaryName: binary, runcRoot: "/run/containerd/crun" };
  const crunRoot = path.join("/run/containerd/crun", env.cfg.namespace);
  const runcRoot = path.join("/run/containerd/runc", env.cfg.namespace);
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupWithCrun(env, d, crunRoot), []);
  });

  const st = await call(runtime, "Status", {});
  const handlers = (st.runtime_handlers as { name: string; features: { user_namespaces: boolean } }[]).map((h) => h.name);
  assert.deepEqual(handlers, ["", "runc", "crun"]);
  assert.equal((await call(runtime, "RuntimeConfig", {})).linux.cgroup_driver, "CGROUPFS");

  const pods: Record<string, { pod: string; ctr: string }> = {};
  if (!crunUsable) {
    const before = await nothingMadeProbe(runtime, env.cfg.namespace);
    const logDir = path.join(env.dir, "logs", "crun");
    await mkdir(logDir, { recursive: true });
    await rejectsWith(
      call(runtime, "RunPodSandbox", { config: podConfig("pod-crun", logDir), runtime_handler: "crun" }),
      grpc.status.FAILED_PRECONDITION,
      /pod sandbox "default\/pod-crun".*cgroups in hybrid mode not supported/,
    );
    const ran = await readFile(invocations, "utf8");
    assert.match(ran, new RegExp(`--root ${crunRoot} .*\\bcreate\\b`), "the shim ran the handler's binary with its root");
    assert.deepEqual(await nothingMadeProbe(runtime, env.cfg.namespace), before, "the refused pod left nothing");
    assert.deepEqual(await listIds(CRUN, crunRoot).catch(() => []), []);
  }
  for (const handler of crunUsable ? ["crun", "runc"] : ["runc"]) {
    const logDir = path.join(env.dir, "logs", handler);
    await mkdir(logDir, { recursive: true });
    const config = podConfig(`pod-${handler}`, logDir);
    const { pod_sandbox_id: pod } = await call(runtime, "RunPodSandbox", { config, runtime_handler: handler });
    noteShims(env, d);
    const { container_id: ctr } = await call(runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: ctrConfig("app", ["sh", "-c", "echo started; sleep 3600"]),
      sandbox_config: config,
    });
    await call(runtime, "StartContainer", { container_id: ctr });
    await waitState(runtime, ctr, "CONTAINER_RUNNING");
    const ps = await call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod });
    assert.equal(ps.status.runtime_handler, handler);
    assert.equal(ps.status.state, "SANDBOX_READY");
    pods[handler] = { pod, ctr };
  }

  // Each runtime's own state holds exactly its pod's pause and app containers.
  const inRunc = await listIds("runc", runcRoot);
  assert.deepEqual(inRunc.sort(), [pods.runc!.pod, pods.runc!.ctr].sort(), "runc ran the runc pod");
  if (crunUsable) {
    const inCrun = await listIds(CRUN, crunRoot);
    assert.deepEqual(inCrun.sort(), [pods.crun!.pod, pods.crun!.ctr].sort(), "crun ran the crun pod");
    // And crun reports the app container running (its own view, not skiff's record).
    const state = JSON.parse((await run(CRUN, ["--root", crunRoot, "state", pods.crun!.ctr])).stdout.toString()) as { status: string };
    assert.equal(state.status, "running");
  }

  // An unknown handler: InvalidArgument naming it, and nothing made (no pod, shim, netns, state).
  const before = await nothingMadeProbe(runtime, env.cfg.namespace);
  const logDir = path.join(env.dir, "logs", "bad");
  await mkdir(logDir, { recursive: true });
  await rejectsWith(
    call(runtime, "RunPodSandbox", { config: podConfig("pod-bad", logDir), runtime_handler: "kata-nope" }),
    grpc.status.INVALID_ARGUMENT,
    /runtime handler "kata-nope" is not configured/,
  );
  assert.deepEqual(await nothingMadeProbe(runtime, env.cfg.namespace), before);
  // The name is not held either: the same pod with a known handler runs.
  const { pod_sandbox_id: again } = await call(runtime, "RunPodSandbox", { config: podConfig("pod-bad", logDir) });
  noteShims(env, d);
  assert.equal((await call(runtime, "PodSandboxStatus", { pod_sandbox_id: again })).status.runtime_handler, "");

  for (const id of [...Object.values(pods).map((p) => p.pod), again]) {
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: id });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: id });
  }
});

/**
 * Moves the controllers of a hybrid host's v2 hierarchy (unused there: nothing in its
 * subtree_control) to v1 hierarchies mounted at /sys/fs/cgroup/NAME, as a host with all
 * controllers on v1 has them; `restore` unmounts them again and waits until the kernel gave each
 * back to the v2 hierarchy (a v1 hierarchy lingers while a cgroup of it is still dying).
 */
async function controllersToV1(): Promise<{ moved: string[]; restore(): Promise<void> }> {
  const v2 = "/sys/fs/cgroup/unified";
  const controllers = (await readFile(path.join(v2, "cgroup.controllers"), "utf8")).trim().split(/\s+/).filter(Boolean);
  assert.equal((await readFile(path.join(v2, "cgroup.subtree_control"), "utf8")).trim(), "", "the v2 controllers are in use: cannot move them");
  const moved: string[] = [];
  const row = async (c: string) => (await readFile("/proc/cgroups", "utf8")).split("\n").find((l) => l.startsWith(`${c}\t`))?.split("\t") ?? [];
  const until = async (what: string, ok: () => Promise<boolean>, ms: number) => {
    for (const end = Date.now() + ms; !(await ok()); await new Promise((r) => setTimeout(r, 200))) {
      if (Date.now() > end) throw new Error(`cgroup controllers not restored: ${what}`);
    }
  };
  const restore = async () => {
    for (const c of moved) {
      const dir = `/sys/fs/cgroup/${c}`;
      // The containers' cgroups of this hierarchy die a little after their removal: only its
      // root left, then unmounting destroys the hierarchy and the controller returns to v2.
      await until(`${c} still has cgroups`, async () => Number((await row(c))[2]) <= 1, 30_000).catch(() => {});
      await run("umount", [dir]);
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      // A hierarchy unmounted with a dying cgroup lingers: mounting it again once that is gone
      // and unmounting frees it.
      await until(`${c} is not back on the v2 hierarchy`, async () => {
        if ((await row(c))[1] === "0") return true;
        const tmp = `/run/skiff-test-cg-${c}`;
        await mkdir(tmp, { recursive: true });
        if ((await run("mount", ["-t", "cgroup", "-o", c, "cgroup", tmp])).code === 0) await run("umount", [tmp]);
        await rm(tmp, { recursive: true, force: true });
        return (await row(c))[1] === "0";
      }, 60_000);
    }
  };
  try {
    for (const c of controllers) {
      const dir = `/sys/fs/cgroup/${c}`;
      await mkdir(dir);
      const r = await run("mount", ["-t", "cgroup", "-o", c, "cgroup", dir]);
      if (r.code !== 0) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`mount the ${c} controller on v1: ${r.stderr.toString().trim()}`);
      }
      moved.push(c);
    }
  } catch (err) {
    await restore();
    throw err;
  }
  return { moved, restore };
}

test("a pod runs with crun on this hybrid host once its unused v2 controllers are on v1", { timeout: 120_000 }, async (t) => {
  if (!hybridWithV2Controllers()) {
    t.skip("crun runs here as it is: the test above ran a crun pod");
    return;
  }
  const cg = await controllersToV1();
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const crunRoot = path.join("/run/containerd/crun", env.cfg.namespace);
  env.cfg.runtimes.crun = { shim: "containerd-shim-runc-v2", binaryName: CRUN, runcRoot: "/run/containerd/crun" };
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let close = () => {};
  t.after(async () => {
    close();
    const leftovers = await cleanupWithCrun(env, d, crunRoot);
    await cg.restore();
    assert.deepEqual(leftovers, []);
  });
  d = await startDaemon(env);
  const clients = criClients(env.cfg.socket);
  close = clients.close;
  const runtime = clients.runtime;
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir, { recursive: true });
  const config = podConfig("pod-crun", logDir);
  const { pod_sandbox_id: pod } = await call(runtime, "RunPodSandbox", { config, runtime_handler: "crun" });
  noteShims(env, d);
  const { container_id: ctr } = await call(runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: ctrConfig("app", ["sh", "-c", "sleep 3600"], { linux: { resources: { memory_limit_in_bytes: 64 << 20 } } }),
    sandbox_config: config,
  });
  await call(runtime, "StartContainer", { container_id: ctr });
  await waitState(runtime, ctr, "CONTAINER_RUNNING");
  assert.deepEqual((await listIds(CRUN, crunRoot)).sort(), [pod, ctr].sort(), "crun ran the pod's pause and app");
  const state = JSON.parse((await run(CRUN, ["--root", crunRoot, "state", ctr])).stdout.toString()) as { status: string; pid: number };
  assert.equal(state.status, "running");
  // The limit reached the kernel through crun.
  const exec = await call(runtime, "ExecSync", { container_id: ctr, cmd: ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], timeout: 10 });
  const limit = Buffer.from(exec.stdout).toString().trim();
  const viaProc = (await readFile(`/proc/${state.pid}/cgroup`, "utf8")).split("\n").find((l) => /:memory:/.test(l))?.split(":")[2];
  assert.ok(viaProc, "the app is in a memory cgroup");
  assert.equal((await readFile(`/sys/fs/cgroup/memory${viaProc}/memory.limit_in_bytes`, "utf8")).trim(), String(64 << 20), `limit seen inside: ${limit}`);
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  for (const end = Date.now() + 15_000; (await listIds(CRUN, crunRoot).catch(() => [])).length > 0; await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < end, "crun's containers are gone after the pod's removal");
  }
});
