import { test } from "node:test";
import assert from "node:assert/strict";
import type { ImageRecord } from "../metadata/index.js";
import { isInvalidArgument } from "../errors.js";
import { containerArgs, containerSpec, type ContainerSpecInput } from "./container-spec.js";
import type { MountRecord, SandboxRecord } from "./records.js";
import { capabilityChange, resolveContainerSecurity } from "./security.js";
import { testImage, testPod } from "./spec-testing.js";

const image = (o: Partial<ImageRecord["config"]> = {}): ImageRecord =>
  testImage("docker.io/library/app:1", { cmd: ["sh"], env: ["PATH=/usr/bin", "A=image", "B=image"], ...o });

const pod = (o: Partial<SandboxRecord> = {}): SandboxRecord => testPod({ pid: 4242, podDir: "/pods/p", cgroupParent: "", hostname: "web-0", ...o });

const input = (o: Partial<ContainerSpecInput> = {}): ContainerSpecInput => ({
  id: "c".repeat(64),
  name: "c",
  command: [],
  args: [],
  workingDir: "",
  envs: [],
  mounts: [],
  tty: false,
  stdin: false,
  user: { uid: 0, gid: 0, additionalGids: [] },
  readonlyRootfs: false,
  noNewPrivs: false,
  maskedPaths: [],
  readonlyPaths: [],
  namespaces: { pid: 0, ipc: 0, network: 0 },
  ...o,
});

type Mount = { destination: string; source: string; options: string[] };
const spec = (c: Partial<ContainerSpecInput> = {}, p = pod(), img = image(), minOom = 0) => containerSpec(img, p, input(c), minOom);
const mountsOf = (s: Record<string, any>) => s.mounts as Mount[]; // eslint-disable-line @typescript-eslint/no-explicit-any
const nsOf = (s: Record<string, any>) => Object.fromEntries((s.linux.namespaces as { type: string; path?: string }[]).map((n) => [n.type, n.path ?? "new"])); // eslint-disable-line @typescript-eslint/no-explicit-any
const bind = (containerPath: string, propagation: MountRecord["propagation"] = 0, readonly = false): MountRecord => ({ containerPath, hostPath: `/host${containerPath}`, readonly, propagation });

test("containerArgs: command replaces the entrypoint (and drops cmd), args replace cmd; nothing to run is refused", () => {
  const img = image({ entrypoint: ["/entry", "-v"], cmd: ["serve"] });
  assert.deepEqual(containerArgs(img, [], []), ["/entry", "-v", "serve"]);
  assert.deepEqual(containerArgs(img, ["/bin/true"], []), ["/bin/true"]);
  assert.deepEqual(containerArgs(img, [], ["run"]), ["/entry", "-v", "run"]);
  assert.deepEqual(containerArgs(image({ cmd: [] }), [], ["only-args"]), ["only-args"]);
  assert.throws(() => containerArgs(image({ cmd: [] }), [], []), (e: Error) => isInvalidArgument(e) && /"docker.io\/library\/app:1"/.test(e.message));
  assert.throws(() => containerArgs(image(), ["x".repeat(4096)], [], 'container "c"'), (e: Error) => isInvalidArgument(e) && /container "c": the executable "x+…" is 4096 bytes long/.test(e.message));
  assert.deepEqual(containerArgs(image(), ["x".repeat(4095)], []), ["x".repeat(4095)], "a name as long as a path may be is fine");
});

