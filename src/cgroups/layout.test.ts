import { test } from "node:test";
import assert from "node:assert/strict";
import { cgroupDir, hostCgroupLayout, parseCgroupMounts } from "./layout.js";

const HYBRID = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,hugetlb
`;

const UNIFIED = `24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

test("hybrid host: v1 controllers (co-mounted ones too), the controller-less cgroup2 noted", () => {
  const l = parseCgroupMounts(HYBRID);
  assert.equal(l.version, 1);
  assert.equal(l.v1.get("cpu")?.mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(l.v1.get("cpuacct")?.mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(l.v1.get("memory")?.mountpoint, "/sys/fs/cgroup/memory");
  assert.equal(l.v1.get("hugetlb")?.mountpoint, "/sys/fs/cgroup/hugetlb");
  assert.equal(l.v1.has("name=systemd"), false);
  assert.equal(l.v1.has("xattr"), false);
  assert.equal(l.v2?.mountpoint, "/sys/fs/cgroup/unified");
});

test("unified host: version 2, no v1 controllers", () => {
  const l = parseCgroupMounts(UNIFIED);
  assert.equal(l.version, 2);
  assert.equal(l.v1.size, 0);
  assert.equal(l.v2?.mountpoint, "/sys/fs/cgroup");
});

test("octal escapes in mount points and odd lines", () => {
  const l = parseCgroupMounts(`garbage line\n40 31 0:40 / /sys/fs/cgroup/my\\040mem rw - cgroup cgroup rw,memory\n`);
  assert.equal(l.v1.get("memory")?.mountpoint, "/sys/fs/cgroup/my mem");
});

test("cgroupDir joins the path under the mount, stripping a cgroup-namespace root", () => {
  assert.equal(cgroupDir({ mountpoint: "/sys/fs/cgroup/memory", root: "/" }, "/kubepods/pod1/c1"), "/sys/fs/cgroup/memory/kubepods/pod1/c1");
  assert.equal(cgroupDir({ mountpoint: "/sys/fs/cgroup", root: "/outer" }, "/outer/c1"), "/sys/fs/cgroup/c1");
  assert.equal(cgroupDir({ mountpoint: "/sys/fs/cgroup", root: "/" }, "relative/c1"), "/sys/fs/cgroup/relative/c1");
  // ".." cannot climb out of the mount.
  assert.equal(cgroupDir({ mountpoint: "/sys/fs/cgroup", root: "/" }, "/../../etc"), "/sys/fs/cgroup/etc");
});

test("this host's layout is readable and names a memory hierarchy", async () => {
  const l = await hostCgroupLayout();
  assert.ok(l.version === 2 ? l.v2 : l.v1.get("memory"), "a memory hierarchy is mounted");
  assert.equal(await hostCgroupLayout(), l, "read once");
});
