import assert from "node:assert/strict";
import { test } from "node:test";
import { minimalSpec } from "./oci-spec.js";

test("minimalSpec has runc spec's shape with the test defaults", () => {
  const spec = minimalSpec({ args: ["sh", "-c", "true"] });
  assert.equal(spec.ociVersion, "1.0.2");
  assert.equal(spec.process.terminal, false);
  assert.deepEqual(spec.root, { path: "rootfs", readonly: false });
  assert.deepEqual(
    spec.linux.namespaces.map((n) => n.type).sort(),
    ["ipc", "mount", "network", "pid", "uts"],
  );
  for (const dest of ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]) {
    assert.ok(spec.mounts.some((m) => m.destination === dest), dest);
  }
  assert.ok(!("oomScoreAdj" in spec.process), "no oomScoreAdj");
  assert.ok(spec.process.capabilities.bounding.includes("CAP_KILL"));
  assert.equal(spec.annotations, undefined);
});

test("minimalSpec options: env overrides by name, cwd, terminal, hostname, annotations", () => {
  const spec = minimalSpec({
    args: ["top"],
    env: ["PATH=/bin", "A=1"],
    cwd: "/tmp",
    terminal: true,
    hostname: "h",
    annotations: { "io.kubernetes.cri.sandbox-id": "p1" },
  });
  assert.deepEqual(spec.process.env, ["TERM=xterm", "PATH=/bin", "A=1"]);
  assert.equal(spec.process.cwd, "/tmp");
  assert.equal(spec.process.terminal, true);
  assert.equal(spec.hostname, "h");
  assert.deepEqual(spec.annotations, { "io.kubernetes.cri.sandbox-id": "p1" });
  assert.throws(() => minimalSpec({ args: [] }), TypeError);
});

test("minimalSpec returns independent objects", () => {
  const a = minimalSpec({ args: ["true"] });
  a.process.capabilities.bounding.push("CAP_SYS_ADMIN");
  assert.ok(!minimalSpec({ args: ["true"] }).process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
});
