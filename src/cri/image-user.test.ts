import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { isInvalidArgument } from "../errors.js";
import { layerDirs, resolveUser } from "./image-user.js";

async function layers(t: { after(fn: () => unknown): void }) {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-imguser-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lower = path.join(dir, "lower");
  const upper = path.join(dir, "upper");
  await mkdir(path.join(lower, "etc"), { recursive: true });
  await mkdir(path.join(upper, "etc"), { recursive: true });
  await writeFile(path.join(lower, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n");
  await writeFile(path.join(upper, "etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
  await writeFile(path.join(upper, "etc/group"), "root:x:0:\napp:x:1001:\nvideo:x:44:app,other\naudio:x:29:app\n");
  return [{ type: "overlay", source: "overlay", options: [`lowerdir=${lower}`, `upperdir=${upper}`, "workdir=/w"] }];
}

test("layerDirs: upper first, then the lower dirs in order; bind sources", () => {
  assert.deepEqual(layerDirs([{ type: "overlay", source: "overlay", options: ["lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w"] }]), ["/u", "/l1", "/l2"]);
  assert.deepEqual(layerDirs([{ type: "bind", source: "/r", options: ["rbind"] }]), ["/r"]);
});

test("resolveUser against the image's passwd and group (upper layer wins)", async (t) => {
  const m = await layers(t);
  assert.deepEqual(await resolveUser(m, { username: "app", imageUser: "" }, "c"), { uid: 1000, gid: 1001, additionalGids: [1001, 44, 29] });
  assert.deepEqual(await resolveUser(m, { uid: 1000, imageUser: "root" }, "c"), { uid: 1000, gid: 1001, additionalGids: [1001, 44, 29] });
  assert.deepEqual(await resolveUser(m, { uid: 4242, imageUser: "" }, "c"), { uid: 4242, gid: 0, additionalGids: [0] });
  assert.deepEqual(await resolveUser(m, { imageUser: "app:video" }, "c"), { uid: 1000, gid: 44, additionalGids: [44, 29] });
  assert.deepEqual(await resolveUser(m, { imageUser: "1000:7", gid: 9, supplementalGroups: [29, 3] }, "c"), { uid: 1000, gid: 9, additionalGids: [9, 44, 29, 3] });
  assert.deepEqual(await resolveUser(m, { imageUser: "" }, "c"), { uid: 0, gid: 0, additionalGids: [0] });
  await assert.rejects(resolveUser(m, { username: "old", imageUser: "" }, 'container "c"'), (e: Error) => isInvalidArgument(e) && /"old"/.test(e.message));
  await assert.rejects(resolveUser(m, { imageUser: "app:nogroup" }, "c"), isInvalidArgument);
});

test("layerDirs: an overlay without upperdir (a view) and several mounts keep their order", () => {
  assert.deepEqual(layerDirs([{ type: "overlay", source: "overlay", options: ["lowerdir=/l1:/l2"] }]), ["/l1", "/l2"]);
  assert.deepEqual(layerDirs([{ type: "rbind", source: "/a", options: [] }, { type: "tmpfs", source: "tmpfs", options: [] }, { type: "bind", source: "/b", options: [] }]), ["/a", "/b"]);
});

test("resolveUser: numeric uid without a passwd entry, user:group forms, run_as_group override", async (t) => {
  const m = await layers(t);
  assert.deepEqual(await resolveUser(m, { imageUser: "4242" }, "c"), { uid: 4242, gid: 0, additionalGids: [0] });
  assert.deepEqual(await resolveUser(m, { imageUser: "4242:77" }, "c"), { uid: 4242, gid: 77, additionalGids: [77] });
  assert.deepEqual(await resolveUser(m, { imageUser: "app" }, "c"), { uid: 1000, gid: 1001, additionalGids: [1001, 44, 29] });
  assert.deepEqual(await resolveUser(m, { imageUser: "app:audio", gid: 3 }, "c"), { uid: 1000, gid: 3, additionalGids: [3, 44, 29] });
  assert.deepEqual(await resolveUser(m, { username: "app", imageUser: "4242", gid: 44 }, "c"), { uid: 1000, gid: 44, additionalGids: [44, 29] });
  assert.deepEqual(await resolveUser(m, { uid: 0, imageUser: "app" }, "c"), { uid: 0, gid: 0, additionalGids: [0] }, "run_as_user wins over the image");
  await assert.rejects(resolveUser(m, { imageUser: "nobody" }, 'container "c"'), (e: Error) => isInvalidArgument(e) && /container "c": user "nobody" not found/.test(e.message));
});

test("resolveUser: run_as_user with run_as_group still gets the user's /etc/group memberships (as containerd does)", async (t) => {
  const m = await layers(t);
  assert.deepEqual(await resolveUser(m, { uid: 1000, gid: 9, imageUser: "" }, "c"), { uid: 1000, gid: 9, additionalGids: [9, 44, 29] });
  assert.deepEqual(await resolveUser(m, { uid: 1000, gid: 9, supplementalGroups: [44, 2, 2], imageUser: "" }, "c"), { uid: 1000, gid: 9, additionalGids: [9, 44, 29, 2] });
});

test("resolveUser: an image without /etc/passwd or /etc/group", async () => {
  const none = [{ type: "bind", source: "/nonexistent-skiff-layer", options: [] }];
  assert.deepEqual(await resolveUser(none, { imageUser: "" }, "c"), { uid: 0, gid: 0, additionalGids: [0] });
  assert.deepEqual(await resolveUser(none, { uid: 5, supplementalGroups: [9, 1], imageUser: "" }, "c"), { uid: 5, gid: 0, additionalGids: [0, 9, 1] });
  await assert.rejects(resolveUser(none, { username: "app", imageUser: "" }, "c"), isInvalidArgument);
});
