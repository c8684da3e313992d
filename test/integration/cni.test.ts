/**
 * Pod networking through the real CNI plugins (Debian's containernetworking-plugins).
 *
 * Everything stays on this machine: each test makes its own bridge (`skt<random>`), its own
 * network namespaces and a subnet in 10.251.0.0/16 that nothing here routes; traffic only goes
 * between the test's namespaces and the host end of the test's bridge (its gateway address).
 * Each test removes its namespaces, bridge, iptables rules (checked with iptables-save) and temp
 * dirs in t.after. The bridge plugin (isGateway) turns on net.ipv4.ip_forward; the file's after
 * hook restores the value it found.
 */
import { test, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CniNetwork } from "../../src/cni/network.js";
import { createNetns, listNetns, netnsNameForPod, removeNetns } from "../../src/cni/netns.js";
import { defaultConflist, installDefaultConflist, loadConfList } from "../../src/cni/config.js";
import type { CniConfList } from "../../src/cni/types.js";
import { ErrorCode, codeOf } from "../../src/errors.js";
import { run, runChecked } from "../../src/util/exec.js";

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
  id: string;
  dir: string;
  bridge: string;
  subnet: string;
  gateway: string;
  ipamDir: string;
  conf: CniConfList;
  /** Creates a netns for a pod id and registers its removal (and the pod's tearDown). */
  pod(network: CniNetwork, suffix: string): Promise<{ podId: string; ns: string; nsPath: string }>;
}

async function fixture(t: TestContext): Promise<Fixture> {
  const id = randomBytes(4).toString("hex");
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cni-"));
  const bridge = `skt${id}`;
  const third = randomInt(0, 256);
  const subnet = `10.251.${third}.0/24`;
  const ipamDir = path.join(dir, "ipam");
  const conf = defaultConflist({ subnet, bridge, name: `skt-${id}`, dataDir: ipamDir });
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch((e: unknown) => console.error("cleanup:", e));
    await run("ip", ["link", "del", bridge]);
    await rm(dir, { recursive: true, force: true });
    const left = (await runChecked("iptables-save", [])).stdout.toString();
    assert.ok(!left.includes(id), `iptables rules left for ${id}:\n${left}`);
    assert.ok(!(await listNetns()).some((n) => n.includes(id)), "netns left behind");
  });
  return {
    id,
    dir,
    bridge,
    subnet,
    gateway: `10.251.${third}.1`,
    ipamDir,
    conf,
    async pod(network, suffix) {
      const podId = `cnit-${id}-${suffix}`;
      const ns = netnsNameForPod(podId);
      const nsPath = await createNetns(ns);
      cleanups.push(async () => {
        await network.tearDown(podId, nsPath).catch(() => {});
        await removeNetns(ns);
      });
      return { podId, ns, nsPath };
    },
  };
}

/** The IPs host-local holds in its store (files named by address). */
async function allocated(f: Fixture, netName: string): Promise<string[]> {
  try {
    return (await readdir(path.join(f.ipamDir, netName))).filter((n) => net.isIP(n) !== 0);
  } catch {
    return [];
  }
}

async function bridgePorts(bridge: string): Promise<string> {
  return (await run("ip", ["-o", "link", "show", "master", bridge])).stdout.toString().trim();
}

async function nsExec(ns: string, args: string[]) {
  return run("ip", ["netns", "exec", ns, ...args]);
}

test("two pods get addresses on the bridge and reach each other; tearDown is idempotent", async (t) => {
  const f = await fixture(t);
  const network = new CniNetwork({ conf: f.conf, pluginTimeoutMs: 20_000 });
  const a = await f.pod(network, "a");
  const b = await f.pod(network, "b");

  const sa = await network.setUp(a.podId, a.nsPath, { args: { K8S_POD_NAME: "a" } });
  const sb = await network.setUp(b.podId, b.nsPath);
  const ipA = sa.ips[0]!;
  const ipB = sb.ips[0]!;
  assert.ok(ipA.startsWith(f.subnet.slice(0, -4)), `ip ${ipA} in ${f.subnet}`);
  assert.ok(ipB.startsWith(f.subnet.slice(0, -4)), `ip ${ipB} in ${f.subnet}`);
  assert.notEqual(ipA, ipB);
  assert.ok(sa.interfaces.some((i) => i.name === "eth0" && i.sandbox === a.nsPath));
  assert.deepEqual((await allocated(f, f.conf.name)).sort(), [ipA, ipB].sort());

  // lo is up (loopback plugin) and eth0 carries the address.
  const lo = (await nsExec(a.ns, ["ip", "-o", "link", "show", "lo"])).stdout.toString();
  assert.match(lo, /[<,]UP[,>]/);
  const addrA = (await nsExec(a.ns, ["ip", "-o", "-4", "addr", "show", "eth0"])).stdout.toString();
  assert.ok(addrA.includes(`${ipA}/24`), addrA);

  for (const [ns, ip] of [
    [a.ns, ipB],
    [b.ns, ipA],
  ] as const) {
    const ping = await nsExec(ns, ["busybox", "ping", "-c1", "-W2", ip]);
    assert.equal(ping.code, 0, `ping ${ip} from ${ns}: ${ping.stdout}${ping.stderr}`);
  }

  await network.check(a.podId, a.nsPath);

  await network.tearDown(a.podId, a.nsPath);
  assert.deepEqual(await allocated(f, f.conf.name), [ipB]);
  const eth0 = await nsExec(a.ns, ["ip", "link", "show", "eth0"]);
  assert.notEqual(eth0.code, 0, "eth0 removed from pod a");
  await network.tearDown(a.podId, a.nsPath); // DEL twice is fine
  await removeNetns(a.ns);
  await removeNetns(a.ns); // idempotent
  await network.tearDown(a.podId, a.nsPath); // and with the namespace gone

  await network.tearDown(b.podId, b.nsPath);
  assert.deepEqual(await allocated(f, f.conf.name), []);
  assert.equal(await bridgePorts(f.bridge), "", "no veth left on the bridge");
  assert.ok(!(await runChecked("iptables-save", [])).stdout.toString().includes(f.id));
});

