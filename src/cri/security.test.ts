import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { isInvalidArgument } from "../errors.js";
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, defaultSpec } from "../oci/spec.js";
import { runChecked } from "../util/exec.js";
import {
  ALL_CAPABILITIES,
  applySecurity,
  capabilitiesFromMask,
  capabilityChange,
  capabilityName,
  capabilitySets,
  hostDevices,
  NO_CAPABILITY_CHANGE,
  resolveContainerSecurity,
  resolvePodSecurity,
  type ResolvedSecurity,
} from "./security.js";

const invalid = (re: RegExp) => (e: Error) => isInvalidArgument(e) && re.test(e.message);
const HOST = ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_RESOURCE");

test("capability names: any case, with or without CAP_; unknown refused by name", () => {
  assert.equal(capabilityName("net_admin", "c"), "CAP_NET_ADMIN");
  assert.equal(capabilityName("CAP_SYS_ADMIN", "c"), "CAP_SYS_ADMIN");
  assert.equal(capabilityName("cap_bpf", "c"), "CAP_BPF");
  assert.equal(ALL_CAPABILITIES.length, 41);
  assert.equal(ALL_CAPABILITIES[21], "CAP_SYS_ADMIN");
  assert.throws(() => capabilityName("NET_WIZARD", 'container "c"'), invalid(/container "c": unknown capability "NET_WIZARD"/));
  assert.throws(() => capabilityChange([], [], ["ALL"], "c"), invalid(/unknown capability "ALL"/), "ALL is no ambient capability");
  assert.deepEqual(capabilityChange(["All", "kill"], ["aLL"], [], "c"), { addAll: true, dropAll: true, add: ["CAP_KILL"], drop: [], ambient: [] });
});

test("capability sets follow containerd: default, ALL, then single adds and drops", () => {
  const sets = (add: string[], drop: string[], ambient: string[] = [], privileged = false) =>
    capabilitySets(capabilityChange(add, drop, ambient, "c"), HOST, privileged);
  const d = sets([], []);
  assert.deepEqual(d.bounding, DEFAULT_CAPABILITIES);
  assert.deepEqual([d.effective, d.permitted], [DEFAULT_CAPABILITIES, DEFAULT_CAPABILITIES]);
  assert.deepEqual([d.inheritable, d.ambient], [[], []], "no inheritable set (containerd >= 1.6.2)");
  assert.deepEqual(sets([], ["ALL"]).bounding, []);
  assert.deepEqual(sets(["NET_ADMIN"], ["CHOWN"]).bounding, [...DEFAULT_CAPABILITIES.filter((c) => c !== "CAP_CHOWN"), "CAP_NET_ADMIN"]);
  assert.deepEqual(sets(["ALL"], ["CHOWN"]).bounding, HOST.filter((c) => c !== "CAP_CHOWN"), "ALL means the daemon's own");
  assert.deepEqual(sets(["ALL", "NET_ADMIN"], ["ALL"]).bounding, ["CAP_NET_ADMIN"], "drop ALL wins over add ALL; single adds come after");
  assert.deepEqual(sets(["KILL"], ["KILL"]).bounding.includes("CAP_KILL"), false, "single drops come last");
  const amb = sets(["NET_ADMIN"], [], ["NET_ADMIN"]);
  assert.deepEqual([amb.inheritable, amb.ambient], [["CAP_NET_ADMIN"], ["CAP_NET_ADMIN"]]);
  assert.deepEqual(sets([], ["ALL"], [], true).bounding, HOST, "privileged: every host capability, changes ignored");
});

test("capabilitiesFromMask reads /proc status masks", () => {
  assert.deepEqual(capabilitiesFromMask("00000000a80425fb").sort(), [...DEFAULT_CAPABILITIES].sort());
  assert.deepEqual(capabilitiesFromMask("000001fffeffffff"), HOST);
  assert.deepEqual(capabilitiesFromMask("0"), []);
});

test("hostDevices: character and block devices, skipping pts, shm, console and non-devices", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-dev-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, "pts"));
  await mkdir(path.join(dir, "snd"));
  await runChecked("mknod", ["-m", "0640", path.join(dir, "mydev"), "c", "1", "3"]);
  await runChecked("mknod", [path.join(dir, "snd", "ctl"), "c", "300", "70000"]);
  await runChecked("mknod", [path.join(dir, "blk"), "b", "7", "0"]);
  await runChecked("mknod", [path.join(dir, "console"), "c", "5", "1"]);
  await runChecked("mknod", [path.join(dir, "pts", "0"), "c", "136", "0"]);
  await writeFile(path.join(dir, "file"), "");
  const devs = (await hostDevices(dir)).sort((a, b) => a.path.localeCompare(b.path));
  assert.deepEqual(devs, [
    { path: "/dev/blk", type: "b", major: 7, minor: 0, fileMode: devs[0]!.fileMode, uid: 0, gid: 0 },
    { path: "/dev/mydev", type: "c", major: 1, minor: 3, fileMode: 0o640, uid: 0, gid: 0 },
    { path: "/dev/snd/ctl", type: "c", major: 300, minor: 70000, fileMode: devs[2]!.fileMode, uid: 0, gid: 0 },
  ]);
});