test("containerSpec: env merged over the image's, cwd, tty, user, noNewPrivileges, readonly rootfs", () => {
  const s = spec({ envs: [["B", "mine"], ["C", "x=y"]], workingDir: "/srv", tty: true, user: { uid: 7, gid: 8, additionalGids: [9] }, noNewPrivs: false, readonlyRootfs: true, maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"] });
  assert.deepEqual(s.process.env, ["HOSTNAME=web-0", "PATH=/usr/bin", "A=image", "B=mine", "C=x=y"]);
  assert.equal(s.process.cwd, "/srv");
  assert.equal(s.process.terminal, true);
  assert.deepEqual(s.process.user, { uid: 7, gid: 8, additionalGids: [9] });
  assert.equal(s.process.noNewPrivileges, false);
  assert.equal(s.root.readonly, true);
  assert.deepEqual(s.linux.maskedPaths, ["/proc/kcore"]);
  assert.deepEqual(s.linux.readonlyPaths, ["/proc/sys"]);
  assert.equal(spec({ noNewPrivs: true }).process.noNewPrivileges, true);
  assert.equal(spec().process.cwd, "/", "no working dir anywhere: /");
  assert.match(spec({}, pod(), image({ env: [] })).process.env[1]!, /^PATH=/, "an image without env gets the default PATH");
  assert.equal(spec().annotations["io.kubernetes.cri.container-type"], "container");
});

test("containerSpec: HOSTNAME is the pod's hostname, the node's with host network; the image or the config may set it", async () => {
  const { hostname } = await import("node:os");
  const env = (e: string[]) => e.filter((x) => x.startsWith("HOSTNAME="));
  assert.deepEqual(env(spec().process.env), ["HOSTNAME=web-0"]);
  assert.deepEqual(env(spec({}, pod({ namespaces: { network: 2, pid: 0, ipc: 0 } })).process.env), [`HOSTNAME=${hostname()}`]);
  assert.deepEqual(env(spec({}, pod(), image({ env: ["PATH=/bin", "HOSTNAME=from-image"] })).process.env), ["HOSTNAME=from-image"]);
  assert.deepEqual(env(spec({ envs: [["HOSTNAME", "mine"]] }).process.env), ["HOSTNAME=mine"]);
});

test("containerSpec: pod files are mounted (read-only with a read-only rootfs) unless a user mount takes their path", () => {
  const files = (s: Record<string, unknown>) => mountsOf(s).filter((m) => m.destination.startsWith("/etc/"));
  assert.deepEqual(files(spec()), [
    { destination: "/etc/hostname", type: "bind", source: "/pods/p/hostname", options: ["rbind", "rprivate", "rw"] },
    { destination: "/etc/hosts", type: "bind", source: "/pods/p/hosts", options: ["rbind", "rprivate", "rw"] },
    { destination: "/etc/resolv.conf", type: "bind", source: "/pods/p/resolv.conf", options: ["rbind", "rprivate", "rw"] },
  ]);
  assert.ok(files(spec({ readonlyRootfs: true })).every((m) => m.options.includes("ro")));
  const own = files(spec({ mounts: [bind("/etc//resolv.conf", 0, true)] }));
  assert.deepEqual(own.map((m) => m.source), ["/pods/p/hostname", "/pods/p/hosts", "/host/etc//resolv.conf"]);
});

test("containerSpec: mount propagation options and the rootfs propagation they need", () => {
  const s = spec({ mounts: [bind("/a", 0), bind("/b", 1, true), bind("/c", 2)] });
  const opts = Object.fromEntries(mountsOf(s).map((m) => [m.destination, m.options]));
  assert.deepEqual(opts["/a"], ["rbind", "rprivate", "rw"]);
  assert.deepEqual(opts["/b"], ["rbind", "rslave", "ro"]);
  assert.deepEqual(opts["/c"], ["rbind", "rshared", "rw"]);
  assert.equal(s.linux.rootfsPropagation, "rshared", "rshared wins whatever the order");
  assert.equal(spec({ mounts: [bind("/c", 2), bind("/b", 1)] }).linux.rootfsPropagation, "rshared");
  assert.equal(spec({ mounts: [bind("/b", 1)] }).linux.rootfsPropagation, "rslave");
  assert.equal(spec({ mounts: [bind("/a", 0)] }).linux.rootfsPropagation, undefined);
});

test("containerSpec: namespaces joined through the pause process; pid modes POD, CONTAINER, NODE, TARGET", () => {
  const pause = (t: string) => `/proc/4242/ns/${t}`;
  assert.deepEqual(nsOf(spec()), { network: "/var/run/netns/skiff-x", uts: pause("uts"), ipc: pause("ipc"), pid: pause("pid"), mount: "new" });
  const pid = (mode: 0 | 1 | 2 | 3, p = pod(), targetPid?: number) => nsOf(spec({ namespaces: { pid: mode, ipc: 0, network: 0, ...(targetPid ? { targetPid } : {}) } }, p)).pid;
  assert.equal(pid(1), "new");
  assert.equal(pid(2), undefined);
  assert.equal(pid(3, pod(), 99), "/proc/99/ns/pid");
  assert.throws(() => pid(3), (e: Error) => isInvalidArgument(e) && /TARGET/.test(e.message));
  assert.equal(pid(0, pod({ namespaces: { network: 0, pid: 2, ipc: 0 } })), undefined, "POD in a pod with the host's pid namespace");
  const host = nsOf(spec({}, pod({ netns: null, namespaces: { network: 2, pid: 0, ipc: 2 } })));
  assert.deepEqual(host, { pid: pause("pid"), mount: "new" }, "host network and IPC: no network, uts or ipc namespace");
});

test("containerSpec: resources, cgroupsPath under the pod's parent, oom_score_adj clamped", () => {
  const resources = { cpuPeriod: 100000, cpuQuota: 20000, cpuShares: 256, memoryLimitInBytes: 64 << 20, oomScoreAdj: -998, cpusetCpus: "0-1", cpusetMems: "0" };
  const s = spec({ resources }, pod({ cgroupParent: "/kubepods/pod-u" }), image(), -500);
  assert.deepEqual(s.linux.resources.cpu, { shares: 256, quota: 20000, period: 100000, cpus: "0-1", mems: "0" });
  assert.deepEqual(s.linux.resources.memory, { limit: 64 << 20 });
  assert.equal(s.process.oomScoreAdj, -500, "never below the minimum given");
  assert.equal(s.linux.cgroupsPath, `/kubepods/pod-u/${"c".repeat(64)}`);
  assert.equal(spec({ resources: { ...resources, oomScoreAdj: 1000 } }, pod(), image(), -500).process.oomScoreAdj, 1000);
  const none = spec({ resources: { ...resources, cpuPeriod: 0, cpuQuota: 0, cpuShares: 0, memoryLimitInBytes: 0, oomScoreAdj: 0, cpusetCpus: "", cpusetMems: "" } });
  assert.equal(none.linux.resources.cpu, undefined);
  assert.equal(none.linux.resources.memory, undefined);
  assert.equal(none.linux.cgroupsPath, undefined);
});

test("security context: capabilities and seccomp applied; request paths replace defaults; privileged clears them", async () => {
  const sec = await resolveContainerSecurity(
    { privileged: false, capabilities: capabilityChange(["NET_ADMIN"], ["ALL"], [], "c"), seccomp: { kind: "runtime-default" } },
    {},
    "c",
  );
  const s = spec({ security: sec, maskedPaths: ["/proc/x"], readonlyPaths: ["/proc/y"] });
  assert.deepEqual(s.process.capabilities, { bounding: ["CAP_NET_ADMIN"], effective: ["CAP_NET_ADMIN"], permitted: ["CAP_NET_ADMIN"] });
  assert.equal(s.linux.seccomp.defaultAction, "SCMP_ACT_ERRNO");
  assert.deepEqual([s.linux.maskedPaths, s.linux.readonlyPaths], [["/proc/x"], ["/proc/y"]]);
  const defaults = spec();
  assert.ok(defaults.linux.maskedPaths.includes("/proc/kcore"), "containerd's defaults when the request lists none");
  assert.ok(defaults.linux.readonlyPaths.includes("/proc/sys"));
  assert.equal(defaults.linux.seccomp, undefined);

  const priv = await resolveContainerSecurity({ privileged: true, capabilities: capabilityChange([], ["ALL"], [], "c"), seccomp: { kind: "runtime-default" } }, { privileged: true }, "c");
  const p = spec({ security: priv, maskedPaths: ["/proc/x"] }, pod({ privileged: true }));
  assert.equal(p.linux.maskedPaths, undefined, "privileged: no masked paths, even requested ones");
  assert.equal(p.linux.readonlyPaths, undefined);
  assert.equal(p.linux.seccomp, undefined);
  assert.ok(p.process.capabilities.bounding.includes("CAP_SYS_ADMIN"), "drop ALL is ignored for privileged containers");
  assert.ok(p.linux.devices.length > 0);
});

test("containerSpec: /dev/shm binds the pod's shared one (read-write) unless a mount of the request takes its place", () => {
  const shm = (s: ReturnType<typeof spec>) => mountsOf(s).filter((m) => m.destination === "/dev/shm");
  assert.deepEqual(shm(spec({ devShm: "/pods/p/shm" })), [
    { destination: "/dev/shm", type: "bind", source: "/pods/p/shm", options: ["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"] },
  ]);
  const own = shm(spec({ devShm: "/pods/p/shm", mounts: [bind("/dev/shm", 0)] }));
  assert.deepEqual(own.map((m) => (m as { type?: string }).type), ["bind"]);
  assert.equal(own[0]!.source, "/host/dev/shm", "the request's mount, not the pod's");
  assert.deepEqual(shm(spec()).map((m) => (m as { type?: string }).type), ["tmpfs"], "without one (a pod from an older skiffd): a private tmpfs");
});

test("containerSpec: the request's mounts and the pod's /dev/shm are all in the spec", () => {
  const dests = mountsOf(spec({ devShm: "/pods/p/shm", mounts: [bind("/a", 0), bind("/b", 1, true)] })).map((m) => m.destination);
  for (const d of ["/a", "/b", "/dev/shm", "/etc/hosts"]) assert.ok(dests.includes(d), `${d} in ${dests.join(" ")}`);
});
