import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import * as path from "node:path";
import { isInvalidArgument } from "../errors.js";
import { POD_FILES, resolvConf, writePodFiles } from "./pod-files.js";

test("resolvConf writes search, nameservers and options; refuses injected lines", () => {
  assert.equal(
    resolvConf({ servers: ["10.0.0.10", "1.1.1.1"], searches: ["a.svc", "svc"], options: ["ndots:5"] }),
    "search a.svc svc\nnameserver 10.0.0.10\nnameserver 1.1.1.1\noptions ndots:5\n",
  );
  assert.throws(() => resolvConf({ servers: ["1.1.1.1\nnameserver 6.6.6.6"], searches: [], options: [] }), isInvalidArgument);
  assert.throws(() => resolvConf({ servers: [], searches: ["a b"], options: [] }), isInvalidArgument);
});

test("writePodFiles: hostname, local hosts and the DNS config (or the host's resolv.conf)", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-podfiles-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writePodFiles(path.join(dir, "a"), { hostname: "pod-a", hostNetwork: false, dns: { servers: ["10.0.0.10"], searches: [], options: [] } });
  assert.equal(await readFile(path.join(dir, "a/hostname"), "utf8"), "pod-a\n");
  assert.match(await readFile(path.join(dir, "a/hosts"), "utf8"), /^127\.0\.0\.1\tlocalhost$/m);
  assert.equal(await readFile(path.join(dir, "a/resolv.conf"), "utf8"), "nameserver 10.0.0.10\n");
  await writePodFiles(path.join(dir, "b"), { hostname: "pod-b", hostNetwork: false });
  assert.equal(await readFile(path.join(dir, "b/resolv.conf"), "utf8"), await readFile("/etc/resolv.conf", "utf8"));
});

test("resolvConf: only the lines asked for; empty, tab, '#' and ';' entries refused", () => {
  assert.equal(resolvConf({ servers: ["10.0.0.10"], searches: [], options: [] }), "nameserver 10.0.0.10\n");
  assert.equal(resolvConf({ servers: [], searches: ["svc"], options: ["ndots:2", "edns0"] }), "search svc\noptions ndots:2 edns0\n");
  for (const bad of ["", "a\tb", "x#y", "x;y", "ndots:5\r", " 1.1.1.1"]) {
    assert.throws(() => resolvConf({ servers: [], searches: [], options: [bad] }), (e: Error) => isInvalidArgument(e) && e.message.includes(JSON.stringify(bad)));
  }
});

test("writePodFiles: host network takes the host's hostname and hosts; files are 0644 in a 0755 dir", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-podfiles-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pod = path.join(dir, "nested/pod");
  await writePodFiles(pod, { hostname: "ignored", hostNetwork: true, dns: { servers: [], searches: [], options: [] } });
  assert.equal(await readFile(path.join(pod, "hostname"), "utf8"), `${hostname()}\n`);
  assert.equal(await readFile(path.join(pod, "hosts"), "utf8"), await readFile("/etc/hosts", "utf8"));
  assert.equal(await readFile(path.join(pod, "resolv.conf"), "utf8"), await readFile("/etc/resolv.conf", "utf8"), "an empty DNS config copies the host's");
  await writePodFiles(path.join(dir, "own"), { hostname: "own", hostNetwork: false });
  const hosts = await readFile(path.join(dir, "own/hosts"), "utf8");
  assert.match(hosts, /^::1\tlocalhost ip6-localhost ip6-loopback$/m);
  assert.doesNotMatch(hosts, /own/, "the pod's IP line is kubelet's business");
  assert.equal((await stat(path.join(dir, "own"))).mode & 0o777, 0o755);
  for (const d of [pod, path.join(dir, "own")]) {
    for (const f of POD_FILES) assert.equal((await stat(path.join(d, f))).mode & 0o777, 0o644, `${d}/${f}, whatever the host file's mode`);
  }
});
