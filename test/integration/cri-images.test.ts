/**
 * The CRI ImageService through the independent client (grpc-js, standing in for kubelet):
 * - ListImages / ImageStatus of the built-in images: by short name, id and digest reference; a
 *   missing image is an unset `image`, not an error.
 * - PullImage from Debian's docker-registry demanding HTTP Basic (its own htpasswd, bcrypt hash
 *   made with libxcrypt through perl's crypt(), since Node has no bcrypt): no credentials, wrong
 *   ones, AuthConfig username/password, and AuthConfig `auth` (base64 "user:password").
 * - PullImage with AuthConfig registry_token / identity_token: docker-registry's own token auth
 *   needs TLS and a token service, so a proxy in front of the same registry stands in for a
 *   registry that accepts one bearer token (and forwards with the Basic credentials).
 * - Images as containerd 1.6 reports them (id, repo_tags, repo_digests — none for imported images,
 *   `repo@<manifest>` recorded by a pull —, no spec, size = manifest + config + layers);
 *   RemoveImage by name, digest reference and id (idempotent, every name goes) freeing the blobs;
 *   ImageFsInfo; bad references → InvalidArgument, an image the registry lacks → NotFound.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients, rejectsWith } from "./cri-client.js";
import { ctrConfig, runPod } from "./cri-helpers.js";
import { mkdir } from "node:fs/promises";
import { buildImage, push, startRegistry, startServer, tempDir, writeLayout } from "../../src/registry/testing/fixtures.js";

const USER = "kube";
const PASS = "s3cret:with:colons";
const TOKEN = "registry-token-1";

/** A bcrypt ($2b$) hash of `password` from the C library's crypt(3) (libxcrypt), through perl. */
async function bcryptHash(password: string): Promise<string> {
  const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // 22 salt characters; the last carries only 2 bits, so it must be one of ".Oeu".
  const salt = [...randomBytes(21)].map((b) => alphabet[b % 64]).join("") + ".Oeu"[randomBytes(1)[0]! % 4];
  const { stdout } = await promisify(execFile)("perl", ["-e", "print crypt($ENV{PW}, $ENV{SALT})"], {
    env: { PW: password, SALT: `$2b$10$${salt}` },
  });
  assert.match(stdout, /^\$2b\$10\$[./A-Za-z0-9]{53}$/, "libxcrypt made a bcrypt hash");
  return stdout;
}

