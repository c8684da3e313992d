/**
 * Pod-level options and image-driven behaviour observed on real containers: sysctls set inside
 * the pod, the cgroup parent in the container's cgroup paths, the host PID and IPC namespaces, the
 * annotations in PodSandboxStatus and in the OCI specs the shim got, reason Completed for exit 0,
 * and StopContainer sending the image's STOPSIGNAL instead of SIGTERM.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, readdir, readlink, rmdir } from "node:fs/promises";
import * as path from "node:path";
import { criFixture, ctrConfig, runPod, waitState } from "./cri-helpers.js";
import { call } from "./cri-client.js";
import { tarDir, writeDockerSave } from "../../src/images/testing.js";
import { bundlePath } from "../../src/runtime/bundle.js";
import { readMounts } from "../../src/runtime/mount-linux.js";

/** Removes `parent` (and what runc left below it) from every cgroup hierarchy, deepest first. */
async function removeCgroupParent(parent: string): Promise<void> {
  const roots = (await readMounts()).filter((m) => m.fsType === "cgroup" || m.fsType === "cgroup2").map((m) => m.mountPoint);
  for (const root of new Set(roots)) {
    const walk = async (dir: string): Promise<void> => {
      const subdirs = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of subdirs) if (e.isDirectory()) await walk(path.join(dir, e.name));
      await rmdir(dir).catch(() => {});
    };
    await walk(path.join(root, parent));
  }
}

test("pod options seen from inside: sysctls, cgroup parent, host PID and IPC, annotations", { timeout: 120_000 }, async (t) => {
  const { env, runtime, logDir } = await criFixture(t);
  const parent = `/skiff-it-${randomBytes(4).toString("hex")}`;
  t.after(() => removeCgroupParent(parent));
  const sh = async (id: string, script: string) => {
    const r = await call(runtime, "ExecSync", { container_id: id, cmd: ["sh", "-c", script], timeout: 10 });
    return r.stdout.toString() as string;
  };
  const bundleSpec = async (id: string) => JSON.parse(await readFile(path.join(bundlePath(env.cfg.state, env.cfg.namespace, id), "config.json"), "utf8"));

  const { pod, start } = await runPod(runtime, "opts", logDir, {
    annotations: { "example.com/owner": "team-a", note: "test" },
    linux: {
      cgroup_parent: parent,
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1" },
    },
  });
  const c = await start("c", ["sleep", "3600"], { annotations: { "example.com/ctr": "yes" } });
  // Namespaced sysctls apply inside the pod only.
  assert.equal(await sh(c, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced"), "80\n1\n");
  assert.notEqual((await readFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8")).trim(), "80", "the host keeps its value");
  // The container's cgroup sits below the pod's cgroup parent, in every v1 hierarchy runc joins.
  const cgroups = (await sh(c, "cat /proc/self/cgroup")).trim().split("\n");
  for (const ctrl of ["memory", "cpu", "pids"]) {
    const line = cgroups.find((l) => l.split(":")[1]!.split(",").includes(ctrl));
    assert.ok(line, `a ${ctrl} cgroup in ${cgroups.join(" | ")}`);
    assert.equal(line.split(":")[2], `${parent}/${c}`, `${ctrl} cgroup`);
  }
  // Annotations: the request's in PodSandboxStatus / ContainerStatus; containerd's CRI ones in the OCI specs.
  const ps = (await call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod })).status;
  assert.deepEqual(ps.annotations, { "example.com/owner": "team-a", note: "test" });
  assert.deepEqual((await call(runtime, "ContainerStatus", { container_id: c })).status.annotations, { "example.com/ctr": "yes" });
  const pauseAnn = (await bundleSpec(pod)).annotations;
  assert.equal(pauseAnn["io.kubernetes.cri.container-type"], "sandbox");
  assert.equal(pauseAnn["io.kubernetes.cri.sandbox-name"], "opts");
  assert.equal(pauseAnn["io.kubernetes.cri.sandbox-uid"], "uid-opts");
  const ctrAnn = (await bundleSpec(c)).annotations;
  assert.equal(ctrAnn["io.kubernetes.cri.container-type"], "container");
  assert.equal(ctrAnn["io.kubernetes.cri.container-name"], "c");
  assert.equal(ctrAnn["io.kubernetes.cri.sandbox-id"], pod);

  // Host PID and IPC: the container sees the host's processes, this test's among them, and is in
  // the host's IPC namespace; the other pod's container is in neither.
  const host = await runPod(runtime, "hostpid", logDir, { linux: { security_context: { namespace_options: { pid: "NODE", ipc: "NODE" } } } });
  const hc = await host.start("h", ["sleep", "3600"]);
  const hostIpc = await readlink("/proc/self/ns/ipc");
  assert.equal((await sh(hc, "readlink /proc/self/ns/ipc")).trim(), hostIpc);
  assert.notEqual((await sh(c, "readlink /proc/self/ns/ipc")).trim(), hostIpc);
  const comm = await sh(hc, `cat /proc/${process.pid}/comm`);
  assert.equal(comm.trim(), (await readFile(`/proc/${process.pid}/comm`, "utf8")).trim());
  assert.doesNotMatch(await sh(c, `cat /proc/${process.pid}/comm 2>&1 || true`), /node/, "the pod's own PID namespace hides it");

  for (const id of [pod, host.pod]) {
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: id });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: id });
  }
});

