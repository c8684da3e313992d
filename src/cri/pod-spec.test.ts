import { test } from "node:test";
import assert from "node:assert/strict";
import { isInvalidArgument } from "../errors.js";
import { checkSysctls, pauseSpec, type PauseSpecOptions } from "./pod-spec.js";
import type { SandboxRecord } from "./records.js";
import { resolvePodSecurity } from "./security.js";
import { testImage, testPod } from "./spec-testing.js";

const image = testImage("registry.k8s.io/pause:3.9", { entrypoint: ["/pause"], user: "65535:65535", workingDir: "/" }, "application/vnd.oci.image.manifest.v1+json");

const pod = (o: Partial<SandboxRecord> = {}): SandboxRecord =>
  testPod({ hostname: "web-0", logDirectory: "/var/log/pods/x", cgroupParent: "/kubepods/pod-u/", ...o });

const opts = (o: Partial<PauseSpecOptions> = {}): PauseSpecOptions => ({ sysctls: {}, readonlyRootfs: false, supplementalGroups: [], ...o });
const nsOf = (spec: Record<string, any>) => Object.fromEntries((spec.linux.namespaces as { type: string; path?: string }[]).map((n) => [n.type, n.path ?? "new"])); // eslint-disable-line @typescript-eslint/no-explicit-any
const hostNet = { netns: null, namespaces: { network: 2, pid: 0, ipc: 0 } } as const;

test("checkSysctls: namespaced sysctls pass, host-wide ones and net.* with host network are refused", () => {
  checkSysctls({ "net.ipv4.ip_local_port_range": "1024 65000", "net.core.somaxconn": "1", "kernel.shmmax": "1", "kernel.msgmax": "1", "kernel.sem": "1", "fs.mqueue.msg_max": "1" }, pod());
  const refused = (s: Record<string, string>, p: SandboxRecord, re: RegExp) =>
    assert.throws(() => checkSysctls(s, p), (e: Error) => isInvalidArgument(e) && re.test(e.message));
  refused({ "kernel.hostname": "x" }, pod(), /"kernel.hostname" is not namespaced/);
  refused({ "vm.swappiness": "1" }, pod(), /not namespaced/);
  refused({ "net.core.somaxconn": "1" }, pod(hostNet), /host network/);
  refused({ "kernel.shmmax": "1" }, pod({ namespaces: { network: 0, pid: 0, ipc: 2 } }), /host IPC/);
  refused({ "net..x": "1" }, pod(), /invalid name/);
  refused({ "net.core.somaxconn": "1\nkernel.x=1" }, pod(), /invalid value/);
  checkSysctls({ "kernel.shmmax": "1" }, pod(hostNet)); // IPC sysctls do not care about the network
});

test("pauseSpec: the pod's own namespaces, hostname, cgroup, sysctls and user", () => {
  const s = pauseSpec(image, pod(), opts({ sysctls: { "net.core.somaxconn": "1024" }, runAsUser: 1, runAsGroup: 2, supplementalGroups: [3, 4], readonlyRootfs: true }));
  assert.deepEqual(nsOf(s), { pid: "new", ipc: "new", uts: "new", mount: "new", network: "/var/run/netns/skiff-x" });
  assert.equal(s.hostname, "web-0");
  assert.equal(s.linux.cgroupsPath, `/kubepods/pod-u/${"p".repeat(64)}`);
  assert.deepEqual(s.linux.sysctl, { "net.core.somaxconn": "1024" });
  assert.deepEqual(s.process.args, ["/pause"]);
  assert.deepEqual(s.process.user, { uid: 1, gid: 2, additionalGids: [3, 4] });
  assert.equal(s.root.readonly, true);
  assert.equal(s.annotations["io.kubernetes.cri.sandbox-id"], "p".repeat(64));
  assert.equal(s.annotations["io.kubernetes.cri.sandbox-log-directory"], "/var/log/pods/x");
});

test("pauseSpec: the image's user stays when none is asked for; no sysctl or cgroup when none is given", () => {
  const s = pauseSpec(image, pod({ cgroupParent: "" }), opts());
  assert.deepEqual(s.process.user, { uid: 65535, gid: 65535 });
  assert.equal(s.linux.sysctl, undefined);
  assert.equal(s.linux.cgroupsPath, undefined);
  assert.throws(() => pauseSpec(image, pod({ cgroupParent: "kubepods" }), opts()), isInvalidArgument);
});

test("pauseSpec: host network drops network, uts and the hostname; NODE pid and ipc drop theirs", () => {
  const net = pauseSpec(image, pod(hostNet), opts());
  assert.deepEqual(nsOf(net), { pid: "new", ipc: "new", mount: "new" });
  assert.ok(!net.hostname, "no hostname without a UTS namespace of its own");
  const pid = pauseSpec(image, pod({ namespaces: { network: 0, pid: 2, ipc: 0 } }), opts());
  assert.deepEqual(nsOf(pid), { ipc: "new", uts: "new", mount: "new", network: "/var/run/netns/skiff-x" });
  const ipc = pauseSpec(image, pod({ namespaces: { network: 0, pid: 0, ipc: 2 } }), opts());
  assert.equal(nsOf(ipc).ipc, undefined);
});

test("pauseSpec: the pod's seccomp; a privileged pod's pause gets a writable /sys but stays unprivileged", async () => {
  const sysfs = (s: Record<string, any>) => s.mounts.find((m: { type: string }) => m.type === "sysfs").options as string[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  const plain = pauseSpec(image, pod(), opts({ security: await resolvePodSecurity({ privileged: false, seccomp: { kind: "runtime-default" } }, "p") }));
  assert.equal(plain.linux.seccomp.defaultAction, "SCMP_ACT_ERRNO");
  assert.ok(sysfs(plain).includes("ro"));
  const priv = pauseSpec(image, pod(), opts({ security: await resolvePodSecurity({ privileged: true, seccomp: { kind: "runtime-default" } }, "p") }));
  assert.equal(priv.linux.seccomp, undefined);
  assert.ok(sysfs(priv).includes("rw") && !sysfs(priv).includes("ro"));
  assert.ok(priv.linux.maskedPaths.length > 0, "the pause keeps its masked paths");
  assert.ok(!priv.process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
});

test("pauseSpec: /dev/shm is the pod's shared tmpfs (the host's with host IPC), bound read-only", () => {
  const shmOf = (s: Record<string, any>) => (s.mounts as { destination: string; source: string }[]).filter((m) => m.destination === "/dev/shm"); // eslint-disable-line @typescript-eslint/no-explicit-any
  const own = shmOf(pauseSpec(image, pod(), opts()));
  assert.equal(own.length, 1, "one /dev/shm mount, the default tmpfs replaced");
  assert.deepEqual(own[0], { destination: "/dev/shm", type: "bind", source: "/var/lib/skiff/pods/p/shm", options: ["rbind", "rprivate", "nosuid", "nodev", "noexec", "ro"] });
  const host = shmOf(pauseSpec(image, pod({ namespaces: { network: 0, pid: 0, ipc: 2 } }), opts()));
  assert.equal(host.length, 1);
  assert.equal(host[0]!.source, "/dev/shm");
});
