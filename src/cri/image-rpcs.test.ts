import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { AuthConfigSchema } from "../gen/runtime/v1/api_pb.js";
import { isInvalidArgument } from "../errors.js";
import type { ImageRecord } from "../metadata/index.js";
import { credentialsOf, toCriImage } from "./image-rpcs.js";

function rec(name: string, user = ""): ImageRecord {
  return {
    name,
    target: { digest: `sha256:${"a".repeat(64)}`, mediaType: "application/vnd.oci.image.manifest.v1+json", size: 10 },
    configDigest: `sha256:${"b".repeat(64)}`,
    config: { os: "linux", architecture: "amd64", variant: "", entrypoint: [], cmd: ["sh"], env: [], user, workingDir: "", volumes: [], stopSignal: "", labels: {}, exposedPorts: [], diffIds: [], created: "" },
    size: 1234,
    labels: {},
    createdAt: 0,
    updatedAt: 0,
  };
}

test("toCriImage: one image per id, tags and digests split, user as uid or name", () => {
  const img = toCriImage([rec("docker.io/library/x:2"), rec("docker.io/library/x@sha256:" + "c".repeat(64)), rec("docker.io/library/x:1")]);
  assert.equal(img.id, `sha256:${"b".repeat(64)}`);
  assert.deepEqual(img.repoTags, ["docker.io/library/x:1", "docker.io/library/x:2"]);
  assert.deepEqual(img.repoDigests, [`docker.io/library/x@sha256:${"c".repeat(64)}`]);
  assert.equal(img.size, 1234n);
  assert.equal(toCriImage([rec("a:1", "1000:1000")]).uid?.value, 1000n);
  const named = toCriImage([rec("a:1", "nobody")]);
  assert.equal(named.uid, undefined);
  assert.equal(named.username, "nobody");
});

test("credentialsOf: username/password, base64 auth, tokens refused", () => {
  assert.equal(credentialsOf(undefined, "r"), undefined);
  assert.deepEqual(credentialsOf(create(AuthConfigSchema, { username: "u", password: "p" }), "r"), { username: "u", password: "p" });
  const auth = Buffer.from("u:p:with:colons").toString("base64");
  assert.deepEqual(credentialsOf(create(AuthConfigSchema, { auth }), "r"), { username: "u", password: "p:with:colons" });
  assert.throws(() => credentialsOf(create(AuthConfigSchema, { auth: Buffer.from("nocolon").toString("base64") }), "r"), isInvalidArgument);
  assert.throws(() => credentialsOf(create(AuthConfigSchema, { registryToken: "t" }), "img"), (e: Error) => isInvalidArgument(e) && /img/.test(e.message));
});
