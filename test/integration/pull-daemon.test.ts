/**
 * skiffd pulling from a real docker-registry on 127.0.0.1: Pull records the image and Run starts a
 * container from it; a missing image is NotFound. Then skiffd is SIGKILLed while a layer is half
 * downloaded (through a proxy that throttles blob bytes): after a restart the content store holds
 * only blobs whose bytes match their digest, the image is not recorded, and a second Pull resumes
 * the partial ingest with a Range request, completes, and the image runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon } from "./harness.js";
import { DebugClient } from "../../src/daemon/debug-client.js";
import type { ImageSummary } from "../../src/daemon/debug-service.js";
import { isNotFound } from "../../src/errors.js";
import { runChecked } from "../../src/util/exec.js";
import { buildImage, push, sha, startRegistry, startServer, tempDir, writeLayout, type BuiltImage } from "../../src/registry/testing/fixtures.js";

/** busybox-static (layer 1), `sh` and a marker file (layer 2), 1.5 MB of random bytes (layer 3). */
async function buildMultiLayer(work: string): Promise<BuiltImage> {
  const layerOf = async (name: string, fill: (dir: string) => Promise<void>) => {
    const dir = path.join(work, name);
    await mkdir(dir, { recursive: true });
    await fill(dir);
    const tar = await runChecked("tar", ["--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-C", dir, "-cf", "-", "."]);
    const plain = tar.stdout;
    return { bytes: gzipSync(plain, { level: 1 }), diffId: sha(plain) };
  };
  const layers = [
    await layerOf("l1", async (d) => {
      await mkdir(path.join(d, "bin"));
      await copyFile("/bin/busybox", path.join(d, "bin/busybox"));
    }),
    await layerOf("l2", async (d) => {
      await mkdir(path.join(d, "bin"));
      await mkdir(path.join(d, "etc"));
      await symlink("busybox", path.join(d, "bin/sh"));
      await writeFile(path.join(d, "etc/marker"), "pulled\n");
    }),
    await layerOf("l3", async (d) => {
      await mkdir(path.join(d, "data"));
      await writeFile(path.join(d, "data/random"), randomBytes(1536 * 1024));
    }),
  ];
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(l.bytes), size: l.bytes.length })),
    }),
  );
  return {
    manifest,
    manifestDigest: sha(manifest),
    config,
    configDigest: sha(config),
    layers: layers.map((l) => ({ bytes: l.bytes, digest: sha(l.bytes) })),
  };
}

/** A proxy in front of the registry sending blob bodies at `rate.bytesPerSec`; logs blob requests. */
async function startThrottlingProxy(t: { after: (fn: () => unknown) => void }, target: string) {
  const rate = { bytesPerSec: 200 * 1024 };
  const blobRequests: { digest: string; range: string | undefined }[] = [];
  const { host } = await startServer(t, (req, res) => {
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? "");
    if (m && req.method === "GET") blobRequests.push({ digest: m[1]!, range: req.headers.range });
    const up = http.request(`http://${target}${req.url ?? "/"}`, { method: req.method, headers: { ...req.headers, host: target } }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!m) {
        ur.pipe(res);
        return;
      }
      void (async () => {
        try {
          for await (const chunk of ur as AsyncIterable<Buffer>) {
            for (let i = 0; i < chunk.length; i += 16 * 1024) {
              const part = chunk.subarray(i, i + 16 * 1024);
              if (!res.write(part)) await new Promise((r) => res.once("drain", r));
              if (Number.isFinite(rate.bytesPerSec)) await new Promise((r) => setTimeout(r, (part.length / rate.bytesPerSec) * 1000));
              if (res.destroyed) return;
            }
          }
          res.end();
        } catch {
          res.destroy();
        }
      })();
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  return { host, rate, blobRequests };
}

interface Ingest {
  ref: string;
  offset: number;
  size: number;
}

async function ingests(root: string): Promise<Ingest[]> {
  const dir = path.join(root, "content", "ingest");
  const out: Ingest[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    try {
      const ref = JSON.parse(await readFile(path.join(dir, name, "ref"), "utf8")) as { ref: string; expected?: { size?: number } };
      const { size } = await stat(path.join(dir, name, "data"));
      out.push({ ref: ref.ref, offset: size, size: ref.expected?.size ?? -1 });
    } catch {
      // being created or committed right now
    }
  }
  return out;
}

/** Re-hashes every blob: each file's bytes must match its name. */
async function assertBlobsVerified(root: string): Promise<number> {
  const dir = path.join(root, "content", "blobs", "sha256");
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const hex of names) {
    const got = createHash("sha256").update(await readFile(path.join(dir, hex))).digest("hex");
    assert.equal(got, hex, `blob ${hex} holds bytes of ${got}`);
  }
  return names.length;
}

