import assert from "node:assert/strict";
import { lstat, mkdir, readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { ContentStore } from "../content/store.js";
import { isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore } from "../metadata/index.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { mountAll } from "../snapshots/mount.js";
import { OverlaySnapshotter } from "../snapshots/overlay.js";
import { chainIds } from "../unpack/apply.js";
import { parseManifest } from "./oci.js";
import { ImageService } from "./service.js";
import { LOWER, sha, tarDir, tempRoot, UPPER, writeDockerSave, writeOciLayout } from "./testing.js";

describe("ImageService", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let meta: MetadataStore;
  let content: ContentStore;
  let svc: ImageService;
  let sn: OverlaySnapshotter;

  before(async () => {
    ({ dir: root, cleanup } = await tempRoot("skiff-imgsvc-"));
    meta = MetadataStore.open(path.join(root, "meta.db"));
    content = new ContentStore(root);
    svc = new ImageService({ content, images: meta.images, snapshotsDir: path.join(root, "snapshots"), tmpDir: root });
    sn = new OverlaySnapshotter(root);
  });
  after(async () => {
    await sn.close();
    meta.close();
    await cleanup();
  });

  test("get/find accept short names and the image id; missing is NotFound", async () => {
    const dir = path.join(root, "short");
    await writeOciLayout(dir, { annotations: { "io.containerd.image.name": "docker.io/library/short:latest" } });
    const [img] = await svc.import(await tarDir(dir, `${dir}.tar`));
    assert.equal(svc.get("short").name, "docker.io/library/short:latest");
    assert.equal(svc.get("library/short:latest").name, img!.name);
    assert.equal(svc.get(img!.configDigest).name, img!.name);
    const digestName = `docker.io/library/short@${img!.target.digest}`;
    const tagged = svc.tag("short", `short@${img!.target.digest}`);
    assert.equal(tagged.name, digestName);
    assert.deepEqual([tagged.configDigest, tagged.target], [img!.configDigest, img!.target]);
    assert.equal(svc.get(digestName).configDigest, img!.configDigest);
    assert.throws(() => svc.tag("other", "other:1"), isNotFound);
    svc.remove(digestName);
    assert.throws(() => svc.get("other"), isNotFound);
    assert.equal(svc.find("NOT a ref!"), undefined);
    svc.remove("short");
  });

  test("find: a unique prefix of an image id, with or without sha256:; an ambiguous one is InvalidArgument; a name wins", () => {
    const config = { os: "linux", architecture: "amd64", variant: "", entrypoint: [], cmd: [], env: [], user: "", workingDir: "", volumes: [], stopSignal: "", labels: {}, exposedPorts: [], diffIds: [], created: "" };
    const put = (name: string, id: string) =>
      meta.images.put({ name, config, size: 1, configDigest: `sha256:${id}`, target: { digest: `sha256:${id.split("").reverse().join("")}`, mediaType: "m", size: 1 } });
    const idA = `0c797aea${"1".repeat(56)}`;
    const idB = `0c797bb0${"2".repeat(56)}`;
    const idC = `cafe${"3".repeat(60)}`;
    put("prefix/a:1", idA);
    put("prefix/a:2", idA); // two names, one image: not ambiguous
    put("prefix/b:1", idB);
    put("docker.io/library/cafe:latest", idC);
    try {
      assert.equal(svc.find("0c797aea")?.configDigest, `sha256:${idA}`);
      assert.equal(svc.find("sha256:0c797b")?.configDigest, `sha256:${idB}`);
      assert.equal(svc.find(idB)?.configDigest, `sha256:${idB}`, "the whole id without sha256:");
      assert.equal(svc.find("0c797ae")?.name.startsWith("prefix/a:"), true);
      for (const ambiguous of ["0c797", "sha256:0c7", "0"]) {
        assert.throws(() => svc.find(ambiguous), (e: Error) => isInvalidArgument(e) && /ambiguous: it matches 2 images/.test(e.message), ambiguous);
      }
      assert.equal(svc.find("0c797ff"), undefined, "no image has that prefix");
      assert.equal(svc.find("0C797AEA"), undefined, "ids are lower case");
      // "cafe" is a short name and a hex prefix: the name resolves first.
      assert.equal(svc.find("cafe")?.name, "docker.io/library/cafe:latest");
      assert.equal(svc.find("caf")?.name, "docker.io/library/cafe:latest", "no image is named caf: the id prefix");
    } finally {
      for (const n of ["prefix/a:1", "prefix/a:2", "prefix/b:1", "docker.io/library/cafe:latest"]) meta.images.delete(n);
    }
  });

  test("unpack: 2 layers with whiteouts → the merged view on a real overlay mount", async (t) => {
    const dir = path.join(root, "oci");
    await writeOciLayout(dir, { annotations: { "io.containerd.image.name": "example.com/two:1" } });
    await svc.import(await tarDir(dir, `${dir}.tar.gz`, { gzip: true }));
    const top = await svc.unpack("example.com/two:1", sn);
    const [c1, c2] = chainIds([sha(LOWER), sha(UPPER)]);
    assert.equal(top, c2);
    assert.equal((await sn.stat(c1!)).kind, "committed");
    assert.equal(await svc.unpack("example.com/two:1", sn), top, "second unpack is a no-op");
    assert.equal((await sn.list()).length, 2);

    const target = path.join(root, "rootfs");
    await mkdir(target);
    t.after(() => unmountAll(target));
    await mountAll(await sn.prepare("ctr-1", top), target);
    assert.deepEqual((await readdir(target)).sort(), ["b", "d"]);
    assert.deepEqual(await readdir(path.join(target, "d")), ["y"]);
    assert.equal(await readFile(path.join(target, "b"), "utf8"), "b");
    await assert.rejects(lstat(path.join(target, "a")), /ENOENT/);
    await unmountAll(target);
    await sn.remove("ctr-1");
  });

  test("docker-archive layers (uncompressed) unpack too, sharing chain IDs", async () => {
    const dir = path.join(root, "docker");
    await writeDockerSave(dir, { repoTags: ["example.com/dock:1"] });
    await svc.import(await tarDir(dir, `${dir}.tar`));
    assert.equal(await svc.unpack("example.com/dock:1", sn), chainIds([sha(LOWER), sha(UPPER)])[1]);
  });

  test("remove one of two names keeps the other; gc frees blobs only after the last name", async () => {
    const dir = path.join(root, "gc");
    await writeDockerSave(dir, { layers: [Buffer.from(LOWER)], repoTags: ["gc/img:a", "gc/img:b"] });
    const recs = await svc.import(await tarDir(dir, `${dir}.tar`));
    const target = recs[0]!.target.digest;
    const blobs = [target, recs[0]!.configDigest, ...parseManifest(await content.readAll(target)).layers.map((l) => l.digest)];

    svc.remove("gc/img:a");
    assert.throws(() => svc.get("gc/img:a"), isNotFound);
    assert.equal(svc.get("gc/img:b").target.digest, target);
    await svc.gc();
    for (const b of blobs) assert.ok(await content.has(b), `kept ${b}`);

    svc.remove("gc/img:b");
    assert.throws(() => svc.remove("gc/img:b"), isNotFound);
    const res = await svc.gc();
    // The layer is the uncompressed LOWER, which example.com/dock:1 still uses.
    assert.ok(res.blobs.includes(target as never) && res.blobs.includes(recs[0]!.configDigest as never));
    assert.equal(await content.has(target), false);
    assert.equal(await content.has(sha(LOWER)), true, "a layer another image uses stays");
    for (const img of svc.list()) assert.ok(await content.has(img.target.digest), img.name);
  });

  test("gc frees everything once no name is left", async () => {
    for (const img of svc.list()) svc.remove(img.name);
    await svc.gc();
    assert.deepEqual(await content.list(), []);
  });

  test("usage counts the content and snapshots dirs", async () => {
    const u = await svc.usage();
    assert.equal(u.snapshots.dir, path.join(root, "snapshots"));
    assert.ok(u.snapshots.size > 0 && u.snapshots.inodes > 5, JSON.stringify(u));
    assert.ok(u.content.inodes >= 1);
    const empty = new ImageService({ content: new ContentStore(path.join(root, "none")), images: meta.images, snapshotsDir: path.join(root, "none") });
    assert.deepEqual((await empty.usage()).snapshots, { dir: path.join(root, "none"), size: 0, inodes: 0 });
  });
});