test("resolveContainerSecurity: privileged only in a privileged pod; privileged gets host devices", async () => {
  const priv = { privileged: true, capabilities: NO_CAPABILITY_CHANGE, seccomp: { kind: "runtime-default" } as const };
  await assert.rejects(resolveContainerSecurity(priv, {}, 'container "c"'), invalid(/container "c": no privileged container allowed in sandbox/));
  await assert.rejects(resolveContainerSecurity(priv, { privileged: false }, "c"), invalid(/no privileged container allowed/));
  const r = await resolveContainerSecurity(priv, { privileged: true }, "c");
  assert.equal(r.privileged, true);
  assert.deepEqual(r.seccomp, { kind: "unconfined" }, "seccomp is ignored for privileged containers");
  assert.ok(r.devices.some((d) => d.path === "/dev/null"), "the host's /dev/null is among the devices");
  assert.ok(r.capabilities.bounding.includes("CAP_SYS_ADMIN"));
  const plain = await resolveContainerSecurity({ ...priv, privileged: false }, { privileged: true }, "c");
  assert.deepEqual([plain.privileged, plain.devices, plain.seccomp, plain.writableSysfs], [false, [], { kind: "runtime-default" }, false]);
  const pod = await resolvePodSecurity({ privileged: true, seccomp: { kind: "runtime-default" } }, "p");
  assert.deepEqual([pod.privileged, pod.seccomp, pod.writableSysfs, pod.capabilities.bounding], [false, { kind: "unconfined" }, true, DEFAULT_CAPABILITIES]);
});

const mountOpts = (spec: Record<string, any>, type: string) => spec.mounts.find((m: { type: string }) => m.type === type).options as string[]; // eslint-disable-line @typescript-eslint/no-explicit-any

test("applySecurity: capabilities and seccomp; privileged clears masks, opens sysfs, cgroupfs and devices", () => {
  const base: ResolvedSecurity = {
    privileged: false,
    capabilities: capabilitySets(capabilityChange(["NET_ADMIN"], [], [], "c"), HOST, false),
    seccomp: { kind: "runtime-default" },
    devices: [],
    writableSysfs: false,
  };
  const spec = defaultSpec({ args: ["sh"] }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  applySecurity(spec, base);
  assert.ok(spec.process.capabilities.effective.includes("CAP_NET_ADMIN"));
  assert.equal(spec.process.capabilities.inheritable, undefined);
  assert.equal(spec.linux.seccomp.defaultAction, "SCMP_ACT_ERRNO");
  assert.deepEqual(spec.linux.maskedPaths, DEFAULT_MASKED_PATHS);
  assert.ok(mountOpts(spec, "sysfs").includes("ro"));

  const dev = { path: "/dev/kvm", type: "c" as const, major: 10, minor: 232, fileMode: 0o660, uid: 0, gid: 0 };
  const p = defaultSpec({ args: ["sh"] }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  applySecurity(p, { ...base, privileged: true, capabilities: capabilitySets(NO_CAPABILITY_CHANGE, HOST, true), devices: [dev], writableSysfs: true });
  assert.equal(p.linux.seccomp, undefined);
  assert.equal(p.linux.maskedPaths, undefined);
  assert.equal(p.linux.readonlyPaths, undefined);
  assert.ok(mountOpts(p, "sysfs").includes("rw") && !mountOpts(p, "sysfs").includes("ro"));
  assert.ok(mountOpts(p, "cgroup").includes("rw") && !mountOpts(p, "cgroup").includes("ro"));
  assert.deepEqual(p.linux.devices, [dev]);
  assert.deepEqual(p.linux.resources.devices, [{ allow: true, access: "rwm" }]);
  assert.deepEqual(p.process.capabilities.bounding, HOST);

  const pause = defaultSpec({ args: ["pause"] }) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  applySecurity(pause, { ...base, seccomp: { kind: "unconfined" }, writableSysfs: true });
  assert.ok(!mountOpts(pause, "sysfs").includes("ro"), "a privileged pod's pause mounts /sys read-write first");
  assert.ok(mountOpts(pause, "cgroup").includes("ro"));
  assert.deepEqual(pause.linux.maskedPaths, DEFAULT_MASKED_PATHS);
});