test("Pull from a registry, Run the image; SIGKILL mid-pull leaves a consistent store and the next Pull resumes", { timeout: 180_000 }, async (t) => {
  const work = await tempDir(t, "skiff-pulld-");
  const reg = await startRegistry(t);
  const small = await buildImage(work, "amd64");
  const smallLayout = await writeLayout(work, "1", [{ img: small, arch: "amd64" }]);
  await push(smallLayout.layout, "1", reg.host, "skiff/bb");
  const multi = await buildMultiLayer(work);
  const multiLayout = await writeLayout(work, "1", [{ img: multi, arch: "amd64" }]);
  await push(multiLayout.layout, "1", reg.host, "skiff/multi");
  const proxy = await startThrottlingProxy(t, reg.host);

  const env = await makeEnv();
  env.cfg.registry.stallTimeoutMs = 20_000;
  env.cfg.registry.hosts = [
    { host: reg.host, insecure: true },
    { host: proxy.host, insecure: true },
  ];
  let daemon: ChildProcess = await spawnDaemon(env);
  let client: DebugClient | undefined;
  t.after(async () => {
    client?.close();
    await stopDaemon(daemon);
    assert.deepEqual(await cleanupEnv(env), []);
  });
  client = await DebugClient.connect(env.cfg.debugSocket);

  // 1. A plain pull, then a container from the pulled image.
  const bb = await client.call<ImageSummary>("Pull", { ref: `${reg.host}/skiff/bb:1` }, { timeoutMs: 60_000 });
  assert.deepEqual(bb, {
    name: `${reg.host}/skiff/bb:1`,
    digest: small.manifestDigest,
    id: small.configDigest,
    size: small.manifest.length + small.config.length + small.layers[0]!.bytes.length,
  });
  assert.ok((await client.call<ImageSummary[]>("Images")).some((i) => i.name === bb.name));
  const runAndWait = async (id: string, image: string, args: string[]) => {
    const out = path.join(env.dir, `${id}.log`);
    await client!.call("Run", { id, image, args, stdout: `file://${out}` });
    const exit = await client!.call<{ exitStatus: number }>("Wait", { id }, { timeoutMs: 30_000 });
    await client!.call("Delete", { id }, { timeoutMs: 30_000 });
    return { exitStatus: exit.exitStatus, stdout: await readFile(out, "utf8") };
  };
  assert.deepEqual(await runAndWait("bb", bb.name, ["/bin/busybox", "sh", "-c", "cat /arch; exit 3"]), { exitStatus: 3, stdout: "amd64\n" });

  // 2. A missing image is NotFound, and nothing is recorded.
  await assert.rejects(client.call("Pull", { ref: `${reg.host}/skiff/nope:1` }, { timeoutMs: 60_000 }), (err: Error) => {
    assert.ok(isNotFound(err), `expected NotFound, got ${err.message}`);
    return true;
  });

  // 3. A slow pull through the throttling proxy; SIGKILL skiffd once a layer is half there.
  const ref = `${proxy.host}/skiff/multi:1`;
  const pending = client.call("Pull", { ref }, { timeoutMs: 120_000 }).then(
    () => assert.fail("the pull cannot finish: skiffd is killed during it"),
    (err: unknown) => err,
  );
  let partial: Ingest | undefined;
  const deadline = Date.now() + 60_000;
  while (!partial) {
    assert.ok(Date.now() < deadline, "no partial ingest appeared within 60 s");
    partial = (await ingests(env.cfg.root)).find((i) => i.offset >= 64 * 1024 && i.offset < i.size - 256 * 1024);
    if (!partial) await new Promise((r) => setTimeout(r, 50));
  }
  daemon.kill("SIGKILL");
  await new Promise((r) => daemon.once("exit", r));
  client.close();
  client = undefined;
  await pending;

  // 4. After a restart: every blob verifies, the image is not recorded, the partial ingest is still there.
  const left = await ingests(env.cfg.root);
  const partialDigest = partial.ref.replace(/^pull-/, "");
  const resumeFrom = left.find((i) => i.ref === partial!.ref)?.offset ?? 0;
  assert.ok(resumeFrom >= partial.offset && resumeFrom < partial.size, `partial ingest of ${partialDigest} kept (${resumeFrom} bytes)`);
  daemon = await spawnDaemon(env);
  client = await DebugClient.connect(env.cfg.debugSocket);
  assert.ok((await assertBlobsVerified(env.cfg.root)) > 0);
  assert.equal((await client.call<ImageSummary[]>("Images")).find((i) => i.name === ref), undefined, "image not recorded");

  // 5. Pull again (at full speed): the partial layer resumes with a Range request, and the image runs.
  proxy.rate.bytesPerSec = Infinity;
  const before = proxy.blobRequests.length;
  const img = await client.call<ImageSummary>("Pull", { ref }, { timeoutMs: 60_000 });
  assert.equal(img.name, ref);
  assert.equal(img.digest, multi.manifestDigest);
  assert.equal(img.id, multi.configDigest);
  const again = proxy.blobRequests.slice(before).filter((r) => r.digest === partialDigest);
  assert.deepEqual(again, [{ digest: partialDigest, range: `bytes=${resumeFrom}-` }], "the partial layer is resumed, not restarted");
  await assertBlobsVerified(env.cfg.root);
  for (const l of multi.layers) assert.ok((await stat(path.join(env.cfg.root, "content/blobs/sha256", l.digest.slice(7)))).isFile());
  assert.deepEqual(await ingests(env.cfg.root), [], "no ingest left after the pull");
  assert.deepEqual(await runAndWait("multi", ref, ["sh", "-c", "cat /etc/marker; test -s /data/random && exit 7"]), {
    exitStatus: 7,
    stdout: "pulled\n",
  });
});