test("gcSnapshots frees layer snapshots no image reaches, never under a container", async (t) => {
  const { dir: root, cleanup } = await tempRoot("skiff-snapgc-");
  const meta = MetadataStore.open(path.join(root, "meta.db"));
  const sn = new OverlaySnapshotter(root);
  t.after(async () => {
    await sn.close();
    meta.close();
    await cleanup();
  });
  const svc = new ImageService({ content: new ContentStore(root), images: meta.images, snapshotsDir: path.join(root, "snapshots"), tmpDir: root });
  const dir = path.join(root, "img");
  await writeDockerSave(dir, { repoTags: ["example.com/gc:1"] });
  await svc.import(await tarDir(dir, `${dir}.tar`));
  const top = await svc.unpack("example.com/gc:1", sn);
  const committed = async () => (await sn.list()).filter((i) => i.kind === "committed").map((i) => i.name).sort();
  const layers = await committed();
  assert.equal(layers.length, 2);

  assert.deepEqual(await svc.gcSnapshots(sn), [], "an image keeps its chain");
  await sn.prepare("ctr-gc", top);
  svc.remove("example.com/gc:1");
  assert.deepEqual(await svc.gcSnapshots(sn), [], "a container keeps the chain under it");
  assert.deepEqual(await committed(), layers);
  await sn.remove("ctr-gc");
  assert.deepEqual((await svc.gcSnapshots(sn)).sort(), layers, "top first, then its parent");
  assert.deepEqual(await committed(), []);
});
