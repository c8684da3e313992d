/**
 * The CRI ImageService through the independent client: the built-in images listed, ImageStatus
 * by name, short name and id (a missing image is an unset `image`, not an error), PullImage from
 * a real local docker-registry behind a basic-auth proxy (AuthConfig as username/password and as
 * `auth`), RemoveImage (idempotent), ImageFsInfo, and bad references.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients, rejectsWith } from "./cri-client.js";
import { buildImage, forward, push, startRegistry, startServer, tempDir, writeLayout } from "../../src/registry/testing/fixtures.js";

const USER = "kube";
const PASS = "s3cret:with:colons";

test("CRI images: list, status, pull with AuthConfig, remove, fs info", { timeout: 120_000 }, async (t) => {
  const work = await tempDir(t, "skiff-criimg-");
  const reg = await startRegistry(t);
  const img = await buildImage(work, "amd64");
  const { layout } = await writeLayout(work, "v1", [{ img, arch: "amd64" }]);
  await push(layout, "v1", reg.host, "app");
  // Basic auth in front of the registry (docker-registry's own htpasswd needs bcrypt tooling).
  const expected = `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`;
  const proxy = await startServer(t, (req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="skiff-test"', "content-type": "application/json" });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    forward(req, res, reg.host);
  });

  const env = await makeEnv();
  env.cfg.builtinImages = true;
  env.cfg.registry.hosts = [{ host: proxy.host, insecure: true }];
  const d = await startDaemon(env);
  const { image, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });

  const list = await call(image, "ListImages", {});
  const tags = list.images.flatMap((i: { repo_tags: string[] }) => i.repo_tags).sort();
  assert.deepEqual(tags, ["docker.io/library/busybox:latest", "registry.k8s.io/pause:3.9"]);
  const bb = (await call(image, "ImageStatus", { image: { image: "busybox" } })).image;
  assert.match(bb.id, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(bb.repo_tags, ["docker.io/library/busybox:latest"]);
  assert.ok(Number(bb.size) > 0);
  assert.deepEqual((await call(image, "ImageStatus", { image: { image: bb.id } })).image.repo_tags, bb.repo_tags);
  assert.equal((await call(image, "ListImages", { filter: { image: { image: "busybox:latest" } } })).images.length, 1);
  const missing = await call(image, "ImageStatus", { image: { image: "docker.io/library/nope:1" } });
  assert.equal(missing.image, null);

  const ref = `${proxy.host}/app:v1`;
  await rejectsWith(call(image, "PullImage", { image: { image: ref } }), grpc.status.FAILED_PRECONDITION, /unauthorized/);
  await rejectsWith(
    call(image, "PullImage", { image: { image: ref }, auth: { username: USER, password: "wrong" } }),
    grpc.status.FAILED_PRECONDITION,
    /credentials rejected/,
  );
  const pulled = await call(image, "PullImage", { image: { image: ref }, auth: { username: USER, password: PASS } });
  assert.equal(pulled.image_ref, img.configDigest);
  const st = (await call(image, "ImageStatus", { image: { image: ref } })).image;
  assert.equal(st.id, img.configDigest);
  assert.deepEqual(st.repo_tags, [ref]);

  await call(image, "RemoveImage", { image: { image: ref } });
  assert.equal((await call(image, "ImageStatus", { image: { image: ref } })).image, null);
  await call(image, "RemoveImage", { image: { image: ref } });
  // The same pull with `auth` (base64 user:password) instead.
  const auth = Buffer.from(`${USER}:${PASS}`).toString("base64");
  assert.equal((await call(image, "PullImage", { image: { image: ref }, auth: { auth } })).image_ref, img.configDigest);
  await call(image, "RemoveImage", { image: { image: img.configDigest } });
  assert.equal((await call(image, "ImageStatus", { image: { image: ref } })).image, null);

  const fs = await call(image, "ImageFsInfo", {});
  assert.equal(fs.image_filesystems.length, 1);
  assert.ok(Number(fs.image_filesystems[0].used_bytes.value) > 0);
  assert.ok(Number(fs.image_filesystems[0].inodes_used.value) > 0);
  assert.match(fs.image_filesystems[0].fs_id.mountpoint, /snapshots$/);

  await rejectsWith(call(image, "PullImage", { image: { image: "" } }), grpc.status.INVALID_ARGUMENT, /image is empty/);
  await rejectsWith(call(image, "PullImage", { image: { image: "Bad//Ref::x" } }), grpc.status.INVALID_ARGUMENT, /Bad\/\/Ref::x/);
  await rejectsWith(call(image, "PullImage", { image: { image: `${proxy.host}/app:nope` }, auth: { username: USER, password: PASS } }), grpc.status.NOT_FOUND, /app:nope|nope/);
});
