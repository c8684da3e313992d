/**
 * Pulls from a real Debian `docker-registry` on 127.0.0.1, images pushed with skopeo.
 *
 * Auth: `docker-registry` with `auth: token` needs TLS certificates, so authentication is tested
 * with a node:http auth proxy in front of the registry instead: it demands Basic credentials, or
 * Bearer tokens issued by a token server written here (the distribution token-auth flow).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { after, before, describe, test } from "node:test";
import { ContentStore } from "../content/store.js";
import { codeOf, ErrorCode, isNotFound } from "../errors.js";
import { Authorizer, parseWwwAuthenticate } from "./auth.js";
import { RegistryHosts, type Endpoint } from "./hosts.js";
import { type Progress, pull } from "./pull.js";
import {
  type BuiltImage,
  buildImage,
  forward,
  push,
  startRegistry,
  startServer,
  tempDir,
  type T,
  writeLayout,
} from "./testing/fixtures.js";

interface World {
  reg: { host: string };
  amd64: BuiltImage;
  arm64: BuiltImage;
  oneDigest: string;
  indexDigest: string;
}

let world: World;
const suiteT: T & { cleanups: (() => unknown)[] } = {
  cleanups: [],
  after(fn) {
    this.cleanups.push(fn);
  },
};

async function storeFor(t: T) {
  const root = await tempDir(t, "skiff-pull-store-");
  return new ContentStore(root);
}

const insecure = (...hosts: string[]) => new RegistryHosts(hosts.map((host) => ({ host, insecure: true })));

describe("pull from docker-registry", () => {
  before(async () => {
    const work = await tempDir(suiteT);
    const reg = await startRegistry(suiteT);
    const amd64 = await buildImage(work, "amd64");
    const arm64 = await buildImage(work, "arm64");
    const one = await writeLayout(work, "v1", [{ img: amd64, arch: "amd64" }]);
    await push(one.layout, "v1", reg.host, "test/one");
    const multi = await writeLayout(work, "multi", [
      { img: arm64, arch: "arm64" },
      { img: amd64, arch: "amd64" },
    ]);
    await push(multi.layout, "multi", reg.host, "test/multi");
    world = { reg, amd64, arm64, oneDigest: one.digest, indexDigest: multi.digest };
  });
  // Suite-level resources (registry, temp dirs) are released after every test, in reverse order.
  after(async () => {
    for (const fn of suiteT.cleanups.reverse()) await fn();
  });

  test("by tag: manifest, config and layer stored, verified, leased; progress reported", async (t) => {
    const store = await storeFor(t);
    const events: Progress[] = [];
    const r = await pull(`${world.reg.host}/test/one:v1`, { store, hosts: insecure(world.reg.host), onProgress: (p) => events.push(p) });
    assert.equal(r.name, `${world.reg.host}/test/one:v1`);
    assert.equal(r.digest, world.oneDigest);
    assert.equal(r.manifest.digest, world.amd64.manifestDigest);
    assert.equal(r.config.digest, world.amd64.configDigest);
    assert.deepEqual(r.layers.map((l) => l.digest), [world.amd64.layers[0]!.digest]);
    assert.equal(r.indexDigest, undefined);
    assert.deepEqual(await store.readAll(r.manifest.digest), world.amd64.manifest);
    assert.deepEqual(await store.readAll(r.config.digest), world.amd64.config);
    assert.deepEqual(await store.readAll(r.layers[0]!.digest), world.amd64.layers[0]!.bytes);
    const lease = (await store.leases()).find((l) => l.id === r.lease);
    assert.ok(lease, "lease kept for the caller");
    assert.deepEqual(new Set(lease.digests), new Set([r.manifest.digest, r.config.digest, r.layers[0]!.digest]));
    const last = events.filter((e) => e.digest === r.layers[0]!.digest).at(-1);
    assert.ok(last);
    assert.equal(last.total, world.amd64.layers[0]!.bytes.length);
    assert.equal(last.done, last.total);
    assert.equal(last.mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
    assert.ok(!events.some((e) => e.digest === r.config.digest), "progress is per layer");
    assert.equal(await store.releaseLease(r.lease), true);
  });

  test("second pull skips blobs already present (no blob requests)", async (t) => {
    const store = await storeFor(t);
    const seen: string[] = [];
    const proxy = await startServer(t, (req, res) => {
      seen.push(req.url ?? "");
      forward(req, res, world.reg.host);
    });
    const hosts = insecure(proxy.host);
    await pull(`${proxy.host}/test/one:v1`, { store, hosts });
    assert.ok(seen.some((u) => u.includes("/blobs/")));
    seen.length = 0;
    const r = await pull(`${proxy.host}/test/one:v1`, { store, hosts });
    assert.equal(r.digest, world.oneDigest);
    assert.deepEqual(seen.filter((u) => u.includes("/blobs/")), []);
  });

  test("by digest", async (t) => {
    const store = await storeFor(t);
    const r = await pull(`${world.reg.host}/test/one@${world.oneDigest}`, { store, hosts: insecure(world.reg.host) });
    assert.equal(r.digest, world.oneDigest);
    assert.equal(await store.has(r.layers[0]!.digest), true);
  });

  test("multi-arch index: linux/amd64 chosen, index stored; arm64 on request", async (t) => {
    const store = await storeFor(t);
    const hosts = insecure(world.reg.host);
    const r = await pull(`${world.reg.host}/test/multi:multi`, { store, hosts });
    assert.equal(r.digest, world.indexDigest);
    assert.equal(r.indexDigest, world.indexDigest);
    assert.equal(r.manifest.digest, world.amd64.manifestDigest);
    assert.equal(await store.has(world.indexDigest), true);
    assert.equal(await store.has(world.arm64.configDigest), false, "the other platform is not downloaded");
    const a = await pull(`${world.reg.host}/test/multi:multi`, { store, hosts, platform: { os: "linux", architecture: "arm64" } });
    assert.equal(a.manifest.digest, world.arm64.manifestDigest);
    assert.deepEqual(await store.readAll(a.layers[0]!.digest), world.arm64.layers[0]!.bytes);
  });

  test("missing image or tag → NotFound naming the reference", async (t) => {
    const store = await storeFor(t);
    const hosts = insecure(world.reg.host);
    for (const ref of [`${world.reg.host}/test/nope:v1`, `${world.reg.host}/test/one:nope`, `${world.reg.host}/test/one@sha256:${"0".repeat(64)}`]) {
      await assert.rejects(pull(ref, { store, hosts }), (err: Error) => isNotFound(err) && err.message.includes(ref.split("@")[0]!));
    }
    assert.deepEqual(await store.leases(), [], "lease released on failure");
  });

  test("through a mirror that holds the image while the upstream does not", async (t) => {
    const store = await storeFor(t);
    const upstream = await startRegistry(t);
    const hosts = new RegistryHosts([
      { host: upstream.host, insecure: true, mirrors: [world.reg.host] },
      { host: world.reg.host, insecure: true },
    ]);
    const r = await pull(`${upstream.host}/test/one:v1`, { store, hosts });
    assert.equal(r.digest, world.oneDigest);
    assert.equal(await store.has(r.layers[0]!.digest), true);
    // Without the mirror the upstream alone does not have it.
    await assert.rejects(pull(`${upstream.host}/test/one:v1`, { store, hosts: insecure(upstream.host) }), isNotFound);
  });

  test("an unreachable mirror falls through to the upstream", async (t) => {
    const store = await storeFor(t);
    const hosts = new RegistryHosts([
      { host: world.reg.host, insecure: true, mirrors: ["127.0.0.1:1"] },
      { host: "127.0.0.1:1", insecure: true },
    ]);
    const r = await pull(`${world.reg.host}/test/one:v1`, { store, hosts });
    assert.equal(r.digest, world.oneDigest);
  });

  describe("basic auth (auth proxy)", () => {
    async function basicProxy(t: T) {
      const want = `Basic ${Buffer.from("alice:s3cret").toString("base64")}`;
      return startServer(t, (req, res) => {
        if (req.headers.authorization !== want) {
          res.writeHead(401, { "www-authenticate": 'Basic realm="test"', "content-type": "application/json" });
          res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
        forward(req, res, world.reg.host);
      });
    }

    test("right credentials pull", async (t) => {
      const proxy = await basicProxy(t);
      const store = await storeFor(t);
      const hosts = new RegistryHosts([{ host: proxy.host, insecure: true, auth: { username: "alice", password: "s3cret" } }]);
      const r = await pull(`${proxy.host}/test/one:v1`, { store, hosts });
      assert.equal(r.digest, world.oneDigest);
    });

    test("wrong or missing credentials → unauthorized naming registry and repository", async (t) => {
      const proxy = await basicProxy(t);
      const store = await storeFor(t);
      for (const auth of [{ username: "alice", password: "wrong" }, undefined]) {
        const hosts = new RegistryHosts([{ host: proxy.host, insecure: true, ...(auth ? { auth } : {}) }]);
        await assert.rejects(pull(`${proxy.host}/test/one:v1`, { store, hosts }), (err: Error) => {
          assert.equal(codeOf(err), ErrorCode.FailedPrecondition);
          assert.match(err.message, /^unauthorized:/);
          assert.ok(err.message.includes(proxy.host) && err.message.includes("test/one"), err.message);
          return true;
        });
      }
    });
  });

  describe("bearer token auth (token server + auth proxy)", () => {
    async function tokenSetup(t: T) {
      const issued = new Set<string>();
      const tokenRequests: URL[] = [];
      const tokens = await startServer(t, (req, res) => {
        const u = new URL(req.url ?? "/", "http://x");
        tokenRequests.push(u);
        if (req.headers.authorization !== `Basic ${Buffer.from("bob:pw").toString("base64")}`) {
          res.writeHead(401).end();
          return;
        }
        const token = randomBytes(16).toString("hex");
        issued.add(`${token} ${u.searchParams.get("scope")}`);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token, expires_in: 300 }));
      });
      const proxy = await startServer(t, (req: IncomingMessage, res) => {
        const repo = /^\/v2\/(.+?)\/(?:manifests|blobs)\//.exec(req.url ?? "")?.[1];
        const scope = repo ? `repository:${repo}:pull` : "";
        const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
        if (!m || !issued.has(`${m[1]} ${scope}`)) {
          res.writeHead(401, {
            "www-authenticate": `Bearer realm="http://${tokens.host}/token",service="test-registry",scope="${scope}"`,
          });
          res.end();
          return;
        }
        forward(req, res, world.reg.host);
      });
      return { proxy, tokens, tokenRequests };
    }

    test("token fetched with basic credentials, cached per scope for the whole pull", async (t) => {
      const { proxy, tokenRequests } = await tokenSetup(t);
      const store = await storeFor(t);
      const hosts = new RegistryHosts([{ host: proxy.host, insecure: true, auth: { username: "bob", password: "pw" } }]);
      const r = await pull(`${proxy.host}/test/multi:multi`, { store, hosts });
      assert.equal(r.manifest.digest, world.amd64.manifestDigest);
      assert.equal(tokenRequests.length, 1, "one token for HEAD, GETs and blobs");
      assert.equal(tokenRequests[0]!.searchParams.get("service"), "test-registry");
      assert.equal(tokenRequests[0]!.searchParams.get("scope"), "repository:test/multi:pull");
    });

    test("token expiry: a new token is fetched after expires_in", async (t) => {
      const { proxy, tokenRequests } = await tokenSetup(t);
      let now = 1_000_000;
      const auth = new Authorizer({ now: () => now });
      const ep: Endpoint = { host: proxy.host, baseUrl: `http://${proxy.host}`, mirror: false, auth: { username: "bob", password: "pw" } };
      const path1 = `/v2/test/one/manifests/v1`;
      const get = async () => {
        const res = await auth.fetch(ep, "test/one", path1, { method: "HEAD", headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
        res.body.resume();
        return res.status;
      };
      assert.equal(await get(), 200);
      assert.equal(await get(), 200);
      assert.equal(tokenRequests.length, 1);
      now += 301_000;
      assert.equal(await get(), 200);
      assert.equal(tokenRequests.length, 2);
    });

    test("wrong credentials → unauthorized naming registry and repository", async (t) => {
      const { proxy } = await tokenSetup(t);
      const store = await storeFor(t);
      const hosts = new RegistryHosts([{ host: proxy.host, insecure: true, auth: { username: "bob", password: "nope" } }]);
      await assert.rejects(pull(`${proxy.host}/test/one:v1`, { store, hosts }), (err: Error) => {
        assert.equal(codeOf(err), ErrorCode.FailedPrecondition);
        assert.match(err.message, /^unauthorized: registry 127\.0\.0\.1:\d+ repository test\/one/);
        return true;
      });
      assert.deepEqual(await store.list(), []);
    });
  });
});

test("parseWwwAuthenticate", () => {
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm"'), [{ scheme: "basic", params: { realm: "Registry Realm" } }]);
});
