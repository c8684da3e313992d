import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { isInvalidArgument, isNotFound } from "../errors.js";
import type { ImageConfig } from "../images/config.js";
import { MetadataStore, type NewImage } from "./index.js";
import { fakeClock } from "./testing.js";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const CONFIG: ImageConfig = {
  os: "linux",
  architecture: "amd64",
  variant: "",
  entrypoint: [],
  cmd: ["sh"],
  env: ["PATH=/bin"],
  user: "",
  workingDir: "",
  volumes: [],
  stopSignal: "",
  labels: {},
  exposedPorts: [],
  diffIds: [`sha256:${"e".repeat(64)}`],
  created: "",
};
const img = (name: string, target = d("a"), extra: Partial<NewImage> = {}): NewImage => ({
  name,
  target: { digest: target, mediaType: "application/vnd.oci.image.manifest.v1+json", size: 400 },
  configDigest: d("c"),
  config: CONFIG,
  size: 1234,
  ...extra,
});

describe("ImageStore", () => {
  let meta: MetadataStore;
  beforeEach(() => (meta = MetadataStore.open(":memory:", { now: fakeClock() })));
  afterEach(() => meta.close());

  test("put then get returns an equal record with the parsed config", () => {
    const r = meta.images.put(img("docker.io/library/busybox:latest", d("a"), { labels: { k: "v" } }));
    assert.deepEqual(r, { ...img("docker.io/library/busybox:latest"), labels: { k: "v" }, createdAt: 1000, updatedAt: 1000 });
    assert.deepEqual(meta.images.get("docker.io/library/busybox:latest"), r);
    assert.deepEqual(r.config.cmd, ["sh"]);
  });

  test("put on an existing name replaces its target and keeps createdAt", () => {
    meta.images.put(img("x:1", d("a")));
    const r = meta.images.put(img("x:1", d("b")));
    assert.equal(r.target.digest, d("b"));
    assert.equal(r.createdAt, 1000);
    assert.equal(r.updatedAt, 1001);
    assert.equal(meta.images.list().length, 1);
  });

  test("many names → one target; findByDigest and delete of one name keeps the other", () => {
    meta.images.put(img("b:1", d("a")));
    meta.images.put(img("a:1", d("a")));
    meta.images.put(img("c:1", d("f")));
    assert.deepEqual(meta.images.findByDigest(d("a")), ["a:1", "b:1"]);
    meta.images.delete("a:1");
    assert.deepEqual(meta.images.findByDigest(d("a")), ["b:1"]);
    assert.equal(meta.images.find("a:1"), undefined);
    assert.deepEqual(
      meta.images.list().map((i) => i.name),
      ["b:1", "c:1"],
    );
  });

  test("list filters by target, config digest and labels", () => {
    meta.images.put(img("a:1", d("a"), { labels: { builtin: "true" } }));
    meta.images.put(img("b:1", d("b"), { configDigest: d("9") }));
    assert.deepEqual(meta.images.list({ targetDigest: d("b") }).map((i) => i.name), ["b:1"]);
    assert.deepEqual(meta.images.list({ configDigest: d("9") }).map((i) => i.name), ["b:1"]);
    assert.deepEqual(meta.images.list({ labels: { builtin: "true" } }).map((i) => i.name), ["a:1"]);
    assert.deepEqual(meta.images.list({ targetDigest: d("b"), labels: { builtin: "true" } }), []);
  });

  test("NotFound names the image; invalid input is InvalidArgument and writes nothing", () => {
    assert.throws(() => meta.images.get("nope"), (e: Error) => isNotFound(e) && e.message.includes('"nope"'));
    assert.throws(() => meta.images.delete("nope"), isNotFound);
    assert.throws(() => meta.images.put(img("")), isInvalidArgument);
    assert.throws(() => meta.images.put(img("x", "sha256:zz")), isInvalidArgument);
    assert.throws(() => meta.images.put(img("x", d("a"), { size: -1 })), isInvalidArgument);
    assert.deepEqual(meta.images.list(), []);
  });
});
