/**
 * Pull failure handling against a node:http fake registry on 127.0.0.1 that serves a real
 * manifest and config and lets each test decide how the layer is served.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { ContentStore } from "../content/store.js";
import { codeOf, ErrorCode, isDeadlineExceeded, isInvalidArgument } from "../errors.js";
import { RegistryHosts } from "./hosts.js";
import { pull } from "./pull.js";
import { sha, startServer, type T, tempDir } from "./testing/fixtures.js";

type LayerHandler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Fake {
  host: string;
  layer: Buffer;
  layerDigest: string;
  manifestDigest: string;
  layerRequests: IncomingMessage[];
  requests: () => number;
  connections: () => number;
}

/** A registry serving repo `r` tag `t`; `manifestBody` overrides the manifest bytes. */
async function fakeRegistry(t: T, layerHandler: LayerHandler, opts: { manifestBody?: Buffer; contentType?: string; layer?: Buffer } = {}): Promise<Fake> {
  const layer = opts.layer ?? randomBytes(256 * 1024);
  const layerDigest = sha(layer);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const manifest =
    opts.manifestBody ??
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", digest: layerDigest, size: layer.length }],
      }),
    );
  const manifestDigest = sha(manifest);
  const layerRequests: IncomingMessage[] = [];
  let requests = 0;
  let connections = 0;
  const { host, server } = await startServer(t, (req, res) => {
    requests++;
    const url = req.url ?? "";
    if (url === "/v2/") return void res.writeHead(200).end("{}");
    if (url === "/v2/r/manifests/t" || url === `/v2/r/manifests/${manifestDigest}`) {
      res.writeHead(200, {
        "content-type": opts.contentType ?? "application/vnd.oci.image.manifest.v1+json",
        "content-length": manifest.length,
        "docker-content-digest": manifestDigest,
      });
      return void res.end(req.method === "HEAD" ? undefined : manifest);
    }
    if (url === `/v2/r/blobs/${sha(config)}`) return void res.writeHead(200, { "content-length": config.length }).end(config);
    if (url === `/v2/r/blobs/${layerDigest}`) {
      layerRequests.push(req);
      return layerHandler(req, res, layerRequests.length);
    }
    res.writeHead(404).end();
  });
  server.on("connection", () => connections++);
  return { host, layer, layerDigest, manifestDigest, layerRequests, requests: () => requests, connections: () => connections };
}

async function setup(t: T, handler: LayerHandler, opts?: Parameters<typeof fakeRegistry>[2]) {
  const fake = await fakeRegistry(t, handler, opts);
  const store = new ContentStore(await tempDir(t, "skiff-pull-faults-"));
  const hosts = new RegistryHosts([{ host: fake.host, insecure: true }]);
  return { fake, store, hosts, ref: `${fake.host}/r:t` };
}

