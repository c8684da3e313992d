/**
 * skiffd with its built-in images: containers run from the busybox and pause images on
 * per-container overlay snapshots, which are removed with the container.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon } from "./harness.js";
import { DebugClient } from "../../src/daemon/debug-client.js";
import { runChecked } from "../../src/util/exec.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";

interface ImageRow {
  name: string;
  digest: string;
}

interface Mount {
  mountPoint: string;
  fsType: string;
  /** Super options (for overlay: lowerdir, upperdir, workdir). */
  options: string[];
}

/** The real mount table: /proc/self/mountinfo (see proc(5)), octal escapes undone. */
async function mountTable(): Promise<Mount[]> {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return (await readFile("/proc/self/mountinfo", "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [left, right] = line.split(" - ") as [string, string];
      const [fsType, , opts] = right.split(" ");
      return { mountPoint: unescape(left.split(" ")[4]!), fsType: fsType!, options: unescape(opts ?? "").split(",") };
    });
}

const option = (m: Mount, name: string) => m.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);

/**
 * The snapshot directories of the image's layers (by its manifest digest), top layer first (overlay's lowerdir order), found
 * from the image itself: manifest → config diff_ids → chain IDs (OCI image spec), which name the
 * committed snapshots in the overlayfs snapshotter's metadata (containerd's layout).
 */
async function layerDirs(root: string, manifestDigest: string): Promise<string[]> {
  const blob = async (d: string) => JSON.parse(await readFile(path.join(root, "content", "blobs", "sha256", d.replace(/^sha256:/, "")), "utf8"));
  let manifest = await blob(manifestDigest);
  if (manifest.manifests) manifest = await blob(manifest.manifests.find((m: { platform?: { os: string } }) => m.platform?.os === "linux").digest);
  const diffIds: string[] = (await blob(manifest.config.digest)).rootfs.diff_ids;
  assert.ok(diffIds.length > 0);
  const chainIds = diffIds.reduce<string[]>((acc, id) => [...acc, acc.length ? `sha256:${createHash("sha256").update(`${acc.at(-1)} ${id}`).digest("hex")}` : id], []);
  const sn = path.join(root, "snapshots", "overlayfs");
  const meta = JSON.parse(await readFile(path.join(sn, "metadata.json"), "utf8")) as { snapshots: Record<string, { id: string; kind: string }> };
  return chainIds.reverse().map((c) => {
    const rec = meta.snapshots[c];
    assert.ok(rec && rec.kind === "committed", `layer snapshot ${c} is committed`);
    return path.join(sn, "snapshots", rec.id, "fs");
  });
}