test("portmap: a hostPort on the bridge gateway address reaches the pod; tearDown removes the rules", async (t) => {
  const f = await fixture(t);
  const network = new CniNetwork({ conf: f.conf, cacheDir: path.join(f.dir, "cache") });
  const a = await f.pod(network, "pm");
  const hostPort = randomInt(20_000, 30_000);
  const portMappings = [{ hostPort, containerPort: 8080, protocol: "tcp" }];
  await network.setUp(a.podId, a.nsPath, { portMappings });
  assert.ok((await runChecked("iptables-save", [])).stdout.toString().includes(a.podId), "portmap rules present");

  const server = spawn(
    "ip",
    [
      "netns",
      "exec",
      a.ns,
      process.execPath,
      "-e",
      `require("net").createServer((s) => s.end("hi from pod\\n")).listen(8080, "0.0.0.0", () => console.log("ready"))`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.after(() => {
    server.kill("SIGKILL");
  });
  await new Promise<void>((resolve, reject) => {
    server.stdout.on("data", (b: Buffer) => b.toString().includes("ready") && resolve());
    server.on("exit", (c) => reject(new Error(`server exited ${c}`)));
  });

  // The host end of the bridge is a local address, so portmap's OUTPUT DNAT applies to it.
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: f.gateway, port: hostPort });
    let data = "";
    s.setTimeout(5000, () => s.destroy(new Error("timeout")));
    s.on("data", (b) => (data += b.toString()));
    s.on("end", () => resolve(data));
    s.on("error", reject);
  });
  assert.equal(reply, "hi from pod\n");

  // A fresh CniNetwork (as after a daemon restart) finds the ADD result and the port mappings
  // in cacheDir, so tearDown without them still removes portmap's rules.
  // (No CHECK here: portmap 1.1.1's CHECK also looks for an ip6tables chain it never made.)
  const again = new CniNetwork({ conf: f.conf, cacheDir: path.join(f.dir, "cache") });
  await again.tearDown(a.podId, a.nsPath);
  assert.deepEqual(await readdir(path.join(f.dir, "cache")), []);
  const rules = (await runChecked("iptables-save", [])).stdout.toString();
  assert.ok(!rules.includes(a.podId), `rules left for ${a.podId}`);
  await again.tearDown(a.podId, a.nsPath, { portMappings });
});

/** Pids of processes in process group `pgid` that are not zombies. */
async function liveInGroup(pgid: number): Promise<number[]> {
  const live: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    // Fields after the parenthesised comm: state, ppid, pgrp, ...
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(rest[2]) === pgid && rest[0] !== "Z") live.push(Number(name));
  }
  return live;
}

async function fakePlugin(dir: string, name: string, body: string): Promise<void> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\necho "$CNI_COMMAND" >> ${JSON.stringify(path.join(dir, `${name}.log`))}\n${body}\n`);
  await chmod(file, 0o755);
}

test("a failing plugin gives Internal with its msg and the pod id, after rolling back", async (t) => {
  const f = await fixture(t);
  const bin = path.join(f.dir, "bin");
  await runChecked("mkdir", ["-p", bin]);
  await fakePlugin(
    bin,
    "skiff-fail",
    `cat >/dev/null
[ "$CNI_COMMAND" = DEL ] && exit 0
echo '{"cniVersion":"1.0.0","code":999,"msg":"fake failure","details":"on purpose"}'
exit 1`,
  );
  const conf: CniConfList = { ...f.conf, plugins: [f.conf.plugins[0]!, { type: "skiff-fail" }] };
  const network = new CniNetwork({ conf, binDirs: [bin, "/usr/lib/cni"] });
  const a = await f.pod(network, "fail");
  await assert.rejects(network.setUp(a.podId, a.nsPath), (err: unknown) => {
    assert.equal(codeOf(err), ErrorCode.Internal);
    const msg = (err as Error).message;
    assert.match(msg, /fake failure/);
    assert.match(msg, /skiff-fail ADD/);
    assert.ok(msg.includes(a.podId), msg);
    return true;
  });
  assert.deepEqual((await readFile(path.join(bin, "skiff-fail.log"), "utf8")).trim().split("\n"), ["ADD", "DEL"]);
  // The bridge plugin's ADD was undone: no address held, no veth, no masquerade rules.
  assert.deepEqual(await allocated(f, conf.name), []);
  assert.equal(await bridgePorts(f.bridge), "");
  assert.notEqual((await nsExec(a.ns, ["ip", "link", "show", "eth0"])).code, 0);
  assert.ok(!(await runChecked("iptables-save", [])).stdout.toString().includes(f.id));
});

test("a plugin error with code 11 is Unavailable; a missing plugin is FailedPrecondition", async (t) => {
  const f = await fixture(t);
  const bin = path.join(f.dir, "bin");
  await runChecked("mkdir", ["-p", bin]);
  await fakePlugin(
    bin,
    "skiff-busy",
    `cat >/dev/null
