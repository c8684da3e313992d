import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { isInvalidArgument } from "../errors.js";
import { resolvConf, writePodFiles } from "./pod-files.js";

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
