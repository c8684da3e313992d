import { test } from "node:test";
import assert from "node:assert/strict";
import { ago, humanSize, parseOutputFormat, renderData, shortId, splitRepoTag, table } from "./format.js";
import { parseYaml } from "./yaml.js";

test("table: aligned columns, header first, no trailing blanks", () => {
  const out = table(["CONTAINER", "STATE", "NAME"], [["0123456789abc", "Running", "web"], ["f", "Exited", "a-long-name"]]);
  assert.equal(
    out,
    ["CONTAINER       STATE     NAME", "0123456789abc   Running   web", "f               Exited    a-long-name", ""].join("\n"),
  );
  assert.equal(table(["A", "B"], []), "A   B\n");
});

test("ids are cut to 13 characters, image digests without their algorithm", () => {
  assert.equal(shortId("0123456789abcdef0123"), "0123456789abc");
  assert.equal(shortId("sha256:fedcba9876543210"), "fedcba9876543");
  assert.equal(shortId("short"), "short");
});

test("ago: Docker-style relative times", () => {
  const now = 1_700_000_000_000;
  const at = (msBefore: number) => BigInt(now - msBefore) * 1_000_000n;
  assert.equal(ago(at(300), now), "Less than a second ago");
  assert.equal(ago(at(1000), now), "1 second ago");
  assert.equal(ago(at(42_000), now), "42 seconds ago");
  assert.equal(ago(at(90_000), now), "About a minute ago");
  assert.equal(ago(at(5 * 60_000), now), "5 minutes ago");
  assert.equal(ago(at(3 * 3600_000), now), "3 hours ago");
  assert.equal(ago(at(3 * 86400_000), now), "3 days ago");
  assert.equal(ago(0n, now), "Unknown");
});

test("sizes, image references, output formats", () => {
  assert.equal(humanSize(999), "999B");
  assert.equal(humanSize(4_263_000), "4.26MB");
  assert.equal(humanSize(1_000_000_000n), "1GB");
  assert.deepEqual(splitRepoTag("docker.io/library/busybox:latest"), ["docker.io/library/busybox", "latest"]);
  assert.deepEqual(splitRepoTag("localhost:5000/app"), ["localhost:5000/app", "<none>"]);
  assert.deepEqual(splitRepoTag("busybox@sha256:ab"), ["busybox", "<none>"]);
  assert.equal(parseOutputFormat(undefined), "table");
  assert.throws(() => parseOutputFormat("xml"), /output format "xml": use one of table, json, yaml/);
  const data = { id: "x", size: 5n, list: [{ a: 1 }] };
  assert.deepEqual(JSON.parse(renderData("json", data)), { id: "x", size: "5", list: [{ a: 1 }] });
  assert.deepEqual(parseYaml(renderData("yaml", data)), { id: "x", size: "5", list: [{ a: 1 }] });
});
