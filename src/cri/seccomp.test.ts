import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { isInvalidArgument } from "../errors.js";
import { loadSeccomp, parseSeccompProfile, seccompForSpec, seccompRequest } from "./seccomp.js";
import { defaultSeccompProfile, knownProfileSyscalls } from "./seccomp-default.js";
import { DEFAULT_CAPABILITIES } from "../oci/spec.js";

const invalid = (re: RegExp) => (e: Error) => isInvalidArgument(e) && re.test(e.message);

test("seccompRequest: the field wins; legacy names; bad refs refused", () => {
  assert.deepEqual(seccompRequest(undefined, "", "c"), { kind: "unconfined" });
  assert.deepEqual(seccompRequest(undefined, "unconfined", "c"), { kind: "unconfined" });
  assert.deepEqual(seccompRequest(undefined, "runtime/default", "c"), { kind: "runtime-default" });
  assert.deepEqual(seccompRequest(undefined, "docker/default", "c"), { kind: "runtime-default" });
  assert.deepEqual(seccompRequest(undefined, "localhost//p/x.json", "c"), { kind: "localhost", path: "/p/x.json" });
  assert.deepEqual(seccompRequest({ type: "Unconfined", localhostRef: "" }, "runtime/default", "c"), { kind: "unconfined" });
  assert.deepEqual(seccompRequest({ type: "Localhost", localhostRef: "/a/../b.json" }, "", "c"), { kind: "localhost", path: "/b.json" });
  assert.throws(() => seccompRequest(undefined, "runtime/strict", "container \"c\""), invalid(/container "c": unsupported seccomp profile "runtime\/strict"/));
  assert.throws(() => seccompRequest(undefined, "localhost/x.json", "c"), invalid(/seccomp profile path "x.json" is not absolute/));
  assert.throws(() => seccompRequest({ type: "Localhost", localhostRef: "" }, "", "c"), invalid(/empty localhost_ref/));
});

test("parseSeccompProfile: keeps the OCI fields, names what is wrong", () => {
  const ok = parseSeccompProfile({
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    architectures: ["SCMP_ARCH_X86_64"],
    archMap: [{ architecture: "x" }], // moby's format: ignored, as containerd's JSON decoding does
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }], comment: "x" }],
  });
  assert.deepEqual(ok, {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    architectures: ["SCMP_ARCH_X86_64"],
    syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, valueTwo: 0, op: "SCMP_CMP_EQ" }] }],
  });
  const bad = (v: unknown, re: RegExp) => assert.throws(() => parseSeccompProfile(v), re);
  bad([], /not a JSON object/);
  bad({}, /defaultAction undefined is not a seccomp action/);
  bad({ defaultAction: "ALLOW" }, /defaultAction "ALLOW"/);
  bad({ defaultAction: "SCMP_ACT_ALLOW", syscalls: {} }, /syscalls is not a list/);
  bad({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: [], action: "SCMP_ACT_ERRNO" }] }, /syscalls\[0\]\.names/);
  bad({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "nope" }] }, /syscalls\[0\]\.action "nope"/);
  bad({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_ALLOW", args: [{ index: 9, value: 0, op: "SCMP_CMP_EQ" }] }] }, /args\[0\]\.index/);
  bad({ defaultAction: "SCMP_ACT_ALLOW", architectures: "x86" }, /architectures/);
});

test("loadSeccomp: reads Localhost profiles; missing or invalid is InvalidArgument naming the path", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-seccomp-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const good = path.join(dir, "good.json");
  await writeFile(good, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }));
  const r = await loadSeccomp({ kind: "localhost", path: good }, "c");
  assert.deepEqual(r, { kind: "localhost", path: good, profile: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] } });
  assert.deepEqual(await loadSeccomp({ kind: "runtime-default" }, "c"), { kind: "runtime-default" });
  const missing = path.join(dir, "missing.json");
  await assert.rejects(loadSeccomp({ kind: "localhost", path: missing }, 'container "c"'), invalid(new RegExp(`container "c": cannot read seccomp profile "${missing}": ENOENT`)));
  const notJson = path.join(dir, "bad.json");
  await writeFile(notJson, "{ nope");
  await assert.rejects(loadSeccomp({ kind: "localhost", path: notJson }, "c"), invalid(new RegExp(`seccomp profile "${notJson}" is invalid`)));
  await assert.rejects(loadSeccomp({ kind: "localhost", path: dir }, "c"), invalid(/cannot read seccomp profile .*EISDIR/));
});

test("default profile: allow-list, EPERM default, capability-conditional syscalls, clone guard", () => {
  const p = defaultSeccompProfile([...DEFAULT_CAPABILITIES], "x64");
  assert.equal(p.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(p.defaultErrnoRet, 1);
  assert.deepEqual(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  const allowed = new Set(p.syscalls.filter((s) => s.action === "SCMP_ACT_ALLOW" && !s.args).flatMap((s) => s.names));
  for (const n of ["read", "write", "execve", "openat", "mmap", "exit_group", "arch_prctl", "chroot", "socket"]) assert.ok(allowed.has(n), n);
  for (const n of ["mount", "umount2", "unshare", "setns", "bpf", "init_module", "reboot", "kexec_load", "keyctl", "add_key", "clone", "clone3"]) {
    assert.ok(!allowed.has(n), `${n} needs a capability (or is never allowed)`);
  }
  const clone = p.syscalls.find((s) => s.names.includes("clone"));
  assert.deepEqual(clone?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }], "clone without namespace flags");
  assert.deepEqual(p.syscalls.find((s) => s.names.includes("clone3")), { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 });
  assert.equal(p.syscalls.filter((s) => s.names.includes("personality")).length, 5);

  const admin = defaultSeccompProfile([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], "arm64");
  const adminAllowed = new Set(admin.syscalls.filter((s) => !s.args && s.action === "SCMP_ACT_ALLOW").flatMap((s) => s.names));
  for (const n of ["mount", "unshare", "setns", "clone", "clone3", "arm_sync_file_range"]) assert.ok(adminAllowed.has(n), n);
  assert.ok(!adminAllowed.has("arch_prctl"), "x86 only");
  assert.ok(!admin.syscalls.some((s) => s.action === "SCMP_ACT_ERRNO"), "no clone3 ENOSYS rule with CAP_SYS_ADMIN");
  assert.deepEqual(admin.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);

  const none = defaultSeccompProfile([], "x64");
  assert.ok(!none.syscalls[0]!.names.includes("chroot"), "chroot needs CAP_SYS_CHROOT");
  assert.equal(defaultSeccompProfile([], "riscv64").architectures, undefined, "native architecture only");
  const names = knownProfileSyscalls();
  assert.ok(names.every((n) => /^[a-z_][a-z0-9_]*$/.test(n)), "plain syscall names");
});

test("seccompForSpec: none for privileged and unconfined", () => {
  assert.equal(seccompForSpec({ kind: "runtime-default" }, true, []), undefined);
  assert.equal(seccompForSpec({ kind: "unconfined" }, false, []), undefined);
  assert.equal(seccompForSpec({ kind: "runtime-default" }, false, [])?.defaultAction, "SCMP_ACT_ERRNO");
  const profile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [] };
  assert.equal(seccompForSpec({ kind: "localhost", path: "/x", profile }, false, []), profile);
});
