import { test } from "node:test";
import assert from "node:assert/strict";
import { parseShimArgs, runcRootsOf } from "./host-linux.js";
import { defaultConfig } from "../config.js";

const BIN = "/usr/bin/containerd-shim-runc-v2";

test("a shim daemon of the namespace is recognised by its -id", () => {
  assert.equal(parseShimArgs([BIN, "-namespace", "ns1", "-id", "pod1", "-address", "/run/s.sock"], "ns1"), "pod1");
});

test("other namespaces, other binaries and the start/delete invocations are not shims to judge", () => {
  assert.equal(parseShimArgs([BIN, "-namespace", "k8s.io", "-id", "pod1"], "ns1"), undefined);
  assert.equal(parseShimArgs(["/usr/bin/sleep", "-namespace", "ns1", "-id", "x"], "ns1"), undefined);
  assert.equal(parseShimArgs([BIN, "-namespace", "ns1", "-id", "pod1", "start"], "ns1"), undefined);
  assert.equal(parseShimArgs([BIN, "-namespace", "ns1", "-id", "pod1", "-bundle", "/b", "delete"], "ns1"), undefined);
});

test("runc roots: one per distinct handler root, in the namespace", () => {
  const cfg = defaultConfig();
  delete cfg.runtimes.crun; // present by default only where crun is installed
  cfg.namespace = "ns1";
  cfg.runtimes.other = { shim: "x", binaryName: "", runcRoot: "" };
  cfg.runtimes.custom = { shim: "x", binaryName: "crun", runcRoot: "/run/crun" };
  assert.deepEqual(runcRootsOf(cfg), ["/run/containerd/runc/ns1", "/run/crun/ns1"]);
});