test("containers from the built-in busybox and pause images; snapshots go with the container", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  env.cfg.pauseBinary = path.join(env.dir, "pause");
  await runChecked("gcc", ["-Os", "-static", "-o", env.cfg.pauseBinary, path.resolve(import.meta.dirname, "../../native/pause.c")]);
  let daemon = await spawnDaemon(env);
  let client: DebugClient | undefined;
  t.after(async () => {
    client?.close();
    await stopDaemon(daemon);
    assert.deepEqual(await cleanupEnv(env), []);
  });
  client = await DebugClient.connect(env.cfg.debugSocket);
  const images = await client.call<ImageRow[]>("Images");
  assert.deepEqual(images.map((i) => i.name).sort(), ["docker.io/library/busybox:latest", "registry.k8s.io/pause:3.9"]);

  const out = path.join(env.dir, "bb.log");
  await client.call("Run", {
    id: "bb",
    image: "busybox",
    args: ["sh", "-c", "echo written > /tmp/f; cat /tmp/f; head -1 /etc/passwd; exit 5"],
    stdout: `file://${out}`,
  });
  const w = await client.call<{ exitStatus: number }>("Wait", { id: "bb" }, { timeoutMs: 20_000 });
  assert.equal(w.exitStatus, 5);
  assert.equal(await readFile(out, "utf8"), "written\nroot:x:0:0:root:/root:/bin/sh\n");

  // While the container exists its rootfs (the bundle's rootfs dir) is an overlay of the image's
  // layer snapshots, read-only below, with a snapshot of the container's own as the upper dir.
  const bbRootfs = path.join(env.cfg.state, "tasks", env.cfg.namespace, "bb", "rootfs");
  const rootfsMounts = (await mountTable()).filter((m) => m.mountPoint === bbRootfs);
  assert.equal(rootfsMounts.length, 1, `one mount at ${bbRootfs}: ${JSON.stringify(rootfsMounts)}`);
  const rootfs = rootfsMounts[0]!;
  assert.equal(rootfs.fsType, "overlay");
  const busyboxDigest = images.find((i) => i.name === "docker.io/library/busybox:latest")!.digest;
  const lower = await layerDirs(env.cfg.root, busyboxDigest);
  assert.deepEqual(option(rootfs, "lowerdir")?.split(":"), lower, "lowerdirs are the image's layer snapshots");
  const upper = option(rootfs, "upperdir");
  assert.ok(upper && !lower.includes(upper), `upperdir ${upper} is not an image layer`);
  assert.ok(upper.startsWith(path.join(env.cfg.root, "snapshots", "overlayfs", "snapshots") + "/"), `upperdir ${upper} is a snapshot`);
  // It is the container's own: what the container wrote is there, and not in the image's layers.
  assert.equal(await readFile(path.join(upper, "tmp", "f"), "utf8"), "written\n");
  for (const l of lower) await assert.rejects(stat(path.join(l, "tmp", "f")), { code: "ENOENT" });
  assert.ok((await stat(path.join(lower[0]!, "bin", "busybox"))).isFile(), "the image's busybox is in its layer");

  assert.equal((await client.call<{ exitStatus: number }>("Delete", { id: "bb" }, { timeoutMs: 20_000 })).exitStatus, 5);
  // Removed with the container: no mount at the rootfs nor of the upper dir, and the snapshot dir gone.
  const left = (await mountTable()).filter((m) => m.mountPoint === bbRootfs || (m.fsType === "overlay" && option(m, "upperdir") === upper));
  assert.deepEqual(left, [], "the container's overlay is unmounted");
  await assert.rejects(stat(path.dirname(upper)), { code: "ENOENT" }, "the container's snapshot is removed");
  for (const l of lower) assert.ok((await stat(l)).isDirectory(), `layer snapshot ${l} stays`);

  // The pause image: its entrypoint runs and exits 0 on SIGTERM.
  await client.call("Run", { id: "p", image: "registry.k8s.io/pause:3.9" });
  await client.call("Kill", { id: "p", signal: 15 });
  assert.equal((await client.call<{ exitStatus: number }>("Wait", { id: "p" }, { timeoutMs: 20_000 })).exitStatus, 0);
  await client.call("Delete", { id: "p" }, { timeoutMs: 20_000 });

  // Each container's snapshot is gone with it; the committed image layers stay.
  assert.deepEqual(await mountsUnder(env.dir), []);
  const active = await runChecked("find", [path.join(env.cfg.root, "snapshots"), "-name", "meta*", "-type", "f"]);
  const metaText = (await Promise.all(active.stdout.toString().split("\n").filter(Boolean).map((f) => readFile(f, "utf8")))).join("\n");
  assert.doesNotMatch(metaText, /container-bb|container-p"/, "no container snapshot left in the snapshotter's metadata");

  // Removing the busybox name frees its blobs and layer snapshots; pause is untouched.
  const gc = await client.call<{ blobs: number; snapshots: number }>("RemoveImage", { ref: "busybox" });
  assert.ok(gc.blobs >= 3, `manifest, config and layer blobs freed (${gc.blobs})`);
  assert.equal(gc.snapshots, 1, "busybox's one layer snapshot freed");
  assert.deepEqual((await client.call<ImageRow[]>("Images")).map((i) => i.name), ["registry.k8s.io/pause:3.9"]);
  await assert.rejects(client.call("RemoveImage", { ref: "busybox" }), /not found/);

  // Bad input: an unknown image is NotFound, and nothing is left of the attempt.
  await assert.rejects(client.call("Run", { id: "nope", image: "docker.io/library/nope:1" }), /not found/);
  const list = await client.call<{ tasks: unknown[] }>("List");
  assert.deepEqual(list.tasks, []);

  // A restart rebuilds the missing busybox image identically and keeps pause as it was.
  client.close();
  client = undefined;
  await stopDaemon(daemon);
  daemon = await spawnDaemon(env);
  client = await DebugClient.connect(env.cfg.debugSocket);
  const again = await client.call<ImageRow[]>("Images");
  assert.deepEqual(again.map((i) => i.digest).sort(), images.map((i) => i.digest).sort());
});
