import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { configFromObject, defaultConfig, loadConfig } from "./config.js";
import { isInvalidArgument } from "./errors.js";
import { RegistryHosts } from "./registry/hosts.js";

test("defaults match the documented layout", () => {
  const c = defaultConfig();
  assert.equal(c.socket, "/run/skiff/skiff.sock");
  assert.equal(c.root, "/var/lib/skiff");
  assert.equal(c.runtimes.runc?.shim, "containerd-shim-runc-v2");
  assert.equal(c.teardown.maxBackoffMs, 300_000);
});

test("TOML overrides merge over defaults; new runtime handlers are added", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cfg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "c.toml");
  await writeFile(
    file,
    'root = "/tmp/x"\nnamespace = "k8s"\n[timeouts]\nshim_call_ms = 2500\n[runtimes.crun]\nbinary_name = "/usr/bin/crun"\n',
  );
  const c = await loadConfig(file);
  assert.equal(c.root, "/tmp/x");
  assert.equal(c.namespace, "k8s");
  assert.equal(c.timeouts.shimCallMs, 2500);
  assert.equal(c.timeouts.shimStartMs, 10_000, "untouched keys keep defaults");
  // runc_root merges over the default crun handler's where crun is installed (see config.ts).
  assert.deepEqual(c.runtimes.crun, { shim: "containerd-shim-runc-v2", binaryName: "/usr/bin/crun", runcRoot: defaultConfig().runtimes.crun?.runcRoot ?? "" });
});

test("bad configuration is refused with a message naming the key", async (t) => {
  assert.throws(() => configFromObject({ sokcet: "/x" }), (e: Error) => isInvalidArgument(e) && /sokcet/.test(e.message));
  assert.throws(() => configFromObject({ root: "relative" }), (e: Error) => isInvalidArgument(e) && /root/.test(e.message));
  assert.throws(() => configFromObject({ timeouts: { shim_call_ms: "soon" } }), (e: Error) => /shim_call_ms/.test(e.message));
  assert.throws(() => configFromObject({ default_runtime: "kata" }), (e: Error) => /kata/.test(e.message));
  assert.throws(() => configFromObject({ namespace: "a/b" }), (e: Error) => /namespace/.test(e.message));
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cfg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, "bad.toml"), "root = ");
  await assert.rejects(loadConfig(path.join(dir, "bad.toml")), (e: Error) => isInvalidArgument(e) && /not valid TOML/.test(e.message));
  await assert.rejects(loadConfig(path.join(dir, "missing.toml")), isInvalidArgument);
  assert.deepEqual(await loadConfig(path.join(dir, "missing.toml"), { optional: true }), defaultConfig());
});

test("[registry]: defaults, timeouts and per-host settings become RegistryHosts configs", async (t) => {
  const d = defaultConfig().registry;
  assert.deepEqual(d, { stallTimeoutMs: 60_000, concurrency: 3, hosts: [] });
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cfg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "c.toml");
  await writeFile(
    file,
    [
      "[registry]",
      "stall_timeout_ms = 5000",
      "concurrency = 5",
      '[registry.hosts."docker.io"]',
      'mirrors = ["127.0.0.1:5000", "mirror.example.com"]',
      'username = "u"',
      'password = "p"',
      '[registry.hosts."127.0.0.1:5000"]',
      "insecure = true",
      '[registry.hosts."mirror.example.com"]',
      `ca_file = ${JSON.stringify(path.join(dir, "mirror.pem"))}`,
      "",
    ].join("\n"),
  );
  await writeFile(path.join(dir, "mirror.pem"), "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
  const c = await loadConfig(file);
  assert.equal(c.registry.stallTimeoutMs, 5000);
  assert.equal(c.registry.concurrency, 5);
  assert.deepEqual(c.registry.hosts, [
    { host: "docker.io", mirrors: ["127.0.0.1:5000", "mirror.example.com"], auth: { username: "u", password: "p" } },
    { host: "127.0.0.1:5000", insecure: true },
    { host: "mirror.example.com", caFile: path.join(dir, "mirror.pem") },
  ]);
  const hosts = new RegistryHosts(c.registry.hosts);
  assert.deepEqual(
    hosts.endpoints("docker.io").map((e) => [e.baseUrl, e.mirror, e.auth?.username, e.ca !== undefined]),
    [
      ["http://127.0.0.1:5000", true, undefined, false],
      ["https://mirror.example.com", true, undefined, true],
      ["https://registry-1.docker.io", false, "u", false],
    ],
  );
  // Only [registry] keys given: the rest keep their defaults.
  assert.deepEqual(configFromObject({ registry: { concurrency: 1 } }).registry, { stallTimeoutMs: 60_000, concurrency: 1, hosts: [] });
});

test("bad [registry] settings are refused naming the key", () => {
  const bad = (registry: unknown, re: RegExp) =>
    assert.throws(() => configFromObject({ registry }), (e: Error) => isInvalidArgument(e) && re.test(e.message), String(re));
  bad({ stall_timeout: 5 }, /registry\.stall_timeout/);
  bad({ stall_timeout_ms: "1m" }, /stall_timeout_ms/);
  bad({ stall_timeout_ms: 0 }, /stall_timeout_ms/);
  bad({ concurrency: 0 }, /concurrency/);
  bad({ concurrency: 1.5 }, /concurrency/);
  bad("x", /registry must be a table/);
  bad({ hosts: { "r.io": { insecure: "yes" } } }, /registry\.hosts\."r\.io"\.insecure/);
  bad({ hosts: { "r.io": { mirror: ["m"] } } }, /unknown key "registry\.hosts\."r\.io"\.mirror"/);
  bad({ hosts: { "r.io": { mirrors: "m" } } }, /mirrors/);
  bad({ hosts: { "r.io": { mirrors: [1] } } }, /mirrors/);
  bad({ hosts: { "r.io": { username: "u" } } }, /username and password/);
  bad({ hosts: { "r.io": { ca_file: "rel.pem" } } }, /ca_file/);
  bad({ hosts: { "r.io": true } }, /must be a table/);
});

test("[streaming]: defaults, overrides, and bad values refused naming the key", () => {
  const def = defaultConfig().streaming;
  assert.equal(def.address, "127.0.0.1");
  assert.equal(def.port, 0);
  assert.equal(def.tokenTtlMs, 60_000);
  assert.equal(def.idleTimeoutMs, 4 * 3600_000);
  assert.equal(def.maxStreams, 100);
  assert.deepEqual([def.tlsCert, def.tlsKey], ["", ""]);
  const cfg = configFromObject({ streaming: { address: "0.0.0.0", port: 10010, max_streams: 5, tls_cert: "/c.pem", tls_key: "/k.pem" } });
  assert.deepEqual([cfg.streaming.address, cfg.streaming.port, cfg.streaming.maxStreams, cfg.streaming.tokenTtlMs], ["0.0.0.0", 10010, 5, 60_000]);
  const bad = (streaming: unknown, re: RegExp) =>
    assert.throws(() => configFromObject({ streaming }), (e: Error) => isInvalidArgument(e) && re.test(e.message), String(re));
  bad({ prot: 1 }, /unknown key "streaming\.prot"/);
  bad({ port: 70000 }, /streaming\.port/);
  bad({ port: "80" }, /streaming\.port/);
  bad({ token_ttl_ms: 0 }, /token_ttl_ms/);
  bad({ max_streams: 0 }, /max_streams/);
  bad({ address: "" }, /streaming\.address/);
  bad({ tls_cert: "/c.pem" }, /tls_cert and streaming\.tls_key/);
  bad(3, /streaming must be a table/);
});
