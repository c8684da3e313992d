/**
 * Pod networking through CRI, on addresses inside this machine only: each pod gets an IP on the
 * test's bridge, two pods reach each other, a hostPort mapping reaches a server in a pod, a host
 * network pod shares the host's network and hostname, and the DNS config and hostname show in the
 * container. Afterwards no netns, iptables rule or shim of the test is left.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import * as http from "node:http";
import * as net from "node:net";
import { hostname as hostHostname, networkInterfaces } from "node:os";
import * as path from "node:path";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import { runChecked } from "../../src/util/exec.js";
import { listNetns } from "../../src/cni/netns.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port in 20000-32767 (below the ephemeral range, so no outgoing socket takes it). */
async function freeHostPort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    const srv = net.createServer();
    const ok = await new Promise<boolean>((r) => srv.once("error", () => r(false)).listen(port, "0.0.0.0", () => r(true)));
    if (ok) {
      await new Promise((r) => srv.close(r));
      return port;
    }
  }
}

/** The host's first non-loopback IPv4 address (not one of the test's bridge). */
function primaryAddress(exclude: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === exclude) continue;
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 3000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

test("pod networking: IPs, pod to pod, hostPort, host network, DNS and hostname", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const hostPort = await freeHostPort();
  let localPort = await freeHostPort();
  while (localPort === hostPort) localPort = await freeHostPort();
  const pods: string[] = [];
  const run = async (name: string, extra: object) => {
    const cfg = podConfig(name, logDir, extra);
    const id = (await call(runtime, "RunPodSandbox", { config: cfg })).pod_sandbox_id;
    pods.push(id);
    return { id, cfg };
  };
  const start = async (pod: { id: string; cfg: object }, name: string, script: string) => {
    const c = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod.id, config: ctrConfig(name, ["sh", "-c", script]), sandbox_config: pod.cfg })).container_id;
    await call(runtime, "StartContainer", { container_id: c });
    await waitState(runtime, c, "CONTAINER_RUNNING");
    return c;
  };
  const exec = async (c: string, cmd: string[]) => {
    const r = await call(runtime, "ExecSync", { container_id: c, cmd, timeout: 10 });
    return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exit_code };
  };

  const a = await run("net-a", {
    dns_config: { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5"] },
    port_mappings: [{ protocol: "TCP", container_port: 8080, host_port: hostPort, host_ip: "" }],
  });
  const b = await run("net-b", {});
  // A mapping bound to 127.0.0.1 only (portmap sets route_localnet on the bridge for it).
  const l = await run("net-local", { port_mappings: [{ protocol: "TCP", container_port: 8080, host_port: localPort, host_ip: "127.0.0.1" }] });
  const ipOf = async (id: string) => (await call(runtime, "PodSandboxStatus", { pod_sandbox_id: id })).status.network.ip as string;
  const [ipA, ipB] = [await ipOf(a.id), await ipOf(b.id)];
  const prefix = env.cfg.cni.defaultSubnet.split(".").slice(0, 3).join(".") + ".";
  assert.ok(ipA.startsWith(prefix) && ipB.startsWith(prefix) && ipA !== ipB, `pod IPs ${ipA} ${ipB} in ${env.cfg.cni.defaultSubnet}`);

  const server = await start(a, "web", "mkdir -p /www && echo hello-from-a > /www/index.html && exec httpd -f -p 8080 -h /www");
  const client = await start(b, "client", "exec sleep 3600");
  // The server needs a moment to listen.
  let fetched = "";
  for (let i = 0; i < 50 && !fetched.includes("hello-from-a"); i++) {
    fetched = (await exec(client, ["wget", "-q", "-O", "-", `http://${ipA}:8080/`])).out;
    if (!fetched) await sleep(100);
  }
  assert.equal(fetched, "hello-from-a\n", "pod B reaches pod A by its IP");
  assert.equal((await exec(server, ["ip", "-4", "-o", "addr", "show", "eth0"])).out.includes(`inet ${ipA}/`), true, "eth0 carries the pod IP");

  // hostPort: through the host's own address on the bridge (the gateway) and the published port.
  const gateway = `${prefix}1`;
  assert.equal(await httpGet(`http://${gateway}:${hostPort}/`), "hello-from-a\n", "hostPort reaches the pod's server");
  assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/`), "hello-from-a\n", "hostPort through 127.0.0.1");
  const primary = primaryAddress(env.cfg.cni.defaultBridge);
  if (primary) assert.equal(await httpGet(`http://${primary}:${hostPort}/`), "hello-from-a\n", `hostPort through ${primary}`);
  // host_ip 127.0.0.1: reachable there, and only there.
  await start(l, "web", "mkdir -p /www && echo hello-from-local > /www/index.html && exec httpd -f -p 8080 -h /www");
  let local = "";
  for (let i = 0; i < 50 && !local; i++) local = await httpGet(`http://127.0.0.1:${localPort}/`).catch(async () => (await sleep(100), ""));
  assert.equal(local, "hello-from-local\n", "a hostPort bound to 127.0.0.1");
  await assert.rejects(httpGet(`http://${gateway}:${localPort}/`), /ECONNREFUSED|timeout/, "not published on other addresses");

  // DNS config and hostname inside the container.
  const resolv = (await exec(server, ["cat", "/etc/resolv.conf"])).out;
  assert.match(resolv, /^search default\.svc\.cluster\.local svc\.cluster\.local$/m);
  assert.match(resolv, /^nameserver 10\.96\.0\.10$/m);
  assert.match(resolv, /^options ndots:5$/m);
  assert.equal((await exec(server, ["hostname"])).out, "net-a\n");
  assert.equal((await exec(server, ["cat", "/etc/hostname"])).out, "net-a\n");

  // Host network: no pod IP, the host's hostname and interfaces.
  const h = await run("net-host", { linux: { security_context: { namespace_options: { network: "NODE" } } } });
  assert.equal(await ipOf(h.id), "");
  const hc = await start(h, "h", "exec sleep 3600");
  assert.equal((await exec(hc, ["hostname"])).out, `${hostHostname()}\n`);
  assert.match((await exec(hc, ["ip", "-o", "link"])).out, new RegExp(env.cfg.cni.defaultBridge), "sees the host's bridge");

  for (const id of pods) {
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: id });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: id });
  }
  const end = Date.now() + 15_000;
  while (d.meta.shims.list().length > 0 && Date.now() < end) await sleep(100);
  assert.deepEqual(d.meta.shims.list(), []);
  // Network teardown runs in the background after StopPodSandbox returned.
  const podRule = (text: string) => pods.some((id) => text.includes(id));
  while (((await listNetns()).some((n) => n.includes(env.cfg.namespace)) || podRule((await runChecked("iptables-save", [])).stdout.toString())) && Date.now() < end) await sleep(100);
  assert.ok(!(await listNetns()).some((n) => n.includes(env.cfg.namespace)), "no netns left");
  const rules = (await runChecked("iptables-save", [])).stdout.toString();
  for (const id of pods) assert.ok(!rules.includes(id), `no iptables rule of pod ${id.slice(0, 12)} left`);
  for (const port of [hostPort, localPort]) assert.ok(!rules.includes(`dport ${port}`) && !rules.includes(`:${port}`), `the hostPort ${port} rule is gone`);
  const netName = `skn-${env.cfg.namespace.slice(-8)}`; // harness.ts names the test's network so
  assert.ok(!rules.includes(netName), `no iptables rule of network ${netName} left`);
  assert.ok(!rules.includes(env.cfg.cni.defaultBridge), `no iptables rule of bridge ${env.cfg.cni.defaultBridge} left`);
});