test("CRI images: list, status, pull with AuthConfig, remove, fs info, bad input", { timeout: 180_000 }, async (t) => {
  const work = await tempDir(t, "skiff-criimg-");
  const reg = await startRegistry(t, { htpasswd: `${USER}:${await bcryptHash(PASS)}\n` });
  const img = await buildImage(work, "amd64");
  const { layout } = await writeLayout(work, "v1", [{ img, arch: "amd64" }]);
  await push(layout, "v1", reg.host, "app", { creds: `${USER}:${PASS}` });
  const basic = `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`;
  const tokenProxy = await startServer(t, (req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { "www-authenticate": 'Bearer realm="http://127.0.0.1:1/token"', "content-type": "application/json" });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const up = http.request(
      `http://${reg.host}${req.url ?? "/"}`,
      { method: req.method, headers: { ...req.headers, host: reg.host, authorization: basic } },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });

  const env = await makeEnv();
  env.cfg.builtinImages = true;
  env.cfg.registry.hosts = [
    { host: reg.host, insecure: true },
    { host: tokenProxy.host, insecure: true },
  ];
  const d = await startDaemon(env);
  const { image, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const status = async (ref: string) => (await call(image, "ImageStatus", { image: { image: ref } })).image;
  const blob = (digest: string) => path.join(env.cfg.root, "content", "blobs", "sha256", digest.slice("sha256:".length));

  // The built-ins.
  const list = await call(image, "ListImages", {});
  const tags = list.images.flatMap((i: { repo_tags: string[] }) => i.repo_tags).sort();
  assert.deepEqual(tags, ["docker.io/library/busybox:latest", "registry.k8s.io/pause:3.9"]);
  for (const i of list.images) {
    assert.match(i.id, /^sha256:[0-9a-f]{64}$/);
    // As containerd 1.6.20 answers for imported images: no repo digest, no spec.
    assert.deepEqual(i.repo_digests, []);
    assert.equal(i.spec, null);
    assert.equal(i.pinned, false);
  }
  const bb = await status("busybox");
  assert.deepEqual(bb.repo_tags, ["docker.io/library/busybox:latest"]);
  assert.ok(Number(bb.size) > 0);
  assert.deepEqual(await status(bb.id), bb);
  const filtered = await call(image, "ListImages", { filter: { image: { image: bb.id } } });
  assert.deepEqual(filtered.images.map((i: { id: string }) => i.id), [bb.id]);
  assert.equal(await status("docker.io/library/nope:1"), null);
  const verbose = await call(image, "ImageStatus", { image: { image: "busybox" }, verbose: true });
  assert.equal(typeof JSON.parse(verbose.info.info), "object");

  // Basic auth: docker-registry's htpasswd.
  const ref = `${reg.host}/app:v1`;
  await rejectsWith(call(image, "PullImage", { image: { image: ref } }), grpc.status.FAILED_PRECONDITION, /unauthorized/);
  await rejectsWith(
    call(image, "PullImage", { image: { image: ref }, auth: { username: USER, password: "wrong" } }),
    grpc.status.FAILED_PRECONDITION,
    /credentials rejected/,
  );
  const pulled = await call(image, "PullImage", { image: { image: ref }, auth: { username: USER, password: PASS } });
  assert.equal(pulled.image_ref, img.configDigest);
  const st = await status(ref);
  assert.equal(st.id, img.configDigest);
  assert.deepEqual(st.repo_tags, [ref]);
  // Recorded by the pull, as containerd's CRI does; the image answers to it.
  const digestRef = `${reg.host}/app@${img.manifestDigest}`;
  assert.deepEqual(st.repo_digests, [digestRef]);
  assert.deepEqual(await status(digestRef), st);
  {
    // A container of the pulled image: ContainerStatus names it by its repo digest (kubelet's
    // imageID), ListContainers by its id, as containerd 1.6 does.
    const { runtime } = criClients(env.cfg.socket);
    t.after(() => runtime.close());
    const logDir = path.join(work, "logs");
    await mkdir(logDir, { recursive: true });
    const { pod, podCfg } = await runPod(runtime, "pulled", logDir);
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig("c", ["/app"], { image: { image: ref } }), sandbox_config: podCfg })).container_id;
    assert.equal((await call(runtime, "ContainerStatus", { container_id: id })).status.image_ref, digestRef);
    assert.equal((await call(runtime, "ListContainers", { filter: { id } })).containers[0].image_ref, img.configDigest);
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  }
  const contentSize = img.manifest.length + img.config.length + img.layers.reduce((n, l) => n + l.bytes.length, 0);
  assert.equal(Number(st.size), contentSize);
  assert.equal(st.uid, null);
  assert.equal(st.username, "");
  assert.ok(existsSync(blob(img.layers[0]!.digest)));

  // RemoveImage by name, then again (idempotent); the blobs go with the last name.
  await call(image, "RemoveImage", { image: { image: ref } });
  assert.equal(await status(ref), null);
  assert.equal(await status(digestRef), null, "every name of the image goes");
  assert.equal(existsSync(blob(img.layers[0]!.digest)), false, "the layer blob was collected");
  await call(image, "RemoveImage", { image: { image: ref } });

  // `auth` (base64 "user:password"), then RemoveImage by digest reference.
  const auth = Buffer.from(`${USER}:${PASS}`).toString("base64");
  assert.equal((await call(image, "PullImage", { image: { image: ref }, auth: { auth } })).image_ref, img.configDigest);
  await call(image, "RemoveImage", { image: { image: digestRef } });
  assert.equal(await status(ref), null);

  // A registry token (sent as bearer), wrong and right; an identity token the same way.
  const tref = `${tokenProxy.host}/app:v1`;
  await rejectsWith(
    call(image, "PullImage", { image: { image: tref }, auth: { registry_token: "wrong" } }),
    grpc.status.FAILED_PRECONDITION,
    /bearer token rejected/,
  );
  assert.equal((await call(image, "PullImage", { image: { image: tref }, auth: { registry_token: TOKEN } })).image_ref, img.configDigest);
  assert.equal((await call(image, "PullImage", { image: { image: ref }, auth: { username: USER, password: PASS } })).image_ref, img.configDigest);
  // Two names of one id: one image with both tags; removing by id removes both.
  const both = await status(img.configDigest);
  assert.deepEqual(both.repo_tags, [ref, tref].sort());
  assert.deepEqual(both.repo_digests, [digestRef, `${tokenProxy.host}/app@${img.manifestDigest}`].sort());
  await call(image, "RemoveImage", { image: { image: img.configDigest } });
  assert.equal(await status(ref), null);
  assert.equal(await status(tref), null);
  assert.equal((await call(image, "PullImage", { image: { image: tref }, auth: { identity_token: TOKEN } })).image_ref, img.configDigest);
  await call(image, "RemoveImage", { image: { image: tref } });

  const fs = await call(image, "ImageFsInfo", {});
  assert.equal(fs.image_filesystems.length, 1);
  const f = fs.image_filesystems[0];
  assert.ok(Number(f.used_bytes.value) > 0);
  assert.ok(Number(f.inodes_used.value) > 0);
  assert.ok(Math.abs(Number(BigInt(f.timestamp) / 1_000_000n) - Date.now()) < 60_000, "timestamp in ns");
  assert.equal(f.fs_id.mountpoint, path.join(env.cfg.root, "snapshots"));

  // Bad input.
  await rejectsWith(call(image, "PullImage", { image: { image: "" } }), grpc.status.INVALID_ARGUMENT, /image is empty/);
  await rejectsWith(call(image, "PullImage", { image: {} }), grpc.status.INVALID_ARGUMENT, /image is empty/);
  await rejectsWith(call(image, "PullImage", { image: { image: "Bad//Ref::x" } }), grpc.status.INVALID_ARGUMENT, /Bad\/\/Ref::x/);
  await rejectsWith(
    call(image, "PullImage", { image: { image: `${reg.host}/app:nope` }, auth: { username: USER, password: PASS } }),
    grpc.status.NOT_FOUND,
    /app:nope/,
  );
  await rejectsWith(call(image, "ImageStatus", { image: { image: "" } }), grpc.status.INVALID_ARGUMENT, /ImageStatus: image is empty/);
  await rejectsWith(call(image, "RemoveImage", { image: { image: "" } }), grpc.status.INVALID_ARGUMENT, /RemoveImage: image is empty/);
});
