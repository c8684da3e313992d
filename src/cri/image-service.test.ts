/** The image RPC handlers over a real ImageService (temp metadata store), core calls faked. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ImageFsInfoRequestSchema,
  ImageStatusRequestSchema,
  ListImagesRequestSchema,
  PullImageRequestSchema,
  RemoveImageRequestSchema,
} from "../gen/runtime/v1/api_pb.js";
import { failedPrecondition, isInvalidArgument } from "../errors.js";
import { imageServiceImpl } from "./image-service.js";
import { digest, type ImageFixture, imageFixture, record } from "./image-testing.js";

const ctx = () => ({ signal: new AbortController().signal }) as HandlerContext;

describe("CRI image handlers", () => {
  let fx: ImageFixture;
  let svc: ReturnType<typeof imageServiceImpl>;
  before(async () => {
    fx = await imageFixture();
    svc = imageServiceImpl(fx.deps);
  });
  after(() => fx.close());

  const seed = () => {
    for (const r of fx.meta.images.list()) fx.meta.images.delete(r.name);
    fx.meta.images.put(record("docker.io/library/busybox:latest", "1", "a"));
    fx.meta.images.put(record("docker.io/library/busybox:1.36", "1", "a"));
    fx.meta.images.put(record(`docker.io/library/busybox@${digest("a")}`, "1", "a"));
    fx.meta.images.put(record("registry.k8s.io/pause:3.9", "2", "c", "65535"));
  };

  test("ListImages: one entry per id; filter by short name, id or digest ref; unknown → empty", () => {
    seed();
    const all = svc.listImages(create(ListImagesRequestSchema, {}));
    assert.deepEqual(all.images.map((i) => i.id).sort(), [digest("1"), digest("2")]);
    const bb = all.images.find((i) => i.id === digest("1"))!;
    assert.deepEqual(bb.repoTags, ["docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"]);
    assert.deepEqual(bb.repoDigests, [`docker.io/library/busybox@${digest("a")}`]);
    for (const want of ["busybox", digest("2"), `docker.io/library/busybox@${digest("a")}`, "registry.k8s.io/pause:3.9"]) {
      const got = svc.listImages(create(ListImagesRequestSchema, { filter: { image: { image: want } } }));
      assert.equal(got.images.length, 1, want);
    }
    assert.equal(svc.listImages(create(ListImagesRequestSchema, { filter: { image: { image: "nope" } } })).images.length, 0);
    assert.equal(svc.listImages(create(ListImagesRequestSchema, { filter: { image: { image: "Not A Ref" } } })).images.length, 0);
  });

  test("ImageStatus: by name and id; missing → image unset; verbose info; empty → InvalidArgument", () => {
    seed();
    const st = svc.imageStatus(create(ImageStatusRequestSchema, { image: { image: "busybox:1.36" } }));
    assert.equal(st.image?.id, digest("1"));
    assert.equal(st.image?.repoTags.length, 2);
    assert.deepEqual(st.info, {});
    const byId = svc.imageStatus(create(ImageStatusRequestSchema, { image: { image: digest("2") }, verbose: true }));
    assert.deepEqual(byId.image?.repoTags, ["registry.k8s.io/pause:3.9"]);
    assert.equal(byId.image?.uid?.value, 65535n);
    assert.equal((JSON.parse(byId.info.info!) as { manifestDigest: string }).manifestDigest, digest("c"));
    assert.equal(svc.imageStatus(create(ImageStatusRequestSchema, { image: { image: "nope:1" } })).image, undefined);
    assert.throws(() => svc.imageStatus(create(ImageStatusRequestSchema, {})), isInvalidArgument);
  });

  test("PullImage: image id back, AuthConfig and the call's signal passed on, repo digest recorded", async () => {
    fx.pulls.length = 0;
    const c = ctx();
    const res = await svc.pullImage(create(PullImageRequestSchema, { image: { image: "app:1" }, auth: { registryToken: "tok" } }), c);
    assert.equal(res.imageRef, digest("e"));
    assert.deepEqual(fx.pulls, [{ ref: "app:1", auth: { token: "tok" }, signal: c.signal }]);
    const st = svc.imageStatus(create(ImageStatusRequestSchema, { image: { image: "app:1" } }));
    assert.deepEqual(st.image?.repoTags, ["docker.io/library/app:1"]);
    assert.deepEqual(st.image?.repoDigests, [`docker.io/library/app@${digest("f")}`]);
    await svc.pullImage(create(PullImageRequestSchema, { image: { image: "app:1" } }), ctx());
    assert.equal(fx.pulls[1]!.auth, undefined);
    await assert.rejects(svc.pullImage(create(PullImageRequestSchema, { image: { image: "" } }), ctx()), isInvalidArgument);
  });

  test("RemoveImage: every name of the id goes, then GC; idempotent; a GC failure is only logged", async () => {
    seed();
    fx.gcCalls = 0;
    await svc.removeImage(create(RemoveImageRequestSchema, { image: { image: "busybox" } }));
    assert.deepEqual(fx.meta.images.list().map((r) => r.name), ["registry.k8s.io/pause:3.9"], "tags and digest name all gone");
    assert.equal(fx.gcCalls, 1);
    await svc.removeImage(create(RemoveImageRequestSchema, { image: { image: "busybox" } }));
    assert.equal(fx.gcCalls, 1, "nothing removed, nothing collected");

    fx.gc = () => Promise.reject(failedPrecondition("snapshot in use"));
    await svc.removeImage(create(RemoveImageRequestSchema, { image: { image: "registry.k8s.io/pause:3.9" } }));
    fx.gc = async () => undefined;
    assert.deepEqual(fx.meta.images.list(), []);
    assert.match(fx.warnings.at(-1)!.msg, /garbage collection/);
    await assert.rejects(svc.removeImage(create(RemoveImageRequestSchema, {})), isInvalidArgument);
  });

  test("ImageFsInfo: the snapshots dir, timestamp in ns", async () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    const res = await svc.imageFsInfo(create(ImageFsInfoRequestSchema, {}), ctx());
    assert.equal(res.imageFilesystems.length, 1);
    const fs = res.imageFilesystems[0]!;
    assert.equal(fs.fsId?.mountpoint, fx.snapshotsDir);
    assert.ok(fs.timestamp >= before && fs.timestamp <= BigInt(Date.now()) * 1_000_000n);
    assert.ok(fs.usedBytes!.value >= 4096n);
    assert.equal(fs.inodesUsed!.value, 2n);
  });
});