describe("pull failure handling", () => {
  test("a server that goes silent mid-layer → DeadlineExceeded naming the layer, within the stall timeout", async (t) => {
    let fake!: Fake;
    const env = await setup(t, (_req, res) => {
      res.writeHead(200, { "content-length": fake.layer.length });
      res.write(fake.layer.subarray(0, fake.layer.length / 2)); // then nothing, connection left open
    });
    fake = env.fake;
    const start = Date.now();
    await assert.rejects(pull(env.ref, { store: env.store, hosts: env.hosts, stallTimeoutMs: 1500 }), (err: Error) => {
      assert.ok(isDeadlineExceeded(err), `code ${codeOf(err)}: ${err.message}`);
      assert.ok(err.message.includes(fake.layerDigest), err.message);
      assert.match(err.message, /stalled/);
      return true;
    });
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 1400 && elapsed < 5000, `failed after ${elapsed} ms`);
    assert.equal(fake.layerRequests.length, 1, "a stall is not retried");
    assert.equal(await env.store.has(fake.layerDigest), false);
    assert.equal(await env.store.has(fake.manifestDigest), false);
    assert.deepEqual(await env.store.leases(), []);
  });

  test("a connection dropped mid-layer is resumed with a Range request and the blob verifies", async (t) => {
    let fake!: Fake;
    const half = 100_000;
    const env = await setup(t, (req, res, n) => {
      const size = fake.layer.length;
      if (n === 1) {
        res.writeHead(200, { "content-length": size });
        res.write(fake.layer.subarray(0, half), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      if (!m) return void res.writeHead(200, { "content-length": size }).end(fake.layer);
      const from = Number(m[1]);
      res.writeHead(206, { "content-length": size - from, "content-range": `bytes ${from}-${size - 1}/${size}` });
      res.end(fake.layer.subarray(from));
    });
    fake = env.fake;
    const done: number[] = [];
    const r = await pull(env.ref, { store: env.store, hosts: env.hosts, backoffMs: 10, onProgress: (p) => done.push(p.done) });
    assert.equal(fake.layerRequests.length, 2);
    assert.equal(fake.layerRequests[0]!.headers.range, undefined);
    assert.equal(fake.layerRequests[1]!.headers.range, `bytes=${half}-`);
    assert.deepEqual(await env.store.readAll(fake.layerDigest), fake.layer);
    assert.equal(r.layers[0]!.mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
    assert.equal(done.at(-1), fake.layer.length);
    assert.deepEqual(await env.store.ingests(), []);
  });

  test("a 200 answer to a Range request is handled by skipping the bytes already stored", async (t) => {
    let fake!: Fake;
    const env = await setup(t, (_req, res, n) => {
      res.writeHead(200, { "content-length": fake.layer.length });
      if (n === 1) res.write(fake.layer.subarray(0, 5000), () => setTimeout(() => res.socket?.destroy(), 50));
      else res.end(fake.layer);
    });
    fake = env.fake;
    await pull(env.ref, { store: env.store, hosts: env.hosts, backoffMs: 10 });
    assert.equal(fake.layerRequests[1]!.headers.range, "bytes=5000-");
    assert.deepEqual(await env.store.readAll(fake.layerDigest), fake.layer);
  });

  test("5xx answers are retried with backoff; after `retries` the pull fails Unavailable", async (t) => {
    let fake!: Fake;
    const env = await setup(t, (_req, res, n) => {
      if (n <= 2) return void res.writeHead(503).end();
      res.writeHead(200, { "content-length": fake.layer.length }).end(fake.layer);
    });
    fake = env.fake;
    await pull(env.ref, { store: env.store, hosts: env.hosts, backoffMs: 10 });
    assert.equal(fake.layerRequests.length, 3);
    assert.equal(await env.store.has(fake.layerDigest), true);

    const always = await setup(t, (_req, res) => void res.writeHead(500).end());
    await assert.rejects(pull(always.ref, { store: always.store, hosts: always.hosts, backoffMs: 5, retries: 2 }), (err: Error) => {
      assert.equal(codeOf(err), ErrorCode.Unavailable);
      return true;
    });
    assert.equal(always.fake.layerRequests.length, 3, "first try + 2 retries");
  });

  test("a blob whose content does not match its digest is rejected and nothing is visible", async (t) => {
    let fake!: Fake;
    const env = await setup(t, (_req, res) => {
      const wrong = Buffer.from(fake.layer);
      wrong[1000] = wrong[1000]! ^ 0xff;
      res.writeHead(200, { "content-length": wrong.length }).end(wrong);
    });
    fake = env.fake;
    await assert.rejects(pull(env.ref, { store: env.store, hosts: env.hosts }), (err: Error) => {
      assert.ok(isInvalidArgument(err), `code ${codeOf(err)}: ${err.message}`);
      assert.ok(err.message.includes(fake.layerDigest), err.message);
      return true;
    });
    assert.equal(fake.layerRequests.length, 1, "a digest mismatch is not retried");
    assert.equal(await env.store.has(fake.layerDigest), false);
    assert.equal(await env.store.has(fake.manifestDigest), false);
    assert.deepEqual(await env.store.ingests(), []);
    assert.deepEqual(await env.store.leases(), []);
  });

  test("a manifest that does not match the digest pulled by → InvalidArgument", async (t) => {
    const env = await setup(t, (_req, res) => void res.writeHead(404).end());
    const bogus = `sha256:${"1".repeat(64)}`;
    // Serve the real manifest under a digest it does not hash to.
    const { host } = await startServer(t, (req, res) => {
      if (req.url === `/v2/r/manifests/${bogus}`) {
        res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
        res.end(req.method === "HEAD" ? undefined : '{"schemaVersion":2}');
        return;
      }
      res.writeHead(404).end();
    });
    const hosts = new RegistryHosts([{ host, insecure: true }]);
    await assert.rejects(pull(`${host}/r@${bogus}`, { store: env.store, hosts }), (err: Error) => {
      assert.ok(isInvalidArgument(err), err.message);
      assert.match(err.message, /does not match its digest/);
      return true;
    });
  });

  test("schema 1 manifests → InvalidArgument unsupported", async (t) => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 1, name: "r", tag: "t", fsLayers: [] }));
    const env = await setup(t, (_req, res) => void res.writeHead(404).end(), {
      manifestBody: body,
      contentType: "application/vnd.docker.distribution.manifest.v1+prettyjws",
    });
    await assert.rejects(pull(env.ref, { store: env.store, hosts: env.hosts }), (err: Error) => {
      assert.ok(isInvalidArgument(err), err.message);
      assert.match(err.message, /unsupported/);
      return true;
    });
  });

  test("the caller's signal cancels a download in progress", async (t) => {
    let fake!: Fake;
    const env = await setup(t, (_req, res) => {
      res.writeHead(200, { "content-length": fake.layer.length });
      res.write(fake.layer.subarray(0, 10));
    });
    fake = env.fake;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const start = Date.now();
    await assert.rejects(pull(env.ref, { store: env.store, hosts: env.hosts, signal: ac.signal, stallTimeoutMs: 10_000 }), (err: Error) => {
      assert.equal(codeOf(err), ErrorCode.Canceled, err.message);
      return true;
    });
    assert.ok(Date.now() - start < 3000);
  });
});

