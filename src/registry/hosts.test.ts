import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isInvalidArgument } from "../errors.js";
import { formatReference, parseReference, RegistryHosts } from "./hosts.js";

const D = `sha256:${"ab".repeat(32)}`;

describe("parseReference", () => {
  test("normalises Docker Hub short names", () => {
    assert.deepEqual(parseReference("busybox"), { domain: "docker.io", repository: "library/busybox", tag: "latest" });
    assert.equal(formatReference(parseReference("busybox")), "docker.io/library/busybox:latest");
    assert.deepEqual(parseReference("bitnami/redis:7"), { domain: "docker.io", repository: "bitnami/redis", tag: "7" });
    assert.deepEqual(parseReference("index.docker.io/library/alpine:3"), { domain: "docker.io", repository: "library/alpine", tag: "3" });
  });

  test("registries with ports, localhost, digests and tag+digest", () => {
    assert.deepEqual(parseReference(`localhost:5000/a/b@${D}`), { domain: "localhost:5000", repository: "a/b", digest: D });
    assert.deepEqual(parseReference("localhost/x"), { domain: "localhost", repository: "x", tag: "latest" });
    assert.deepEqual(parseReference(`quay.io/org/img:v1.2@${D}`), { domain: "quay.io", repository: "org/img", tag: "v1.2", digest: D });
    assert.deepEqual(parseReference("127.0.0.1:5000/r:t"), { domain: "127.0.0.1:5000", repository: "r", tag: "t" });
  });

  test("rejects invalid references with InvalidArgument naming them", () => {
    for (const bad of ["", "UPPER/case", "a:b:c", "busybox@sha256:123", "x/y:-tag", " busybox", "a//b", "host:5000/", "busybox:"]) {
      assert.throws(
        () => parseReference(bad),
        (err: Error) => isInvalidArgument(err) && err.message.includes(JSON.stringify(bad)),
        `expected ${JSON.stringify(bad)} to be rejected`,
      );
    }
  });
});

describe("RegistryHosts", () => {
  test("docker.io maps to registry-1.docker.io over https", () => {
    const eps = new RegistryHosts().endpoints("docker.io");
    assert.deepEqual(eps, [{ host: "registry-1.docker.io", baseUrl: "https://registry-1.docker.io", mirror: false }]);
  });

  test("mirrors come first, each with its own settings", () => {
    const hosts = new RegistryHosts([
      { host: "docker.io", mirrors: ["127.0.0.1:5001", "mirror.example:443"], auth: { username: "u", password: "p" } },
      { host: "127.0.0.1:5001", insecure: true },
    ]);
    const eps = hosts.endpoints("docker.io");
    assert.deepEqual(
      eps.map((e) => [e.baseUrl, e.mirror, e.auth?.username]),
      [
        ["http://127.0.0.1:5001", true, undefined],
        ["https://mirror.example:443", true, undefined],
        ["https://registry-1.docker.io", false, "u"],
      ],
    );
  });

  test("withCredentials: a pull's credentials or token replace the upstream's, mirrors keep theirs", () => {
    const hosts = new RegistryHosts([
      { host: "docker.io", mirrors: ["m.example"], auth: { username: "u", password: "p" } },
      { host: "m.example", auth: { username: "mu", password: "mp" } },
    ]);
    const basic = hosts.withCredentials({ username: "v", password: "q" }).endpoints("docker.io");
    assert.deepEqual(basic.map((e) => [e.auth?.username, e.token]), [["mu", undefined], ["v", undefined]]);
    const token = hosts.withCredentials({ token: "tok" }).endpoints("docker.io");
    assert.deepEqual(token.map((e) => [e.auth?.username, e.token]), [["mu", undefined], [undefined, "tok"]]);
    assert.equal(hosts.endpoints("docker.io")[1]!.auth?.username, "u", "the original is unchanged");
  });

  test("duplicate host entries are rejected", () => {
    assert.throws(() => new RegistryHosts([{ host: "a.io" }, { host: "a.io" }]), isInvalidArgument);
  });

  test("unreadable CA file → InvalidArgument", () => {
    const hosts = new RegistryHosts([{ host: "a.io", caFile: "/nonexistent/ca.pem" }]);
    assert.throws(() => hosts.endpoints("a.io"), (err: Error) => isInvalidArgument(err) && err.message.includes("/nonexistent/ca.pem"));
  });
});
