import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ErrorCode, codeOf } from "../errors.js";
import { defaultConflist, installDefaultConflist, loadConfList, parseConfList } from "./config.js";
import { netnsNameForPod, netnsPath } from "./netns.js";

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cni-conf-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("parseConfList rejects bad configs with InvalidArgument naming the file", () => {
  const cases: [string, RegExp][] = [
    ["{", /invalid JSON/],
    ["[]", /not a JSON object/],
    [`{"cniVersion":"1.0.0","name":"n","plugins":[]}`, /"plugins" must be a non-empty array/],
    [`{"cniVersion":1,"name":"n","plugins":[{"type":"bridge"}]}`, /"cniVersion"/],
    [`{"cniVersion":"1.0.0","name":"bad name","plugins":[{"type":"bridge"}]}`, /"name"/],
    [`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}`, /plugins\[0\]\.type/],
    [`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"portmap","capabilities":{"portMappings":"yes"}}]}`, /capabilities/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseConfList("/etc/cni/net.d/10-x.conflist", text),
      (err: unknown) => {
        assert.equal(codeOf(err), ErrorCode.InvalidArgument);
        assert.match((err as Error).message, /10-x\.conflist/);
        assert.match((err as Error).message, re);
        return true;
      },
      text,
    );
  }
});

test("a single-plugin .conf is lifted into a list", () => {
  const conf = parseConfList("a.conf", `{"cniVersion":"0.4.0","name":"n","type":"bridge","bridge":"br0"}`);
  assert.deepEqual(conf, { cniVersion: "0.4.0", name: "n", plugins: [{ type: "bridge", bridge: "br0" }] });
});

test("loadConfList takes the first valid file by name and skips invalid ones", async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, "05-broken.conflist"), "{");
  await writeFile(path.join(dir, "10-b.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "b", plugins: [{ type: "bridge" }] }));
  await writeFile(path.join(dir, "20-a.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "a", type: "bridge" }));
  await writeFile(path.join(dir, "00-ignored.txt"), "not a config");
  const loaded = await loadConfList(dir);
  assert.equal(loaded.file, path.join(dir, "10-b.conflist"));
  assert.equal(loaded.conf.name, "b");

  const empty = await tempDir(t);
  await writeFile(path.join(empty, "01-bad.conf"), "{}");
  await assert.rejects(loadConfList(empty), (err: unknown) => {
    assert.equal(codeOf(err), ErrorCode.FailedPrecondition);
    assert.match((err as Error).message, /01-bad\.conf/);
    return true;
  });
  await assert.rejects(loadConfList(path.join(empty, "missing")), (err: unknown) => codeOf(err) === ErrorCode.FailedPrecondition);
});

test("defaultConflist validates its options and chains bridge, host-local and portmap", () => {
  const c = defaultConflist({ subnet: "10.88.0.0/16", dataDir: "/tmp/x" });
  assert.equal(c.name, "skiff");
  assert.deepEqual(
    c.plugins.map((p) => p.type),
    ["bridge", "portmap"],
  );
  assert.deepEqual(c.plugins[0], {
    type: "bridge",
    bridge: "cni0",
    isGateway: true,
    ipMasq: true,
    hairpinMode: true,
    ipam: { type: "host-local", ranges: [[{ subnet: "10.88.0.0/16" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: "/tmp/x" },
  });
  assert.deepEqual(c.plugins[1]?.capabilities, { portMappings: true });
  for (const subnet of ["10.88.0.0", "10.88.0.0/33", "nope/8", "10.0.0.0/8/1"]) {
    assert.throws(() => defaultConflist({ subnet }), (err: unknown) => codeOf(err) === ErrorCode.InvalidArgument, subnet);
  }
  assert.throws(() => defaultConflist({ subnet: "10.0.0.0/8", bridge: "a-very-long-bridge-name" }), /bridge/);
  assert.equal(defaultConflist({ subnet: "fd00:1::/64" }).plugins[0]?.ipam !== undefined, true);
});

test("installDefaultConflist writes once, atomically, only into a dir without configs", async (t) => {
  const dir = path.join(await tempDir(t), "net.d");
  const file = await installDefaultConflist(dir, { subnet: "10.88.0.0/16" });
  assert.equal(file, path.join(dir, "10-skiff.conflist"));
  assert.deepEqual(await readdir(dir), ["10-skiff.conflist"]);
  assert.equal(parseConfList(file!, await readFile(file!, "utf8")).name, "skiff");
  assert.equal(await installDefaultConflist(dir, { subnet: "10.99.0.0/16" }), undefined);
});

test("netns names derive from the pod id", () => {
  assert.equal(netnsNameForPod("abc123"), "skiff-abc123");
  assert.equal(netnsPath("skiff-abc123"), "/var/run/netns/skiff-abc123");
  assert.throws(() => netnsNameForPod("../x"), (err: unknown) => codeOf(err) === ErrorCode.InvalidArgument);
  assert.throws(() => netnsPath("a b"), (err: unknown) => codeOf(err) === ErrorCode.InvalidArgument);
});
