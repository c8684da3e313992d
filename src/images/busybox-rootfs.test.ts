import assert from "node:assert/strict";
import { lstat, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tmpDir } from "../testing/proc.js";
import { appletsOf, makeBusyboxRootfs, sharedLibrariesOf, staticBusyboxPath } from "./busybox-rootfs.js";

test("makeBusyboxRootfs lays out busybox, its applets and /etc", async (t) => {
  const dir = await tmpDir("skiff-rootfs-");
  t.after(() => dir.cleanup());
  await makeBusyboxRootfs(dir.path);

  assert.ok((await stat(join(dir.path, "bin/busybox"))).mode & 0o111);
  const applets = await appletsOf(staticBusyboxPath());
  assert.ok(applets.includes("sh") && applets.includes("sleep"));
  const [sh, busybox] = await Promise.all([stat(join(dir.path, "bin/sh")), stat(join(dir.path, "bin/busybox"))]);
  assert.equal(sh.ino, busybox.ino, "applets are hard links to bin/busybox");
  assert.match(await readFile(join(dir.path, "etc/passwd"), "utf8"), /^root:x:0:0:.*\ndaemon:x:1:1:.*\nnobody:x:65534:65534:/);
  assert.match(await readFile(join(dir.path, "etc/group"), "utf8"), /^root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nnobody:x:65534:/);
  assert.equal(await readFile(join(dir.path, "etc/hosts"), "utf8"), "");
  assert.equal(await readFile(join(dir.path, "etc/resolv.conf"), "utf8"), "");
  for (const d of ["proc", "sys", "dev"]) assert.ok((await lstat(join(dir.path, d))).isDirectory(), d);
  assert.equal((await stat(join(dir.path, "tmp"))).mode & 0o7777, 0o1777);
});

test("makeBusyboxRootfs can link applets with symlinks", async (t) => {
  const dir = await tmpDir("skiff-rootfs-");
  t.after(() => dir.cleanup());
  await makeBusyboxRootfs(dir.path, { appletLinks: "symlink" });
  assert.equal(await readlink(join(dir.path, "bin/sh")), "busybox");
});

test("makeBusyboxRootfs is fast once the applet list is cached", async (t) => {
  const dir = await tmpDir("skiff-rootfs-");
  t.after(() => dir.cleanup());
  await makeBusyboxRootfs(join(dir.path, "warm"));
  const started = performance.now();
  await makeBusyboxRootfs(join(dir.path, "timed"));
  const ms = performance.now() - started;
  assert.ok(ms < 200, `took ${ms.toFixed(0)} ms`);
});

test("sharedLibrariesOf parses ldd output into absolute paths, and rejects a static binary", async () => {
  const libs = await sharedLibrariesOf("/bin/sleep");
  assert.ok(libs.some((l) => /\/libc\.so\.6$/.test(l)), libs.join(" "));
  assert.ok(libs.every((l) => l.startsWith("/")));
  await assert.rejects(sharedLibrariesOf(staticBusyboxPath()));
});
