import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { configFromObject, defaultConfig, loadConfig } from "./config.js";
import { isInvalidArgument } from "./errors.js";

test("defaults match the documented layout", () => {
  const c = defaultConfig();
  assert.equal(c.socket, "/run/skiff/skiff.sock");
  assert.equal(c.root, "/var/lib/skiff");
  assert.equal(c.runtimes.runc?.shim, "containerd-shim-runc-v2");
  assert.equal(c.teardown.maxBackoffMs, 300_000);
});

test("TOML overrides merge over defaults; new runtime handlers are added", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cfg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "c.toml");
  await writeFile(
    file,
    'root = "/tmp/x"\nnamespace = "k8s"\n[timeouts]\nshim_call_ms = 2500\n[runtimes.crun]\nbinary_name = "/usr/bin/crun"\n',
  );
  const c = await loadConfig(file);
  assert.equal(c.root, "/tmp/x");
  assert.equal(c.namespace, "k8s");
  assert.equal(c.timeouts.shimCallMs, 2500);
  assert.equal(c.timeouts.shimStartMs, 10_000, "untouched keys keep defaults");
  assert.deepEqual(c.runtimes.crun, { shim: "containerd-shim-runc-v2", binaryName: "/usr/bin/crun", runcRoot: "" });
});

test("bad configuration is refused with a message naming the key", async (t) => {
  assert.throws(() => configFromObject({ sokcet: "/x" }), (e: Error) => isInvalidArgument(e) && /sokcet/.test(e.message));
  assert.throws(() => configFromObject({ root: "relative" }), (e: Error) => isInvalidArgument(e) && /root/.test(e.message));
  assert.throws(() => configFromObject({ timeouts: { shim_call_ms: "soon" } }), (e: Error) => /shim_call_ms/.test(e.message));
  assert.throws(() => configFromObject({ default_runtime: "kata" }), (e: Error) => /kata/.test(e.message));
  assert.throws(() => configFromObject({ namespace: "a/b" }), (e: Error) => /namespace/.test(e.message));
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cfg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, "bad.toml"), "root = ");
  await assert.rejects(loadConfig(path.join(dir, "bad.toml")), (e: Error) => isInvalidArgument(e) && /not valid TOML/.test(e.message));
  await assert.rejects(loadConfig(path.join(dir, "missing.toml")), isInvalidArgument);
  assert.deepEqual(await loadConfig(path.join(dir, "missing.toml"), { optional: true }), defaultConfig());
});
