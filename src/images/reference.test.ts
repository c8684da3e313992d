import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isInvalidArgument } from "../errors.js";
import { normalizeName, parseReference } from "./reference.js";

const D = `sha256:${"a".repeat(64)}`;

describe("image references", () => {
  test("normalizes like containerd's CRI", () => {
    const cases: [string, string][] = [
      ["busybox", "docker.io/library/busybox:latest"],
      ["busybox:1.36", "docker.io/library/busybox:1.36"],
      ["library/busybox", "docker.io/library/busybox:latest"],
      ["index.docker.io/foo/bar:v1", "docker.io/foo/bar:v1"],
      ["registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"],
      ["localhost:5000/a/b", "localhost:5000/a/b:latest"],
      ["localhost/x", "localhost/x:latest"],
      [`busybox@${D}`, `docker.io/library/busybox@${D}`],
      [`quay.io/a/b:tag@${D}`, `quay.io/a/b@${D}`],
    ];
    for (const [input, want] of cases) assert.equal(normalizeName(input), want, input);
    assert.deepEqual(parseReference("quay.io/a/b:t"), { repository: "quay.io/a/b", tag: "t" });
  });

  test("invalid references are InvalidArgument", () => {
    for (const bad of ["", "UPPER/case", "a//b", "a:", "a:-bad", "a@sha256:short", "-a/b", "a b"]) {
      assert.throws(() => normalizeName(bad), isInvalidArgument, bad);
    }
  });
});
