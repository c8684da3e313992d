import { test } from "node:test";
import assert from "node:assert/strict";
import type { ImageRecord } from "../metadata/index.js";
import { isInvalidArgument } from "../errors.js";
import { checkSysctls, pauseSpec } from "./pod-spec.js";
import { containerArgs, containerSpec, type ContainerSpecInput } from "./container-spec.js";
import type { SandboxRecord } from "./records.js";

const image = (entrypoint: string[], cmd: string[]): ImageRecord => ({
  name: "docker.io/library/x:1",
  target: { digest: `sha256:${"a".repeat(64)}`, mediaType: "m", size: 1 },
  configDigest: `sha256:${"b".repeat(64)}`,
  config: { os: "linux", architecture: "amd64", variant: "", entrypoint, cmd, env: ["PATH=/bin", "A=image"], user: "", workingDir: "/w", volumes: [], stopSignal: "", labels: {}, exposedPorts: [], diffIds: [], created: "" },
  size: 1,
  labels: {},
  createdAt: 0,
  updatedAt: 0,
});

const pod = (o: Partial<SandboxRecord> = {}): SandboxRecord =>
  ({
    id: "p".repeat(64),
    name: "web",
    namespace: "ns",
    uid: "u",
    hostname: "web",
    logDirectory: "/logs",
    namespaces: { network: 0, pid: 0, ipc: 0 },
    netns: { name: "skiff-x", path: "/var/run/netns/skiff-x" },
    pid: 4242,
    podDir: "/pods/p",
    cgroupParent: "/kubepods",
    ...o,
  }) as SandboxRecord;

const input = (o: Partial<ContainerSpecInput> = {}): ContainerSpecInput => ({
  id: "c".repeat(64),
  name: "c",
  command: [],
  args: [],
  workingDir: "",
  envs: [["A", "mine"]],
  mounts: [],
  tty: false,
  stdin: false,
  user: { uid: 1000, gid: 1000, additionalGids: [5] },
  readonlyRootfs: false,
  noNewPrivs: true,
  maskedPaths: [],
  readonlyPaths: [],
  namespaces: { pid: 1, ipc: 0, network: 0 },
  ...o,
});

const ns = (spec: Record<string, any>) => Object.fromEntries((spec.linux.namespaces as { type: string; path?: string }[]).map((n) => [n.type, n.path ?? "new"])); // eslint-disable-line @typescript-eslint/no-explicit-any

test("containerArgs: command replaces the entrypoint, args replace cmd", () => {
  const img = image(["/entry"], ["default"]);
  assert.deepEqual(containerArgs(img, [], []), ["/entry", "default"]);
  assert.deepEqual(containerArgs(img, [], ["x"]), ["/entry", "x"]);
  assert.deepEqual(containerArgs(img, ["sh"], ["-c", "true"]), ["sh", "-c", "true"]);
  assert.throws(() => containerArgs(image([], []), [], []), isInvalidArgument);
});

test("containerSpec: pod namespaces through the pause process, mounts, env, resources", () => {
  const s = containerSpec(
    image([], ["sh"]),
    pod(),
    input({
      mounts: [
        { containerPath: "/data", hostPath: "/srv", readonly: true, propagation: 1 },
        { containerPath: "/etc/hosts", hostPath: "/my/hosts", readonly: false, propagation: 0 },
      ],
      resources: { cpuPeriod: 100000, cpuQuota: 50000, cpuShares: 512, memoryLimitInBytes: 1 << 26, oomScoreAdj: -500, cpusetCpus: "0", cpusetMems: "" },
    }),
    100,
  );
  assert.deepEqual(ns(s), { network: "/var/run/netns/skiff-x", uts: `/proc/4242/ns/uts`, ipc: `/proc/4242/ns/ipc`, pid: "new", mount: "new" });
  assert.deepEqual(s.process.env, ["PATH=/bin", "A=mine"]);
  assert.equal(s.process.cwd, "/w");
  assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [5] });
  assert.equal(s.process.noNewPrivileges, true);
  assert.equal(s.process.oomScoreAdj, 100, "clamped to the daemon's own value");
  assert.deepEqual(s.linux.resources.cpu, { shares: 512, quota: 50000, period: 100000, cpus: "0" });
  assert.deepEqual(s.linux.resources.memory, { limit: 1 << 26 });
  assert.equal(s.linux.cgroupsPath, `/kubepods/${"c".repeat(64)}`);
  assert.equal(s.linux.rootfsPropagation, "rslave");
  const mounts = s.mounts as { destination: string; source: string; options: string[] }[];
  assert.deepEqual(mounts.find((m) => m.destination === "/data")?.options, ["rbind", "rslave", "ro"]);
  assert.equal(mounts.filter((m) => m.destination === "/etc/hosts").length, 1, "a user mount replaces the pod's hosts file");
  assert.equal(mounts.find((m) => m.destination === "/etc/hosts")?.source, "/my/hosts");
  assert.equal(mounts.find((m) => m.destination === "/etc/resolv.conf")?.source, "/pods/p/resolv.conf");
});

test("containerSpec: pid modes and host namespaces", () => {
  const pid = (mode: 0 | 1 | 2 | 3, p = pod(), targetPid?: number) =>
    ns(containerSpec(image([], ["sh"]), p, input({ namespaces: { pid: mode, ipc: 0, network: 0, ...(targetPid ? { targetPid } : {}) } }), 0)).pid;
  assert.equal(pid(0), "/proc/4242/ns/pid");
  assert.equal(pid(1), "new");
  assert.equal(pid(2), undefined);
  assert.equal(pid(3, pod(), 77), "/proc/77/ns/pid");
  assert.throws(() => pid(3), isInvalidArgument);
  const host = ns(containerSpec(image([], ["sh"]), pod({ netns: null, namespaces: { network: 2, pid: 2, ipc: 2 } }), input(), 0));
  assert.deepEqual(host, { pid: "new", mount: "new" });
});

test("pauseSpec and checkSysctls", () => {
  const hostNet = pauseSpec(image([], ["/pause"]), pod({ netns: null, namespaces: { network: 2, pid: 2, ipc: 0 } }), { sysctls: {}, readonlyRootfs: false, supplementalGroups: [] });
  assert.deepEqual(ns(hostNet), { ipc: "new", mount: "new" });
  const own = pauseSpec(image([], ["/pause"]), pod(), { sysctls: { "net.ipv4.ip_forward": "1" }, readonlyRootfs: true, supplementalGroups: [], runAsUser: 65535 });
  assert.equal(own.hostname, "web");
  assert.equal(own.root.readonly, true);
  assert.equal(own.process.user.uid, 65535);
  assert.deepEqual(own.linux.sysctl, { "net.ipv4.ip_forward": "1" });
  assert.equal(own.annotations["io.kubernetes.cri.container-type"], "sandbox");
  checkSysctls({ "net.core.somaxconn": "1", "kernel.shmmax": "1" }, pod());
  assert.throws(() => checkSysctls({ "kernel.hostname": "x" }, pod()), isInvalidArgument);
  assert.throws(() => checkSysctls({ "net.core.somaxconn": "1" }, pod({ namespaces: { network: 2, pid: 0, ipc: 0 } })), isInvalidArgument);
});
