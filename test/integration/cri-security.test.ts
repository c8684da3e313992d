/**
 * CRI security contexts observed from inside running containers: capability sets (default,
 * drop ALL, add one, add ALL minus one) in /proc/self/status, no_new_privs, user and groups,
 * readonly rootfs, masked and readonly /proc paths, seccomp (RuntimeDefault refuses unshare
 * without CAP_SYS_ADMIN and allows it with; Unconfined allows it; a Localhost profile denying
 * mkdir), the pod's seccomp on the pause process, and a privileged container in a privileged pod
 * (every capability the daemon has, the host's devices, mount allowed). Bad input is refused
 * with InvalidArgument and creates nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients, rejectsWith } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";

/** containerd's (and Docker's) default capability set as a CapEff mask. */
const DEFAULT_CAPS = "00000000a80425fb";
const NET_ADMIN_BIT = 1n << 12n;
const CHOWN_BIT = 1n;

const hex = (n: bigint) => n.toString(16).padStart(16, "0");
const field = (status: string, name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, "m").exec(status)?.[1];

test("security contexts seen from inside", { timeout: 180_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  const pods: string[] = [];
  t.after(async () => {
    for (const p of pods) {
      await call(runtime, "StopPodSandbox", { pod_sandbox_id: p }).catch(() => {});
      await call(runtime, "RemovePodSandbox", { pod_sandbox_id: p }).catch(() => {});
    }
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const denyMkdir = path.join(env.dir, "deny-mkdir.json");
  await writeFile(
    denyMkdir,
    JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] }),
  );
  const notJson = path.join(env.dir, "not-json.json");
  await writeFile(notJson, "{ defaultAction: ");
  const missing = path.join(env.dir, "no-such-profile.json");
  const hostEff = BigInt(`0x${field(await readFile("/proc/self/status", "utf8"), "CapEff")}`);

  const cfg = podConfig("sec", logDir, { linux: { security_context: { seccomp: { profile_type: "RuntimeDefault" } } } });
  const pod = (await call(runtime, "RunPodSandbox", { config: cfg })).pod_sandbox_id as string;
  pods.push(pod);
  const start = async (p: string, podCfg: object, name: string, extra: object) => {
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: p, config: ctrConfig(name, ["sleep", "3600"], extra), sandbox_config: podCfg }))
      .container_id as string;
    await call(runtime, "StartContainer", { container_id: id });
    await waitState(runtime, id, "CONTAINER_RUNNING");
    return id;
  };
  const sh = async (id: string, script: string) => {
    const r = await call(runtime, "ExecSync", { container_id: id, cmd: ["sh", "-c", script], timeout: 10 });
    return { out: r.stdout.toString() as string, err: r.stderr.toString() as string, code: r.exit_code as number };
  };
  const status = async (id: string) => (await sh(id, "cat /proc/self/status")).out;
  const sc = (security_context: object) => ({ linux: { security_context } });

  await t.test("the pod's seccomp applies to the pause process", async () => {
    const pid = d.cri.pods.docs.find(pod)?.pid;
    assert.ok(pid, "pause pid recorded");
    assert.equal(field(await readFile(`/proc/${pid}/status`, "utf8"), "Seccomp"), "2", "filter mode");
  });

  await t.test("capabilities", async () => {
    const def = await status(await start(pod, cfg, "default", {}));
    assert.equal(field(def, "CapEff"), DEFAULT_CAPS);
    assert.equal(field(def, "CapBnd"), DEFAULT_CAPS);
    assert.equal(field(def, "CapPrm"), DEFAULT_CAPS);
    assert.equal(field(def, "CapInh"), "0000000000000000");
    assert.equal(field(def, "Seccomp"), "0", "no seccomp asked for: unconfined");

    const none = await status(await start(pod, cfg, "drop-all", sc({ capabilities: { drop_capabilities: ["all"] } })));
    assert.equal(field(none, "CapEff"), "0000000000000000");
    assert.equal(field(none, "CapBnd"), "0000000000000000");

    const netAdmin = await start(pod, cfg, "net-admin", sc({ capabilities: { add_capabilities: ["net_admin", "CAP_NET_ADMIN"] } }));
    const na = await status(netAdmin);
    assert.equal(field(na, "CapEff"), hex(BigInt(`0x${DEFAULT_CAPS}`) | NET_ADMIN_BIT));
    assert.equal(field(na, "CapBnd"), hex(BigInt(`0x${DEFAULT_CAPS}`) | NET_ADMIN_BIT));
    // The capability works: changing the pod's loopback MTU needs CAP_NET_ADMIN.
    assert.equal((await sh(netAdmin, "ip link set lo mtu 1500")).code, 0);
    const denied = await sh((await d.cri.ctrs.list()).find((c) => c.name === "default")!.id, "ip link set lo mtu 1500");
    assert.notEqual(denied.code, 0, "without NET_ADMIN the same change is refused");

    // Ambient: a non-root process keeps NET_ADMIN effective across execve.
    const amb = await status(
      await start(pod, cfg, "ambient", sc({ run_as_user: { value: 1000 }, capabilities: { add_capabilities: ["NET_ADMIN"], add_ambient_capabilities: ["NET_ADMIN"] } })),
    );
    assert.deepEqual([field(amb, "CapAmb"), field(amb, "CapEff"), field(amb, "CapInh")], [hex(NET_ADMIN_BIT), hex(NET_ADMIN_BIT), hex(NET_ADMIN_BIT)]);

    const allButChown = await status(
      await start(pod, cfg, "all-but-chown", sc({ capabilities: { add_capabilities: ["ALL"], drop_capabilities: ["CHOWN"] } })),
    );
    assert.equal(field(allButChown, "CapEff"), hex(hostEff & ~CHOWN_BIT), "every capability of the daemon except CHOWN");
  });

  await t.test("user, groups, no_new_privs, readonly rootfs", async () => {
    const id = await start(pod, cfg, "user", sc({ run_as_user: { value: 1000 }, run_as_group: { value: 2000 }, supplemental_groups: [3000], no_new_privs: true, readonly_rootfs: true }));
    assert.equal((await sh(id, "id -u; id -g; id -G")).out, "1000\n2000\n2000 3000\n");
    assert.equal(field(await status(id), "NoNewPrivs"), "1");
    assert.equal(field(await status(id), "CapEff"), "0000000000000000", "a non-root user has no effective capabilities");
    const w = await sh(id, "touch /newfile");
    assert.notEqual(w.code, 0);
    assert.match(w.err, /Read-only file system/);
    const root = await start(pod, cfg, "root-nnp-off", {});
    assert.equal(field(await status(root), "NoNewPrivs"), "0");
    // Without no_new_privs runc installs the filter before it switches user: the profile must
    // let it finish (setgroups, setresuid, capset, execve).
    const filtered = await start(pod, cfg, "user-seccomp", sc({ run_as_user: { value: 1000 }, seccomp: { profile_type: "RuntimeDefault" } }));
    assert.equal((await sh(filtered, "id -u")).out, "1000\n");
    assert.deepEqual([field(await status(filtered), "Seccomp"), field(await status(filtered), "NoNewPrivs")], ["2", "0"]);
  });

  await t.test("masked and readonly paths", async () => {
    const id = (await d.cri.ctrs.list()).find((c) => c.name === "default")!.id;
    // (This kernel has no /proc/kcore; timer_list and keys are masked the same way.)
    assert.deepEqual(await sh(id, "wc -c < /proc/timer_list"), { out: "0\n", err: "", code: 0 }, "/proc/timer_list is masked");
    assert.equal((await sh(id, "wc -c < /proc/keys")).out, "0\n", "/proc/keys is masked");
    const w = await sh(id, "echo 1 > /proc/sys/vm/drop_caches");
    assert.notEqual(w.code, 0);
    assert.match(w.err, /Read-only file system/, "/proc/sys is read-only");
    // Paths given by the request replace the defaults.
    const own = await start(pod, cfg, "own-masks", sc({ masked_paths: ["/etc/hostname"], readonly_paths: ["/tmp"] }));
    assert.equal((await sh(own, "cat /etc/hostname")).out, "", "masked by the request");
    assert.match((await sh(own, "touch /tmp/x")).err, /Read-only file system/);
    assert.notEqual((await sh(own, "wc -c < /proc/timer_list")).out, "0\n", "the default masks no longer apply");
  });

  await t.test("seccomp", async () => {
    const dflt = await start(pod, cfg, "seccomp-default", sc({ seccomp: { profile_type: "RuntimeDefault" } }));
    assert.equal(field(await status(dflt), "Seccomp"), "2");
    const refused = await sh(dflt, "unshare -U true");
    assert.notEqual(refused.code, 0, "unshare needs CAP_SYS_ADMIN under RuntimeDefault");
    assert.match(refused.err, /Operation not permitted/);
    assert.equal((await sh(dflt, "echo ok; ls / >/dev/null")).out, "ok\n", "ordinary syscalls work");

    const legacy = await start(pod, cfg, "seccomp-legacy", sc({ seccomp_profile_path: "runtime/default" }));
    assert.notEqual((await sh(legacy, "unshare -U true")).code, 0, "runtime/default via the deprecated field");

    const unconfined = await start(pod, cfg, "seccomp-unconfined", sc({ seccomp: { profile_type: "Unconfined" } }));
    assert.equal(field(await status(unconfined), "Seccomp"), "0");
    assert.deepEqual(await sh(unconfined, "unshare -U true"), { out: "", err: "", code: 0 }, "the same call without seccomp");

    const admin = await start(pod, cfg, "seccomp-sys-admin", sc({ seccomp: { profile_type: "RuntimeDefault" }, capabilities: { add_capabilities: ["SYS_ADMIN"] } }));
    assert.equal((await sh(admin, "unshare -U true")).code, 0, "CAP_SYS_ADMIN unlocks unshare in the default profile");

    const local = await start(pod, cfg, "seccomp-localhost", sc({ seccomp: { profile_type: "Localhost", localhost_ref: denyMkdir } }));
    const mk = await sh(local, "mkdir /tmp/d");
    assert.notEqual(mk.code, 0);
    assert.match(mk.err, /Operation not permitted/);
    assert.equal((await sh(local, "touch /tmp/f && echo ok")).out, "ok\n", "the rest is allowed");
    const local2 = await start(pod, cfg, "seccomp-localhost-legacy", sc({ seccomp_profile_path: `localhost/${denyMkdir}` }));
    assert.notEqual((await sh(local2, "mkdir /tmp/d")).code, 0);
  });

  await t.test("bad input creates nothing", async () => {
    const list = async () => ((await call(runtime, "ListContainers", {})).containers as { id: string }[]).map((c) => c.id).sort();
    const listPods = async () => ((await call(runtime, "ListPodSandbox", {})).items as { id: string }[]).map((p) => p.id).sort();
    const before = await list();
    const refusedCtr = async (extra: object, re: RegExp) => {
      await rejectsWith(call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("bad", ["true"], extra), sandbox_config: cfg }), grpc.status.INVALID_ARGUMENT, re);
      assert.deepEqual(await list(), before);
    };
    await refusedCtr(sc({ capabilities: { add_capabilities: ["NET_WIZARD"] } }), /container "bad": unknown capability "NET_WIZARD"/);
    await refusedCtr(sc({ capabilities: { drop_capabilities: ["CAP_BOGUS"] } }), /unknown capability "CAP_BOGUS"/);
    await refusedCtr(sc({ seccomp: { profile_type: "Localhost", localhost_ref: missing } }), new RegExp(`cannot read seccomp profile "${missing}": ENOENT`));
    await refusedCtr(sc({ seccomp: { profile_type: "Localhost", localhost_ref: notJson } }), new RegExp(`seccomp profile "${notJson}" is invalid`));
    await refusedCtr(sc({ seccomp_profile_path: "localhost/relative.json" }), /seccomp profile path "relative.json" is not absolute/);
    await refusedCtr(sc({ seccomp_profile_path: "bogus/default" }), /unsupported seccomp profile "bogus\/default"/);
    await refusedCtr(sc({ apparmor: { profile_type: "Localhost", localhost_ref: "k8s-deny" } }), /AppArmor profile Localhost "k8s-deny" requested, but AppArmor is not enabled/);
    await refusedCtr(sc({ apparmor_profile: "runtime/default" }), /AppArmor profile "runtime\/default" requested, but AppArmor is not enabled/);
    await refusedCtr(sc({ selinux_options: { level: "s0:c1,c2" } }), /SELinux is not enabled on this host/);
    await refusedCtr(sc({ privileged: true }), /container "bad".*no privileged container allowed in sandbox/);
    // "unconfined" AppArmor and an empty SELinux option are fine.
    const ok = await start(pod, cfg, "apparmor-unconfined", sc({ apparmor: { profile_type: "Unconfined" }, apparmor_profile: "unconfined", selinux_options: {} }));
    assert.ok(ok);

    const podsBefore = await listPods();
    const refusedPod = async (security_context: object, re: RegExp) => {
      await rejectsWith(call(runtime, "RunPodSandbox", { config: podConfig("bad-pod", logDir, { linux: { security_context } }) }), grpc.status.INVALID_ARGUMENT, re);
      assert.deepEqual(await listPods(), podsBefore);
    };
    await refusedPod({ seccomp: { profile_type: "Localhost", localhost_ref: missing } }, /pod sandbox "default\/bad-pod": cannot read seccomp profile/);
    await refusedPod({ seccomp_profile_path: `localhost/${notJson}` }, /pod sandbox "default\/bad-pod": seccomp profile .* is invalid/);
    await refusedPod({ apparmor: { profile_type: "RuntimeDefault" } }, /AppArmor is not enabled on this host/);
    assert.deepEqual(await readdir(path.join(env.cfg.root, "pods")).then((x) => x.length), podsBefore.length, "no pod dir left");
  });

  await t.test("privileged container in a privileged pod", async () => {
    const pcfg = podConfig("priv", logDir, { linux: { security_context: { privileged: true, seccomp: { profile_type: "RuntimeDefault" } } } });
    const ppod = (await call(runtime, "RunPodSandbox", { config: pcfg })).pod_sandbox_id as string;
    pods.push(ppod);
    const id = await start(ppod, pcfg, "priv", sc({ privileged: true, seccomp: { profile_type: "RuntimeDefault" }, masked_paths: ["/proc/timer_list"] }));
    const st = await status(id);
    assert.equal(field(st, "CapEff"), hex(hostEff), "every capability the daemon has");
    assert.equal(field(st, "CapBnd"), hex(hostEff));
    assert.equal(field(st, "Seccomp"), "0", "no seccomp for a privileged container");
    assert.deepEqual(await sh(id, "mkdir -p /mnt/t && mount -t tmpfs tmpfs /mnt/t && grep -c ' /mnt/t tmpfs ' /proc/mounts"), { out: "1\n", err: "", code: 0 });
    assert.notEqual((await sh(id, "wc -c < /proc/timer_list")).out, "0\n", "no masked paths, whatever the request listed");
    assert.match((await sh(id, "grep ' /sys ' /proc/mounts")).out, /sysfs rw,/, "sysfs is writable");
    // A host device runc would not create by itself shows up.
    const defaults = new Set(["null", "zero", "full", "random", "urandom", "tty", "ptmx", "console"]);
    let hostDev = "";
    for (const name of await readdir("/dev")) {
      const s = await stat(path.join("/dev", name)).catch(() => undefined);
      if (s?.isCharacterDevice() && !defaults.has(name)) {
        hostDev = name;
        break;
      }
    }
    assert.ok(hostDev, "the host has some character device beyond the defaults");
    assert.equal((await sh(id, `test -c /dev/${hostDev} && echo yes`)).out, "yes\n", `/dev/${hostDev} from the host`);
    const plain = await start(ppod, pcfg, "unpriv-in-priv", {});
    assert.equal(field(await status(plain), "CapEff"), DEFAULT_CAPS, "a privileged pod does not make its containers privileged");
  });
});
