/**
 * skiffd with its built-in images: containers run from the busybox and pause images on
 * per-container overlay snapshots, which are removed with the container.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon } from "./harness.js";
import { DebugClient } from "../../src/daemon/debug-client.js";
import { runChecked } from "../../src/util/exec.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";

interface ImageRow {
  name: string;
  digest: string;
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
  assert.equal((await client.call<{ exitStatus: number }>("Delete", { id: "bb" }, { timeoutMs: 20_000 })).exitStatus, 5);

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
