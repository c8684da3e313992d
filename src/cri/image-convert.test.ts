import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { AuthConfigSchema } from "../gen/runtime/v1/api_pb.js";
import { isInvalidArgument } from "../errors.js";
import { credentialsOf, groupById, imageUser, repoTagsAndDigests, requireImageRef, toCriImage } from "./image-convert.js";
import { digest, record } from "./image-testing.js";

test("toCriImage: id, tags and digests split, size, pinned, no spec (as containerd 1.6)", () => {
  const img = toCriImage([
    record("docker.io/library/x:2"),
    record(`docker.io/library/x@${digest("c")}`),
    record("docker.io/library/x:1"),
  ]);
  assert.equal(img.id, digest("b"));
  assert.equal(img.spec, undefined);
  assert.deepEqual(img.repoTags, ["docker.io/library/x:1", "docker.io/library/x:2"]);
  assert.deepEqual(img.repoDigests, [`docker.io/library/x@${digest("c")}`]);
  assert.equal(img.size, 1234n);
  assert.equal(img.pinned, false);
});

test("repoTagsAndDigests: tags and digest names, sorted; no digest derived for a bare tag", () => {
  const got = repoTagsAndDigests([record(`example.com/b@${digest("d")}`), record("example.com/a:2"), record("example.com/a:1")]);
  assert.deepEqual(got.repoTags, ["example.com/a:1", "example.com/a:2"]);
  assert.deepEqual(got.repoDigests, [`example.com/b@${digest("d")}`]);
  assert.deepEqual(repoTagsAndDigests([record("example.com/a:1")]).repoDigests, []);
});

test("imageUser / toCriImage: numeric user → uid, name → username, empty → neither", () => {
  assert.deepEqual(imageUser(""), {});
  assert.deepEqual(imageUser("1000"), { uid: 1000n });
  assert.deepEqual(imageUser("0:0"), { uid: 0n });
  assert.deepEqual(imageUser("nobody:nogroup"), { username: "nobody" });
  assert.deepEqual(imageUser("99999999999999999999"), { username: "99999999999999999999" });
  assert.equal(toCriImage([record("a:1", "b", "a", "1000:1000")]).uid?.value, 1000n);
  const named = toCriImage([record("a:1", "b", "a", "nobody")]);
  assert.equal(named.uid, undefined);
  assert.equal(named.username, "nobody");
  const root = toCriImage([record("a:1")]);
  assert.equal(root.uid, undefined);
  assert.equal(root.username, "");
});

test("groupById keeps first-seen order", () => {
  const groups = groupById([record("a:1", "1"), record("b:1", "2"), record("c:1", "1")]);
  assert.deepEqual(groups.map((g) => g.map((r) => r.name)), [["a:1", "c:1"], ["b:1"]]);
});

test("credentialsOf: username/password, base64 auth, tokens as bearer", () => {
  assert.equal(credentialsOf(undefined, "r"), undefined);
  assert.equal(credentialsOf(create(AuthConfigSchema, {}), "r"), undefined);
  assert.deepEqual(credentialsOf(create(AuthConfigSchema, { username: "u", password: "p" }), "r"), { username: "u", password: "p" });
  const auth = Buffer.from("u:p:with:colons").toString("base64");
  assert.deepEqual(credentialsOf(create(AuthConfigSchema, { auth }), "r"), { username: "u", password: "p:with:colons" });
  assert.throws(
    () => credentialsOf(create(AuthConfigSchema, { auth: Buffer.from("nocolon").toString("base64") }), "img:1"),
    (e: Error) => isInvalidArgument(e) && /img:1/.test(e.message),
  );
  assert.deepEqual(credentialsOf(create(AuthConfigSchema, { registryToken: "t1" }), "r"), { token: "t1" });
  assert.deepEqual(credentialsOf(create(AuthConfigSchema, { identityToken: "t2" }), "r"), { token: "t2" });
});

test("requireImageRef: empty → InvalidArgument naming the RPC", () => {
  assert.equal(requireImageRef({ image: "x" }, "PullImage"), "x");
  assert.throws(() => requireImageRef(undefined, "PullImage"), (e: Error) => isInvalidArgument(e) && /PullImage/.test(e.message));
  assert.throws(() => requireImageRef({ image: "" }, "ImageStatus"), isInvalidArgument);
});
