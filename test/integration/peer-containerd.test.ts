/**
 * The test-owned containerd 1.6 peer (test/peer/containerd.ts) works: it runs a pod and a
 * container through its CRI, answers the lifecycle scenario (test/peer/scenario.ts), and its
 * `stop()` leaves no shim, mount, netns or temp dir behind. Root only.
 *
 * Each test has its own network: bridge `skp<hex>`, a 10.x.0.0/16 subnet nothing here routes,
 * IPAM store in its temp dir; removed (bridge included) in t.after. The bridge plugin (isGateway)
 * turns on net.ipv4.ip_forward; the file's after hook restores the value it found.
 * SKIFF_TEST_VERBOSE=1 prints the normalized scenario transcript.
 */
import { test, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { defaultConflist } from "../../src/cni/config.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { run, runChecked } from "../../src/util/exec.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { call, criClients, type Reply } from "./cri-client.js";
import { netnsPathsOf, shimPidsFor, startPeerContainerd, type PeerContainerd } from "../peer/containerd.js";
import { builtinImageArchive, BUSYBOX_IMAGE, PAUSE_IMAGE } from "../peer/images.js";
import { lifecycleScenario, normalize, type Transcript } from "../peer/scenario.js";

const verbose = !!process.env.SKIFF_TEST_VERBOSE;
const criCgroups = () => readdirSync("/sys/fs/cgroup").filter((h) => existsSync(path.join("/sys/fs/cgroup", h, "k8s.io")));
const criCgroupsBefore = criCgroups();
const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";
const ipForwardBefore = await readFile(IP_FORWARD, "utf8");
const natBefore = (await runChecked("iptables-save", ["-t", "nat"])).stdout.toString();
after(async () => {
  await writeFile(IP_FORWARD, ipForwardBefore);
  // portmap keeps its shared chains after the last DEL; remove them if this file created them.
  if (!natBefore.includes("CNI-HOSTPORT-DNAT")) {
    const ipt = (...args: string[]) => run("iptables", ["-w", "-t", "nat", ...args]);
    await ipt("-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT");
    await ipt("-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT");
    await ipt("-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ");
    for (const chain of ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"]) {
      await ipt("-F", chain);
      await ipt("-X", chain);
    }
  }
});

interface Fixture {
  dir: string;
  peer: PeerContainerd;
  netName: string;
}

/** A peer on a network of the test's own; everything is removed in t.after. */
async function fixture(t: TestContext): Promise<Fixture> {
  const id = randomBytes(3).toString("hex");
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-peertest-"));
  const bridge = `skp${id}`;
  const netName = `skp-${id}`;
  let peer: PeerContainerd | undefined;
  t.after(async () => {
    await peer?.stop().catch((e: unknown) => console.error("peer stop:", e));
    await run("ip", ["link", "del", bridge]);
    await rm(dir, { recursive: true, force: true });
    const left = (await runChecked("iptables-save", [])).stdout.toString();
    assert.ok(!left.includes(netName), `iptables rules left for ${netName}:\n${left}`);
  });
  const confDir = path.join(dir, "net.d");
  await mkdir(confDir);
  const conf = defaultConflist({ subnet: `10.${randomInt(200, 250)}.0.0/16`, bridge, name: netName, dataDir: path.join(dir, "ipam") });
  await writeFile(path.join(confDir, "10-peer.conflist"), JSON.stringify(conf, null, 2));
  const archive = await builtinImageArchive(dir);
  peer = await startPeerContainerd({ cniConfDir: confDir, images: [{ archive }], sandboxImage: PAUSE_IMAGE });
  return { dir, peer, netName };
}

/** Nothing of the peer is left: no shim naming its socket, no mount under its dir, no dir. */
async function assertGone(peer: PeerContainerd, netnsPaths: string[]): Promise<void> {
  assert.deepEqual(await shimPidsFor(peer.socket), [], "shims left");
  assert.deepEqual(await mountsUnder(peer.dir), [], "mounts left");
  assert.ok(!existsSync(peer.dir), "peer dir left");
  for (const p of netnsPaths) assert.ok(!existsSync(p), `netns ${p} left`);
  assert.ok(!(await isAlive(peer.pid)), "containerd still running");
  if (criCgroupsBefore.length === 0) assert.deepEqual(criCgroups(), [], "k8s.io cgroups left");
}

async function poll<T>(fn: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (done(v) || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("peer containerd runs a pod and a container and stop() leaves nothing behind", async (t) => {
  const { dir, peer } = await fixture(t);
  const c = criClients(peer.socket);
  t.after(() => c.close());

  const version = await call(c.runtime, "Version", {});
  assert.equal(version.runtime_name, "containerd");
  assert.match(version.runtime_version, /^1\.6\.20/);

  const img = await call(c.image, "ImageStatus", { image: { image: BUSYBOX_IMAGE } });
  assert.deepEqual(img.image?.repo_tags, [BUSYBOX_IMAGE]);

  const logDir = path.join(dir, "logs", "pod");
  await mkdir(logDir, { recursive: true });
  const podConfig = {
    metadata: { name: "peer-self", namespace: "default", uid: `uid-${randomBytes(4).toString("hex")}`, attempt: 1 },
    hostname: "peer-self",
    log_directory: logDir,
    linux: {},
  };
  const { pod_sandbox_id: pod } = await call(c.runtime, "RunPodSandbox", { config: podConfig });
  const podStatus = await call(c.runtime, "PodSandboxStatus", { pod_sandbox_id: pod, verbose: true });
  assert.equal(podStatus.status.state, "SANDBOX_READY");
  assert.match(podStatus.status.network.ip, /^10\.\d+\.\d+\.\d+$/);
  const netnsPaths = netnsPathsOf(podStatus);
  assert.equal(netnsPaths.length, 1);
  assert.ok(existsSync(netnsPaths[0]!));

  const { container_id: ctr } = await call(c.runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: { metadata: { name: "hello" }, image: { image: BUSYBOX_IMAGE }, command: ["sh", "-c", "echo hello; exit 3"], log_path: "c.log", linux: {} },
    sandbox_config: podConfig,
  });
  await call(c.runtime, "StartContainer", { container_id: ctr });
  const st: Reply = await poll(
    () => call(c.runtime, "ContainerStatus", { container_id: ctr }),
    (r) => r.status.state === "CONTAINER_EXITED",
  );
  assert.equal(st.status.state, "CONTAINER_EXITED");
  assert.equal(st.status.exit_code, 3);
  const log = await poll(
    () => readFile(path.join(logDir, "c.log"), "utf8").catch(() => ""),
    (s) => s.includes("\n"),
  );
  assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) stdout F hello\n$/);

  // Leave a running container in a second pod: stop() must clean it up by itself.
  const pod2Config = { ...podConfig, metadata: { ...podConfig.metadata, name: "peer-left", uid: `${podConfig.metadata.uid}-2` } };
  const { pod_sandbox_id: pod2 } = await call(c.runtime, "RunPodSandbox", { config: pod2Config });
  netnsPaths.push(...netnsPathsOf(await call(c.runtime, "PodSandboxStatus", { pod_sandbox_id: pod2, verbose: true })));
  const { container_id: ctr2 } = await call(c.runtime, "CreateContainer", {
    pod_sandbox_id: pod2,
    config: { metadata: { name: "sleeper" }, image: { image: BUSYBOX_IMAGE }, command: ["sleep", "3600"], log_path: "s.log", linux: {} },
    sandbox_config: pod2Config,
  });
  await call(c.runtime, "StartContainer", { container_id: ctr2 });
  assert.ok((await shimPidsFor(peer.socket)).length >= 1, "a shim names the peer's socket");

  await call(c.runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(c.runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  assert.ok(!existsSync(netnsPaths[0]!), "containerd removed the pod's netns");

  c.close();
  await peer.stop();
  await peer.stop(); // idempotent
  await assertGone(peer, netnsPaths);
});

test("lifecycle scenario against the peer containerd", async (t) => {
  const { dir, peer } = await fixture(t);
  const c = criClients(peer.socket);
  t.after(() => c.close());
  const logDir = path.join(dir, "logs", "scenario");
  await mkdir(logDir, { recursive: true });

  const transcript = await lifecycleScenario(c, { logDir, image: BUSYBOX_IMAGE });
  const norm = normalize(transcript);
  if (verbose) console.log(JSON.stringify(norm, null, 2));
  const get = (tr: Transcript, step: string) => {
    const e = tr.find((x) => x.step === step);
    assert.ok(e, `step ${step} recorded`);
    return e as { step: string; response?: Reply; error?: { code: number; details: string }; elapsedMs?: number };
  };
  const steps = norm.map((e) => e.step);
  assert.equal(new Set(steps).size, steps.length, "step names are unique");

  assert.equal(get(norm, "Version").response?.runtime_name, "containerd");
  assert.equal(get(norm, "ContainerStatus(hello,exited)").response?.status.exit_code, 3);
  assert.deepEqual(get(norm, "ReadLog(hello)").response?.lines, ["<ts> stdout F hello"]);
  const echo = get(transcript, "ExecSync(echo hi)").response;
  assert.equal(Buffer.from(echo?.stdout).toString(), "hi\n");
  assert.equal(echo?.exit_code, 0);
  const five = get(transcript, "ExecSync(exit 5)").response;
  assert.equal(Buffer.from(five?.stdout).toString(), "out\n");
  assert.equal(Buffer.from(five?.stderr).toString(), "err\n");
  assert.equal(five?.exit_code, 5);
  assert.ok(get(norm, "ExecSync(exited)").error, "ExecSync on an exited container fails");
  assert.equal(get(norm, "PodSandboxStatus(removed)").error?.code, 5, "NotFound after remove");
  // containerd 1.6: a timed-out ExecSync is DEADLINE_EXCEEDED after ~timeout, no output.
  const timedOut = get(transcript, "ExecSync(timeout 1, sleep 10)");
  assert.equal(timedOut.error?.code, 4, JSON.stringify(timedOut));
  assert.ok(timedOut.elapsedMs! >= 900 && timedOut.elapsedMs! < 5_000, `exec timeout honoured (${timedOut.elapsedMs} ms)`);
  // `sleep` is pid 1 of its own pid namespace: SIGTERM is ignored, SIGKILL after the 2 s timeout.
  assert.equal(get(norm, "ContainerStatus(sleeper,stopped)").response?.status.exit_code, 137);
  assert.ok(get(transcript, "StopContainer(sleeper,2)").elapsedMs! >= 1_900);
  assert.equal(get(norm, "StopContainer(unknown)").error?.code, 5);
  assert.deepEqual(get(norm, "RemoveContainer(unknown)").response, {});
  assert.deepEqual(get(norm, "ImageStatus(missing)").response, { image: null, info: {} });
  assert.deepEqual(get(norm, "ListContainers(after remove)").response, { containers: [] });

  // Normalization is stable: the same transcript twice gives the same result.
  assert.deepEqual(normalize(transcript), norm);
  c.close();
  await peer.stop();
  await assertGone(peer, []);
});

test("stop() after containerd died kills its shims and containers and removes their netns", async (t) => {
  const { dir, peer } = await fixture(t);
  const c = criClients(peer.socket);
  t.after(() => c.close());
  const logDir = path.join(dir, "logs", "crash");
  await mkdir(logDir, { recursive: true });
  const ns = { network: "POD", pid: "CONTAINER", ipc: "POD" };
  const podConfig = {
    metadata: { name: "peer-crash", namespace: "default", uid: `uid-${randomBytes(4).toString("hex")}`, attempt: 0 },
    hostname: "peer-crash",
    log_directory: logDir,
    linux: { security_context: { namespace_options: ns } },
  };
  const { pod_sandbox_id: pod } = await call(c.runtime, "RunPodSandbox", { config: podConfig });
  const podStatus = await call(c.runtime, "PodSandboxStatus", { pod_sandbox_id: pod, verbose: true });
  const netnsPaths = netnsPathsOf(podStatus);
  assert.equal(netnsPaths.length, 1);
  const { container_id: ctr } = await call(c.runtime, "CreateContainer", {
    pod_sandbox_id: pod,
    config: { metadata: { name: "sleeper" }, image: { image: BUSYBOX_IMAGE }, command: ["sleep", "3600"], log_path: "s.log", linux: { security_context: { namespace_options: ns } } },
    sandbox_config: podConfig,
  });
  await call(c.runtime, "StartContainer", { container_id: ctr });
  const pids = [podStatus, await call(c.runtime, "ContainerStatus", { container_id: ctr, verbose: true })].map(
    (r) => Number(JSON.parse(Object.values(r.info as Record<string, string>)[0]!).pid),
  );
  assert.ok(pids.every((p) => p > 0), `pids ${pids}`);
  const shims = await shimPidsFor(peer.socket);
  assert.equal(shims.length, 1, "one shim per pod");
  const address = (await readFile(path.join(peer.dir, "state", "io.containerd.runtime.v2.task", "k8s.io", pod, "address"), "utf8")).trim();
  const shimSocket = address.replace(/^unix:\/\//, "");
  assert.ok(existsSync(shimSocket), shimSocket);
  c.close();

  process.kill(peer.pid, "SIGKILL");
  await peer.stop();
  await assertGone(peer, netnsPaths);
  // Orphans are reaped by pid 1 in its own time: a zombie counts as gone.
  for (const pid of [...pids, ...shims]) assert.ok(await waitForExit(pid, 5_000), `process ${pid} left`);
  assert.ok(!existsSync(shimSocket), "shim socket left");
});
