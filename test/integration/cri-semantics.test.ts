/**
 * Container semantics every Kubernetes workload relies on, as containerd and CRI-O give them,
 * observed in real containers through the CRI socket: HOSTNAME in the environment, the primary
 * group among the supplementary groups, selinux_relabel ignored without SELinux, run_as_group
 * without a user refused, and image ids given as a unique prefix.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { criFixture, ctrConfig, runPod } from "./cri-helpers.js";
import { call, rejectsWith } from "./cri-client.js";
import { tarDir, writeDockerSave } from "../../src/images/testing.js";

const BUSYBOX = "docker.io/library/busybox:latest";
/** kubelet's default: each container its own pid namespace, so its command is pid 1. */
const OWN_PID = { namespace_options: { pid: "CONTAINER" } };

/** Stops and removes every pod (the fixture's clean-up then finds nothing left). */
async function removePods(runtime: grpc.Client): Promise<void> {
  for (const p of (await call(runtime, "ListPodSandbox", {})).items as { id: string }[]) {
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: p.id });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: p.id });
  }
}

test("HOSTNAME: the pod's hostname, the node's with host network, the container's own if it sets one", { timeout: 120_000 }, async (t) => {
  const { runtime, logDir } = await criFixture(t);
  const sh = async (id: string, script: string) => (await call(runtime, "ExecSync", { container_id: id, cmd: ["sh", "-c", script], timeout: 10 })).stdout.toString();

  const { start } = await runPod(runtime, "web-0", logDir);
  const plain = await start("plain", ["sleep", "3600"], { linux: { security_context: OWN_PID } });
  // PID 1's environment is what the workload sees; an exec gets the same.
  assert.equal(await sh(plain, "tr '\\0' '\\n' < /proc/1/environ | grep ^HOSTNAME="), "HOSTNAME=web-0\n");
  assert.equal(await sh(plain, "echo $HOSTNAME; hostname"), "web-0\nweb-0\n");
  const own = await start("own", ["sleep", "3600"], { envs: [{ key: "HOSTNAME", value: "chosen" }], linux: { security_context: OWN_PID } });
  assert.equal(await sh(own, "tr '\\0' '\\n' < /proc/1/environ | grep ^HOSTNAME="), "HOSTNAME=chosen\n");

  const host = await runPod(runtime, "hostnet", logDir, { linux: { security_context: { namespace_options: { network: "NODE" } } } });
  const h = await host.start("h", ["sleep", "3600"]);
  assert.equal(await sh(h, "echo $HOSTNAME"), `${hostname()}\n`);
  await removePods(runtime);
});

test("groups: the primary group is always a supplementary group, with the image's memberships and supplemental_groups", { timeout: 120_000 }, async (t) => {
  const { runtime, logDir } = await criFixture(t);
  const { start } = await runPod(runtime, "groups", logDir);
  const id = async (name: string, securityContext: object) => {
    const c = await start(name, ["sleep", "3600"], { linux: { security_context: securityContext } });
    return (await call(runtime, "ExecSync", { container_id: c, cmd: ["id"], timeout: 10 })).stdout.toString().trim();
  };
  // The built-in busybox image has the official image's root (member of wheel) and daemon users.
  assert.equal(await id("root", {}), "uid=0(root) gid=0(root) groups=0(root),10(wheel)");
  assert.equal(await id("uid", { run_as_user: { value: 1234 } }), "uid=1234 gid=0(root) groups=0(root)");
  assert.equal(await id("uidgid", { run_as_user: { value: 1234 }, run_as_group: { value: 1234 } }), "uid=1234 gid=1234 groups=1234");
  assert.equal(await id("daemon", { run_as_username: "daemon" }), "uid=1(daemon) gid=1(daemon) groups=1(daemon)");
  assert.equal(await id("supp", { run_as_username: "daemon", supplemental_groups: [10, 4321] }), "uid=1(daemon) gid=1(daemon) groups=1(daemon),10(wheel),4321");
  await removePods(runtime);
});

