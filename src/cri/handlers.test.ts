import { test } from "node:test";
import assert from "node:assert/strict";
import { configFromObject, defaultConfig } from "../config.js";
import { runtimeHandlers, runtimeHandlersToProto } from "./handlers.js";

test("handlers: the default first, then by name; the proto list adds the default under \"\"", () => {
  const cfg = configFromObject({ default_runtime: "kata", runtimes: { kata: { shim: "containerd-shim-kata-v2" }, crun: { binary_name: "/usr/bin/crun" } } });
  const all = runtimeHandlers(cfg);
  assert.deepEqual(
    all.map((h) => [h.name, h.isDefault, h.shim]),
    [
      ["kata", true, "containerd-shim-kata-v2"],
      ["crun", false, "containerd-shim-runc-v2"],
      ["runc", false, "containerd-shim-runc-v2"],
    ],
  );
  assert.ok(all.every((h) => !h.features.recursiveReadOnlyMounts && !h.features.userNamespaces), "features skiff does not offer are false");
  assert.deepEqual(
    runtimeHandlersToProto(cfg).map((h) => h.name),
    ["", "kata", "crun", "runc"],
  );
  assert.ok(runtimeHandlersToProto(cfg).every((h) => h.features && !h.features.userNamespaces));
});

test("the default config has a crun handler with a root of its own only where crun is installed and usable", async () => {
  const { existsSync, readFileSync } = await import("node:fs");
  let hybridV2Controllers = false;
  try {
    hybridV2Controllers = readFileSync("/sys/fs/cgroup/unified/cgroup.controllers", "utf8").trim() !== "";
  } catch {}
  const crun = defaultConfig().runtimes.crun;
  if (existsSync("/usr/bin/crun") && !hybridV2Controllers) {
    assert.deepEqual(crun, { shim: "containerd-shim-runc-v2", binaryName: "/usr/bin/crun", runcRoot: "/run/containerd/crun" });
  } else {
    assert.equal(crun, undefined);
  }
});
