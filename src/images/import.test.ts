import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { ContentStore } from "../content/store.js";
import { isInvalidArgument, isNotFound } from "../errors.js";
import { MetadataStore } from "../metadata/index.js";
import { runChecked } from "../util/exec.js";
import { exportArchive } from "./export.js";
import { importArchive } from "./import.js";
import { MediaType, parseManifest } from "./oci.js";
import { LOWER, sha, tarDir, tempRoot, UPPER, writeDockerSave, writeOciLayout } from "./testing.js";

describe("importArchive", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let n = 0;
  let content: ContentStore;
  let meta: MetadataStore;
  const fresh = () => path.join(root, `case-${++n}`);

  before(async () => ({ dir: root, cleanup } = await tempRoot("skiff-import-")));
  after(() => cleanup());
  beforeEach(async () => {
    const store = fresh();
    content = new ContentStore(store);
    meta?.close();
    meta = MetadataStore.open(":memory:");
  });
  after(() => meta.close());

  const opts = () => ({ content, images: meta.images, tmpDir: root });

  test("gzip'd OCI layout: names from both annotations, every blob stored and verified", async () => {
    const dir = fresh();
    const { manifest, config } = await writeOciLayout(dir, {
      annotations: { "io.containerd.image.name": "example.com/team/app:v2", "org.opencontainers.image.ref.name": "v2" },
    });
    const recs = await importArchive(await tarDir(dir, `${dir}.tar.gz`, { gzip: true }), opts());
    assert.deepEqual(recs.map((r) => r.name), ["example.com/team/app:v2"]);
    const img = meta.images.get("example.com/team/app:v2");
    assert.equal(img.target.digest, manifest);
    assert.equal(img.target.mediaType, MediaType.OciManifest);
    assert.equal(img.configDigest, config);
    assert.deepEqual(img.config.diffIds, [sha(LOWER), sha(UPPER)]);
    assert.deepEqual(img.config.cmd, ["sh"]);
    const m = parseManifest(await content.readAll(manifest));
    for (const d of [manifest, config, ...m.layers.map((l) => l.digest)]) assert.ok(await content.has(d), d);
    assert.equal(img.size, img.target.size + m.config.size + m.layers.reduce((s, l) => s + l.size, 0));
  });

  test("OCI ref.name that is a full reference names the image; a bare tag needs a name", async () => {
    const dir = fresh();
    await writeOciLayout(dir, { annotations: { "org.opencontainers.image.ref.name": "busybox:1.36" } });
    const tar = await tarDir(dir, `${dir}.tar`);
    assert.deepEqual((await importArchive(tar, opts())).map((r) => r.name), ["docker.io/library/busybox:1.36"]);

    const bare = fresh();
    await writeOciLayout(bare, { annotations: { "org.opencontainers.image.ref.name": "latest" } });
    const bareTar = await tarDir(bare, `${bare}.tar`);
    await assert.rejects(importArchive(bareTar, opts()), (e: Error) => isInvalidArgument(e) && /no name/.test(e.message));
    const named = await importArchive(bareTar, { ...opts(), name: "local/thing" });
    assert.deepEqual(named.map((r) => r.name), ["docker.io/local/thing:latest"]);
  });

  test("docker save archive: RepoTags recorded, OCI manifest made with Docker media types", async () => {
    const dir = fresh();
    const { config } = await writeDockerSave(dir, { repoTags: ["example.com/app:v1", "app:latest"] });
    const recs = await importArchive(await tarDir(dir, `${dir}.tar`), opts());
    assert.deepEqual(recs.map((r) => r.name).sort(), ["docker.io/library/app:latest", "example.com/app:v1"]);
    const img = meta.images.get("example.com/app:v1");
    assert.equal(img.configDigest, config);
    assert.equal(meta.images.get("docker.io/library/app:latest").target.digest, img.target.digest);
    const m = parseManifest(await content.readAll(img.target.digest));
    assert.equal(m.config.mediaType, MediaType.DockerConfig);
    assert.deepEqual(m.layers.map((l) => [l.mediaType, l.digest]), [
      [MediaType.DockerLayer, sha(LOWER)],
      [MediaType.DockerLayer, sha(UPPER)],
    ]);
    assert.deepEqual(await content.readAll(sha(UPPER)), UPPER);
  });

  test("docker-archive written by skopeo imports", async () => {
    const layout = fresh();
    await writeOciLayout(layout, { annotations: { "org.opencontainers.image.ref.name": "v3" } });
    const out = `${fresh()}.tar`;
    await runChecked("skopeo", ["--insecure-policy", "copy", "-q", `oci:${layout}:v3`, `docker-archive:${out}:example.com/sk/img:v3`]);
    const recs = await importArchive(out, opts());
    assert.deepEqual(recs.map((r) => r.name), ["example.com/sk/img:v3"]);
    assert.deepEqual(recs[0]!.config.diffIds, [sha(LOWER), sha(UPPER)]);
  });

  test("a corrupted layer (OCI or docker) is InvalidArgument and records nothing", async () => {
    const oci = fresh();
    const gzUpper = sha(gzipSync(UPPER));
    await writeOciLayout(oci, {
      annotations: { "io.containerd.image.name": "bad/oci:1" },
      corrupt: (d, data) => (d === gzUpper ? Buffer.concat([data, Buffer.from("!")]) : data),
    });
    await assert.rejects(importArchive(await tarDir(oci, `${oci}.tar`), opts()), isInvalidArgument);

    const docker = fresh();
    await writeDockerSave(docker, { repoTags: ["bad/docker:1"], corruptLayer: 1 });
    await assert.rejects(importArchive(await tarDir(docker, `${docker}.tar`), opts()), isInvalidArgument);
    assert.deepEqual(meta.images.list(), []);
  });

  test("a corrupted manifest is InvalidArgument", async () => {
    const dir = fresh();
    await writeOciLayout(dir, {
      annotations: { "io.containerd.image.name": "bad/m:1" },
      corrupt: (_d, data) => (data.includes('"layers"') ? Buffer.from(data.toString().replace("tar+gzip", "tar+gzipX")) : data),
    });
    await assert.rejects(importArchive(await tarDir(dir, `${dir}.tar`), opts()), (e: Error) => isInvalidArgument(e) && /unexpected content/.test(e.message));
    assert.deepEqual(meta.images.list(), []);
  });

  test("symlinked members are refused, never followed", async () => {
    const dir = fresh();
    await writeOciLayout(dir, { annotations: { "io.containerd.image.name": "evil/x:1" } });
    const secret = path.join(root, `secret-${n}.json`);
    await writeFile(secret, JSON.stringify({ schemaVersion: 2, manifests: [] }));
    await rm(path.join(dir, "index.json"));
    await symlink(secret, path.join(dir, "index.json"));
    await assert.rejects(importArchive(await tarDir(dir, `${dir}.tar`), opts()), (e: Error) => isInvalidArgument(e) && /not a regular file/.test(e.message));
  });

  test("not an image archive / missing archive", async () => {
    const dir = fresh();
    await mkdir(dir);
    await writeFile(path.join(dir, "hello"), "x");
    await assert.rejects(importArchive(await tarDir(dir, `${dir}.tar`), opts()), isInvalidArgument);
    await writeFile(`${dir}.junk`, "not a tar at all");
    await assert.rejects(importArchive(`${dir}.junk`, opts()), isInvalidArgument);
    await assert.rejects(importArchive(path.join(root, "nope.tar"), opts()), isNotFound);
  });

  test("export → import into an empty store gives the same images", async () => {
    const dir = fresh();
    await writeDockerSave(dir, { repoTags: ["example.com/app:v1", "example.com/app:v2"] });
    const recs = await importArchive(await tarDir(dir, `${dir}.tar`), opts());
    const out = `${fresh()}.tar`;
    await exportArchive(["example.com/app:v1", "example.com/app:v2"], out, opts());
    const out2 = `${fresh()}.tar`;
    await exportArchive(["example.com/app:v1", "example.com/app:v2"], out2, opts());
    assert.equal(sha(await readFile(out)), sha(await readFile(out2)), "reproducible");

    const other = new ContentStore(fresh());
    const meta2 = MetadataStore.open(":memory:");
    try {
      const again = await importArchive(out, { content: other, images: meta2.images, tmpDir: root });
      assert.deepEqual(again.map((r) => [r.name, r.target.digest]).sort(), recs.map((r) => [r.name, r.target.digest]).sort());
      for (const l of parseManifest(await other.readAll(recs[0]!.target.digest)).layers) assert.ok(await other.has(l.digest));
    } finally {
      meta2.close();
    }
    await assert.rejects(exportArchive(["nope:1"], `${fresh()}.tar`, opts()), isNotFound);
  });

  test("temp extraction dirs are removed", async () => {
    assert.deepEqual((await readdir(root)).filter((f) => f.startsWith("skiff-archive-") || f.startsWith("skiff-export-")), []);
  });
});