test("run_as_group without run_as_user or run_as_username is InvalidArgument naming the container", { timeout: 120_000 }, async (t) => {
  const { runtime, logDir } = await criFixture(t);
  const { pod, podCfg } = await runPod(runtime, "rag", logDir);
  await rejectsWith(
    call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("lonely-group", ["true"], { linux: { security_context: { run_as_group: { value: 5 } } } }), sandbox_config: podCfg }),
    grpc.status.INVALID_ARGUMENT,
    /container "lonely-group": run_as_group 5 is set without run_as_user or run_as_username/,
  );
  assert.equal((await call(runtime, "ListContainers", {})).containers.length, 0, "nothing was made");
  await removePods(runtime);
});

test("selinux_relabel on a volume: the mount works on a host without SELinux", { timeout: 120_000 }, async (t) => {
  const { env, runtime, logDir } = await criFixture(t);
  const vol = path.join(env.dir, "vol");
  await mkdir(vol);
  await writeFile(path.join(vol, "data"), "from the host\n");
  const { pod, podCfg, start } = await runPod(runtime, "relabel", logDir);
  const config = { mounts: [{ container_path: "/vol", host_path: vol, selinux_relabel: true }] };
  if (existsSync("/sys/fs/selinux/enforce")) {
    // skiff cannot relabel: on an SELinux host the request is refused, not silently half-done.
    await rejectsWith(call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("v", ["true"], config), sandbox_config: podCfg }), grpc.status.INVALID_ARGUMENT, /SELinux relabeling/);
  } else {
    const c = await start("v", ["sleep", "3600"], config);
    assert.equal((await call(runtime, "ExecSync", { container_id: c, cmd: ["cat", "/vol/data"], timeout: 10 })).stdout.toString(), "from the host\n");
  }
  await removePods(runtime);
});

test("image ids: ImageStatus and RemoveImage take a unique prefix with or without sha256:; an ambiguous one says so", { timeout: 120_000 }, async (t) => {
  const { env, d, image } = await criFixture(t);
  const busybox = (await call(image, "ImageStatus", { image: { image: BUSYBOX } })).image;
  const hex = (busybox.id as string).replace(/^sha256:/, "");
  for (const prefix of [hex.slice(0, 8), `sha256:${hex.slice(0, 12)}`, hex]) {
    const r = await call(image, "ImageStatus", { image: { image: prefix } });
    assert.equal(r.image?.id, busybox.id, prefix);
  }

  // 17 images with distinct ids: two of them share a first hex digit.
  const ids: string[] = [];
  for (let i = 0; i < 17; i++) {
    const dir = path.join(env.dir, `img-${i}`);
    await writeDockerSave(dir, { repoTags: [`example.com/prefix:${i}`], config: { Labels: { n: String(i) } } });
    const [rec] = await d.images.import(await tarDir(dir, `${dir}.tar`));
    ids.push(rec!.configDigest.slice(7));
  }
  const all = [...ids, hex];
  const shared = [..."0123456789abcdef"].find((c) => all.filter((x) => x.startsWith(c)).length > 1)!;
  await rejectsWith(call(image, "ImageStatus", { image: { image: shared } }), grpc.status.INVALID_ARGUMENT, new RegExp(`image id prefix "${shared}" is ambiguous`));
  await rejectsWith(call(image, "RemoveImage", { image: { image: `sha256:${shared}` } }), grpc.status.INVALID_ARGUMENT, /ambiguous/);

  // The shortest unique prefix of one imported image removes it, and only it.
  const victim = ids[3]!;
  let n = 1;
  while (all.filter((x) => x.startsWith(victim.slice(0, n))).length > 1) n++;
  await call(image, "RemoveImage", { image: { image: victim.slice(0, n) } });
  assert.equal((await call(image, "ImageStatus", { image: { image: "example.com/prefix:3" } })).image, null, "removed");
  assert.equal((await call(image, "ImageStatus", { image: { image: "example.com/prefix:4" } })).image?.id, `sha256:${ids[4]}`, "others stay");
  assert.equal((await call(image, "ImageStatus", { image: { image: BUSYBOX } })).image?.id, busybox.id);
});