test("exit reasons, and StopContainer sends the image's STOPSIGNAL", { timeout: 120_000 }, async (t) => {
  const { env, d, runtime, logDir } = await criFixture(t);
  // An image of the test's busybox root with StopSignal SIGUSR1, imported as a `docker save` tar.
  const work = path.join(env.dir, "stopsig");
  const layerTar = await tarDir(env.rootfs, path.join(env.dir, "layer.tar"));
  await writeDockerSave(work, { layers: [await readFile(layerTar)], repoTags: ["example.com/stopsig:v1"], config: { StopSignal: "SIGUSR1" } });
  await d.images.import(await tarDir(work, path.join(env.dir, "stopsig.tar")));

  const { pod, podCfg } = await runPod(runtime, "signals", logDir);
  const run = async (name: string, cmd: string[], image = "docker.io/library/busybox:latest") => {
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig(name, cmd, { image: { image } }), sandbox_config: podCfg })).container_id as string;
    await call(runtime, "StartContainer", { container_id: id });
    return id;
  };
  const ok = await run("ok", ["true"]);
  const bad = await run("bad", ["sh", "-c", "exit 3"]);
  const okSt = await waitState(runtime, ok, "CONTAINER_EXITED");
  assert.deepEqual([okSt.exit_code, okSt.reason], [0, "Completed"]);
  const badSt = await waitState(runtime, bad, "CONTAINER_EXITED");
  assert.deepEqual([badSt.exit_code, badSt.reason], [3, "Error"]);

  // The shell traps USR1 only: USR1 ends it with 42, SIGTERM (busybox's default stop signal)
  // kills it with 143. (It is not PID 1: the pod shares its PID namespace, pause is PID 1.)
  const script = "trap 'echo got usr1; exit 42' USR1; echo ready; while true; do sleep 0.1; done";
  const custom = await run("custom", ["sh", "-c", script], "example.com/stopsig:v1");
  const plain = await run("plain", ["sh", "-c", script]);
  for (const id of [custom, plain]) await waitState(runtime, id, "CONTAINER_RUNNING");
  await new Promise((r) => setTimeout(r, 300)); // the trap is set once "ready" is printed
  const started = Date.now();
  await call(runtime, "StopContainer", { container_id: custom, timeout: 10 });
  assert.ok(Date.now() - started < 5000, "the stop signal ended it before the timeout");
  const cs = (await call(runtime, "ContainerStatus", { container_id: custom })).status;
  assert.equal(cs.exit_code, 42);
  assert.match(await readFile(cs.log_path, "utf8"), /stdout F got usr1/);
  await call(runtime, "StopContainer", { container_id: plain, timeout: 10 });
  const ps = (await call(runtime, "ContainerStatus", { container_id: plain })).status;
  assert.equal(ps.exit_code, 143, "SIGTERM, the default");
  assert.doesNotMatch(await readFile(ps.log_path, "utf8"), /got usr1/);

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});