test("a registry that never answers the manifest request → DeadlineExceeded within the stall timeout", async (t) => {
  const { host } = await startServer(t, () => {
    /* never answers */
  });
  const store = new ContentStore(await tempDir(t, "skiff-pull-faults-"));
  const hosts = new RegistryHosts([{ host, insecure: true }]);
  const start = Date.now();
  await assert.rejects(pull(`${host}/r:t`, { store, hosts, stallTimeoutMs: 500 }), (err: Error) => {
    assert.ok(isDeadlineExceeded(err), `code ${codeOf(err)}: ${err.message}`);
    assert.ok(err.message.includes(`${host}/r:t`), err.message);
    return true;
  });
  assert.ok(Date.now() - start < 3000);
});

test("blob downloads follow redirects to another host; connections are reused", async (t) => {
  const layer = randomBytes(50_000);
  const storage = await startServer(t, (req, res) => {
    if (req.url === "/storage/layer") return void res.writeHead(200, { "content-length": layer.length }).end(layer);
    res.writeHead(404).end();
  });
  const env = await setup(t, (_req, res) => void res.writeHead(307, { location: `http://${storage.host}/storage/layer` }).end(), { layer });
  const r = await pull(env.ref, { store: env.store, hosts: env.hosts });
  assert.deepEqual(await env.store.readAll(r.layers[0]!.digest), layer);
  assert.equal(env.fake.layerRequests.length, 1);
  // HEAD + GET manifest + GET config + GET layer over keep-alive: fewer sockets than requests.
  assert.equal(env.fake.requests(), 4);
  assert.ok(env.fake.connections() < env.fake.requests(), `${env.fake.connections()} connections`);
});