[ "$CNI_COMMAND" = DEL ] && exit 0
echo '{"cniVersion":"1.0.0","code":11,"msg":"busy"}'
exit 1`,
  );
  const busy = new CniNetwork({
    conf: { cniVersion: "1.0.0", name: "b", plugins: [{ type: "skiff-busy" }] },
    binDirs: [bin],
    loopback: false,
  });
  const a = await f.pod(busy, "busy");
  await assert.rejects(busy.setUp(a.podId, a.nsPath), (err: unknown) => codeOf(err) === ErrorCode.Unavailable);
  const missing = new CniNetwork({
    conf: { cniVersion: "1.0.0", name: "m", plugins: [{ type: "skiff-nope" }] },
    binDirs: [bin],
    loopback: false,
  });
  await assert.rejects(missing.setUp(a.podId, a.nsPath), (err: unknown) => {
    assert.equal(codeOf(err), ErrorCode.FailedPrecondition);
    assert.match((err as Error).message, /skiff-nope/);
    return true;
  });
});

test("a hanging plugin is killed (with its children) and gives DeadlineExceeded in time", async (t) => {
  const f = await fixture(t);
  const bin = path.join(f.dir, "bin");
  await runChecked("mkdir", ["-p", bin]);
  const pidFile = path.join(bin, "pid");
  await fakePlugin(
    bin,
    "skiff-hang",
    `[ "$CNI_COMMAND" = DEL ] && exit 0
echo $$ > ${JSON.stringify(pidFile)}
sleep 60`,
  );
  const conf: CniConfList = { cniVersion: "1.0.0", name: `h-${f.id}`, plugins: [{ type: "skiff-hang" }] };
  const network = new CniNetwork({ conf, binDirs: [bin, "/usr/lib/cni"], pluginTimeoutMs: 500 });
  const a = await f.pod(network, "hang");
  const start = Date.now();
  await assert.rejects(network.setUp(a.podId, a.nsPath), (err: unknown) => {
    assert.equal(codeOf(err), ErrorCode.DeadlineExceeded);
    assert.match((err as Error).message, /skiff-hang ADD/);
    assert.ok((err as Error).message.includes(a.podId));
    return true;
  });
  const took = Date.now() - start;
  assert.ok(took < 5000, `took ${took} ms`);
  assert.deepEqual((await readFile(path.join(bin, "skiff-hang.log"), "utf8")).trim().split("\n"), ["ADD", "DEL"]);
  const pgid = Number((await readFile(pidFile, "utf8")).trim());
  // The script and its `sleep` share the process group; both must be dead (zombies at most:
  // this container's pid 1 may not reap the orphaned `sleep`).
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await liveInGroup(pgid), []);
});

test("cancel through the caller's signal gives Canceled", async (t) => {
  const f = await fixture(t);
  const bin = path.join(f.dir, "bin");
  await runChecked("mkdir", ["-p", bin]);
  await fakePlugin(bin, "skiff-hang", `[ "$CNI_COMMAND" = DEL ] && exit 0\nsleep 60`);
  const conf: CniConfList = { cniVersion: "1.0.0", name: `c-${f.id}`, plugins: [{ type: "skiff-hang" }] };
  const network = new CniNetwork({ conf, binDirs: [bin, "/usr/lib/cni"], pluginTimeoutMs: 10_000 });
  const a = await f.pod(network, "cancel");
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const start = Date.now();
  await assert.rejects(
    network.setUp(a.podId, a.nsPath, { signal: ac.signal }),
    (err: unknown) => codeOf(err) === ErrorCode.Canceled,
  );
  assert.ok(Date.now() - start < 5000);
});

test("installDefaultConflist writes a loadable config once", async (t) => {
  const f = await fixture(t);
  const dir = path.join(f.dir, "net.d");
  const file = await installDefaultConflist(dir, { subnet: f.subnet, bridge: f.bridge });
  assert.ok(file);
  assert.equal(await installDefaultConflist(dir, { subnet: "10.252.0.0/16" }), undefined);
  const loaded = await loadConfList(dir);
  assert.equal(loaded.file, file);
  assert.deepEqual(loaded.conf.plugins.map((p) => p.type), ["bridge", "portmap"]);
  const network = await CniNetwork.load(dir);
  assert.equal(network.conf.name, "skiff");
});
