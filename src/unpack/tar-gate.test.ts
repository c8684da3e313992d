import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, test } from "node:test";
import { isInvalidArgument } from "../errors.js";
import { LayerGuard } from "./guard.js";
import { TarGate } from "./tar-gate.js";
import { entry, header, makeTar, type TarSpec } from "./tar-writer.js";

/** Runs `tar` through a gate in chunks of `chunk` bytes; returns what was forwarded. */
async function gate(tar: Buffer, opts: { chunk?: number; maxSize?: number } = {}) {
  const out = new PassThrough();
  const forwarded: Buffer[] = [];
  out.on("data", (b: Buffer) => forwarded.push(b));
  const guard = new LayerGuard({ maxSize: opts.maxSize });
  const g = new TarGate(guard, out);
  const size = opts.chunk ?? 7;
  const chunks = Array.from({ length: Math.ceil(tar.length / size) }, (_, i) => tar.subarray(i * size, (i + 1) * size));
  let error: unknown;
  await pipeline(Readable.from(chunks), g).catch((e: unknown) => (error = e));
  return { error, forwarded: Buffer.concat(forwarded), guard, gate: g };
}

const ok: TarSpec[] = [
  { name: "etc/", type: "dir" },
  { name: "etc/hostname", data: "skiff\n" },
  { name: "bin/sh", data: Buffer.alloc(1500, 1), mode: 0o4755 },
  { name: "bin/ash", type: "link", linkname: "bin/sh" },
  { name: "lib", type: "symlink", linkname: "/usr/lib" },
  { name: "dev/null", type: "char", devmajor: 1, devminor: 3 },
  { name: `deep/${"x".repeat(150)}/file`, data: "long pax name" },
  { name: `gnu/${"y".repeat(150)}`, data: "long gnu name", gnuLongName: true },
  { name: "run/fifo", type: "fifo" },
  { name: "a/.wh.gone", data: "" },
  { name: "d/.wh..wh..opq", data: "" },
];

describe("TarGate", () => {
  for (const chunk of [1, 7, 512, 65536]) {
    test(`forwards a valid archive unchanged and hashes it (chunks of ${chunk})`, async () => {
      const tar = makeTar(ok);
      const r = await gate(tar, { chunk });
      assert.equal(r.error, undefined);
      assert.deepEqual(r.forwarded, tar);
      assert.equal(r.gate.diffId, `sha256:${createHash("sha256").update(tar).digest("hex")}`);
      assert.equal(r.gate.size, tar.length);
      assert.equal(r.guard.entries, ok.length);
      assert.deepEqual(r.guard.whiteouts, ["a/.wh.gone"]);
      assert.deepEqual(r.guard.opaques, ["d"]);
    });
  }

  test("stops forwarding at the end marker but hashes trailing bytes", async () => {
    const tar = Buffer.concat([makeTar([{ name: "f", data: "x" }]), Buffer.alloc(4096), Buffer.from("junk")]);
    const r = await gate(tar);
    assert.equal(r.error, undefined);
    assert.equal(r.forwarded.length, 2 * 512 + 1024); // header, data block, two zero blocks
    assert.equal(r.gate.size, tar.length);
  });

  test("parses base-256 sizes and GNU long link names", async () => {
    const big = header({ name: "huge", typeflag: "0", size: 9 * 1024 ** 3 });
    assert.equal(big[124], 0x80);
    const r = await gate(Buffer.concat([big]), { maxSize: 10 * 1024 ** 3 });
    assert.match(String(r.error), /truncated/);
    const link = makeTar([
      { name: `t/${"z".repeat(120)}`, data: "target" },
      { name: "l", type: "link", linkname: `t/${"z".repeat(120)}`, gnuLongLink: true },
    ]);
    assert.equal((await gate(link)).error, undefined);
  });

  const hostile: [string, TarSpec[], RegExp][] = [
    ["dot-dot", [{ name: "../escape", data: "x" }], /\.\./],
    ["dot-dot inside", [{ name: "a/../../b", data: "x" }], /\.\./],
    ["dot-dot in a PAX path", [{ name: "innocent", data: "x", pax: { path: "x/../../evil" } }], /\.\./],
    ["dot-dot in a GNU long name", [{ name: `../${"q".repeat(120)}`, data: "x", gnuLongName: true }], /\.\./],
    ["write through a symlink", [{ name: "s", type: "symlink", linkname: "/" }, { name: "s/etc/x", data: "x" }], /symlink/],
    ["dir over a symlink", [{ name: "s", type: "symlink", linkname: "/etc" }, { name: "s", type: "dir" }], /symlink/],
    ["hard link to /etc/passwd", [{ name: "p", type: "link", linkname: "/etc/passwd" }], /absolute/],
    ["hard link to ../x", [{ name: "p", type: "link", linkname: "../x" }], /\.\./],
    ["hard link to a file not in the layer", [{ name: "p", type: "link", linkname: "etc/shadow" }], /not a file/],
    [
      "hard link to a symlink, then through it",
      [{ name: "s", type: "symlink", linkname: "/" }, { name: "h", type: "link", linkname: "s" }, { name: "h/x", data: "" }],
      /symlink/,
    ],
    ["whiteout of ..", [{ name: "a/.wh...", data: "" }], /whiteout/],
    ["huge size claim", [{ name: "big", size: 9 * 1024 ** 3 }], /limit/],
    ["unknown type", [{ name: "v", type: "V" }], /unsupported/],
    ["symlink claiming data", [{ name: "s", type: "symlink", linkname: "x", size: 512, data: Buffer.alloc(512) }], /header-only/],
    ["overlay xattr", [{ name: "f", data: "", pax: { "SCHILY.xattr.trusted.overlay.redirect": "/x" } }], /xattr/],
    ["file replacing a directory", [{ name: "d/f", data: "" }, { name: "d", data: "" }], /directory/],
  ];
  for (const [what, specs, re] of hostile) {
    test(`rejects ${what}; the bad header is never forwarded`, async () => {
      const good = entry({ name: "first", data: "ok" });
      const bad = makeTar(specs);
      const r = await gate(Buffer.concat([good, bad]));
      assert.ok(isInvalidArgument(r.error), String(r.error));
      assert.match((r.error as Error).message, re);
      assert.match((r.error as Error).message, /layer entry "/);
      const lastSpec = specs[specs.length - 1]!;
      const offending = entry(lastSpec);
      const before = makeTar(specs.slice(0, -1)).subarray(0, -1024);
      assert.ok(r.forwarded.length <= good.length + before.length, "nothing of the rejected entry reached tar");
      assert.equal(r.forwarded.indexOf(offending.subarray(offending.length - 512 - Math.ceil((lastSpec.data?.length ?? 0) / 512) * 512)), -1);
    });
  }

  test("bad checksums and truncated archives are InvalidArgument", async () => {
    const tar = makeTar([{ name: "f", data: "x" }]);
    tar[10] = 0x41;
    assert.match(String((await gate(tar)).error), /checksum/);
    const cut = makeTar([{ name: "f", data: Buffer.alloc(2000) }]).subarray(0, 1000);
    const r = await gate(cut);
    assert.ok(isInvalidArgument(r.error));
    assert.match(String(r.error), /truncated/);
  });
});
