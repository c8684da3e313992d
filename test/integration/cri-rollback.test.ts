/**
 * A RunPodSandbox that fails late (the OCI runtime refuses to create the pause container, after
 * netns, CNI, snapshot and shim were made) undoes everything, in reverse, and reports the error;
 * the pod's name is free again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon, shimPidsOfNamespace } from "./harness.js";
import { call, criClients, detailsOf } from "./cri-client.js";
import { podConfig } from "./cri-helpers.js";
import { listNetns } from "../../src/cni/netns.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { isAlive } from "../../src/util/proc.js";

test("a RunPodSandbox failing at the runtime rolls back netns, CNI, snapshot, shim and dirs", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  // An OCI runtime that fails `create` (everything else goes to runc, so cleanup works).
  const broken = path.join(env.dir, "broken-runc");
  await writeFile(broken, `#!/bin/sh\nfor a in "$@"; do [ "$a" = create ] && { echo "refusing on purpose" >&2; exit 1; }; done\nexec runc "$@"\n`);
  await chmod(broken, 0o755);
  env.cfg.runtimes.broken = { shim: "containerd-shim-runc-v2", binaryName: broken, runcRoot: "" };
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const active = async () => (await d.snapshotter.list()).filter((s) => s.kind === "active").length;
  // host-local keeps one file per allocated address, named by the address, in
  // `<ipam.dataDir>/<network name>/`: both read from the conflist the daemon loads.
  const confDir = env.cfg.cni.confDir;
  const [confFile, ...more] = (await readdir(confDir)).filter((n) => n.endsWith(".conflist"));
  assert.ok(confFile && more.length === 0, `one conflist in ${confDir}`);
  const conf = JSON.parse(await readFile(path.join(confDir, confFile), "utf8")) as { name: string; plugins: { ipam?: { type: string; dataDir?: string } }[] };
  const ipam = conf.plugins.find((p) => p.ipam)?.ipam;
  assert.equal(ipam?.type, "host-local");
  assert.ok(ipam.dataDir, "the test network has its own IPAM store");
  const ipamDir = path.join(ipam.dataDir, conf.name);
  // No catch: a missing directory means host-local never allocated there (a wrong path).
  const allocated = async () => (await readdir(ipamDir)).filter((x) => isIP(x) !== 0);

  await assert.rejects(call(runtime, "RunPodSandbox", { config: podConfig("rb", logDir), runtime_handler: "broken" }), (err: grpc.ServiceError) => {
    assert.match(detailsOf(err), /OCI runtime create failed/);
    return true;
  });
  assert.equal((await call(runtime, "ListPodSandbox", {})).items.length, 0);
  assert.ok(!(await listNetns()).some((n) => n.includes(env.cfg.namespace)), "netns removed");
  assert.equal(await active(), 0, "the pause container's snapshot removed");
  assert.deepEqual(await readdir(path.join(env.cfg.root, "pods")).catch(() => []), [], "pod dir removed");
  assert.deepEqual(await mountsUnder(env.dir), []);
  assert.deepEqual(await allocated(), [], "IP released");
  const end = Date.now() + 10_000;
  let shims = await shimPidsOfNamespace(env.cfg.namespace);
  while (shims.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    shims = (await Promise.all(shims.map(async (p) => ((await isAlive(p)) ? p : 0)))).filter(Boolean);
  }
  assert.deepEqual(shims, [], "the shim started for the pod is shut down");
  assert.deepEqual(d.meta.shims.list(), []);

  // The name is free again: the same pod now runs with the working handler. It also shows the
  // "IP released" check above looks where host-local records allocations: the pod's IP is there.
  const pod = (await call(runtime, "RunPodSandbox", { config: podConfig("rb", logDir) })).pod_sandbox_id;
  const ip = (await call(runtime, "PodSandboxStatus", { pod_sandbox_id: pod })).status.network.ip as string;
  assert.ok(isIP(ip), `the pod has an IP (${ip})`);
  assert.deepEqual(await allocated(), [ip], "the running pod's IP is allocated in the IPAM store");
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  // The network is torn down by the daemon after the RPCs return: poll for the release.
  const until = Date.now() + 10_000;
  while ((await allocated()).length && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await allocated(), [], "the removed pod's IP is released");
});
