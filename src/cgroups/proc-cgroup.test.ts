import { test } from "node:test";
import assert from "node:assert/strict";
import { parseProcCgroup, readProcCgroup } from "./proc-cgroup.js";

test("v1 lines split co-mounted controllers; the 0:: line is the v2 path", () => {
  const pc = parseProcCgroup("12:cpu,cpuacct:/kubepods/c1\n4:memory:/kubepods/c1\n1:name=systemd:/sys\n0::/unified/x\n");
  assert.equal(pc.v1.get("cpu"), "/kubepods/c1");
  assert.equal(pc.v1.get("cpuacct"), "/kubepods/c1");
  assert.equal(pc.v1.get("memory"), "/kubepods/c1");
  assert.equal(pc.v1.get("name=systemd"), "/sys");
  assert.equal(pc.v2, "/unified/x");
});

test("a v2-only host has just the 0:: line", () => {
  const pc = parseProcCgroup("0::/system.slice/skiff.service\n");
  assert.equal(pc.v1.size, 0);
  assert.equal(pc.v2, "/system.slice/skiff.service");
});

test("own process is readable; a dead pid gives undefined", async () => {
  const own = await readProcCgroup(process.pid);
  assert.ok(own && (own.v1.size > 0 || own.v2 !== undefined));
  assert.equal(await readProcCgroup(2 ** 22 + 7), undefined);
});
