import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, link, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { describe, test, type TestContext } from "node:test";
import { gzipSync } from "node:zlib";
import { ErrorCode, codeOf, isFailedPrecondition, isInvalidArgument, isNotFound } from "../errors.js";
import { run, runChecked } from "../util/exec.js";
import { makeTar, type TarSpec } from "./tar-writer.js";
import { unpackLayer } from "./unpack.js";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** base/{dest (empty), sentinel/keep}: hostile layers must leave sentinel exactly as it is. */
async function layout(t: TestContext) {
  const base = await mkdtemp(path.join(tmpdir(), "skiff-unpack-"));
  t.after(() => rm(base, { recursive: true, force: true }));
  const dest = path.join(base, "dest");
  const sentinel = path.join(base, "sentinel");
  await mkdir(dest);
  await mkdir(sentinel);
  await writeFile(path.join(sentinel, "keep"), "original");
  return { base, dest, sentinel };
}

async function untouched(l: { base: string; dest: string; sentinel: string }) {
  assert.deepEqual(await readdir(l.dest), [], "dest is left empty");
  assert.deepEqual((await readdir(l.base)).sort(), ["dest", "sentinel"], "nothing new next to dest");
  assert.deepEqual(await readdir(l.sentinel), ["keep"], "nothing written into the sentinel");
  assert.equal(await readFile(path.join(l.sentinel, "keep"), "utf8"), "original");
}

async function getfattr(p: string, name: string): Promise<string | undefined> {
  const r = await run("getfattr", ["-h", "-n", name, "--only-values", p]);
  return r.code === 0 ? r.stdout.toString() : undefined;
}

/** A tree with every kind of thing a layer must preserve, archived by GNU tar. */
async function richLayer(t: TestContext): Promise<Buffer> {
  const src = await mkdtemp(path.join(tmpdir(), "skiff-layer-src-"));
  t.after(() => rm(src, { recursive: true, force: true }));
  await mkdir(path.join(src, "bin"));
  await writeFile(path.join(src, "bin/tool"), "#!/bin/sh\necho hi\n");
  await chmod(path.join(src, "bin/tool"), 0o4755);
  await link(path.join(src, "bin/tool"), path.join(src, "bin/tool-link"));
  await symlink("../bin/tool", path.join(src, "bin/sym"));
  await writeFile(path.join(src, "data"), Buffer.alloc(300_000, 3));
  await runChecked("setfattr", ["-n", "user.test", "-v", "hello", path.join(src, "data")]);
  await mkdir(path.join(src, "home/app"), { recursive: true });
  await runChecked("chown", ["1000:2000", path.join(src, "home/app")]);
  await chmod(path.join(src, "home/app"), 0o700);
  await mkdir(path.join(src, "dev"));
  await runChecked("mknod", [path.join(src, "dev/null"), "c", "1", "3"]);
  await runChecked("mknod", [path.join(src, "dev/loop9"), "b", "7", "9"]);
  await runChecked("mkfifo", [path.join(src, "dev/fifo")]);
  const r = await runChecked("tar", ["-c", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", src, "-f", "-", "."], {
    maxOutput: 64 << 20,
  });
  return r.stdout;
}

async function checkRich(dest: string) {
  const tool = await stat(path.join(dest, "bin/tool"));
  assert.equal(tool.mode & 0o7777, 0o4755, "setuid bit kept");
  assert.equal(tool.nlink, 2);
  assert.equal((await stat(path.join(dest, "bin/tool-link"))).ino, tool.ino, "hard link kept");
  assert.equal(await readlink(path.join(dest, "bin/sym")), "../bin/tool");
  assert.equal(await getfattr(path.join(dest, "data"), "user.test"), "hello", "xattr kept");
  const home = await stat(path.join(dest, "home/app"));
  assert.deepEqual([home.uid, home.gid, home.mode & 0o777], [1000, 2000, 0o700]);
  const nul = await lstat(path.join(dest, "dev/null"));
  assert.ok(nul.isCharacterDevice());
  assert.equal(nul.rdev, 259); // makedev(1, 3)
  assert.ok((await lstat(path.join(dest, "dev/loop9"))).isBlockDevice());
  assert.ok((await lstat(path.join(dest, "dev/fifo"))).isFIFO());
}

describe("unpackLayer", () => {
  for (const [compression, encode] of [
    ["none", async (b: Buffer) => b],
    ["gzip", async (b: Buffer) => gzipSync(b)],
    ["zstd", async (b: Buffer) => (await runChecked("zstd", ["-c", "-q"], { input: b, maxOutput: 64 << 20 })).stdout],
  ] as const) {
    test(`${compression} layer (auto-detected): everything preserved, diffID of the tar`, async (t) => {
      const tar = await richLayer(t);
      const l = await layout(t);
      const res = await unpackLayer(Readable.from([await encode(tar)]), l.dest, { compression: "auto" });
      assert.equal(res.compression, compression);
      assert.equal(res.diffId, sha(tar));
      assert.equal(res.size, tar.length);
      await checkRich(l.dest);
    });
  }

  test("from a file path, with an explicit compression and expected diffID", async (t) => {
    const tar = makeTar([{ name: "f", data: "x" }]);
    const l = await layout(t);
    const file = path.join(l.base, "layer.tar.gz");
    await writeFile(file, gzipSync(tar));
    const res = await unpackLayer(file, l.dest, { compression: "gzip", expectedDiffId: sha(tar) });
    assert.equal(res.entries, 1);
    await rm(file);
  });

  for (const format of ["gnu", "posix"]) {
    test(`sparse files (${format} format, many segments) unpack at full size; the cap counts the real size`, async (t) => {
      const l = await layout(t);
      const src = path.join(l.base, "src");
      await mkdir(src);
      const file = path.join(src, "sparse");
      const fh = await open(file, "w");
      for (let i = 0; i < 30; i++) await fh.write(Buffer.from(`seg${i}`), 0, 4 + String(i).length - 1, i * 1024 * 1024);
      await fh.truncate(64 * 1024 * 1024);
      await fh.close();
      const tar = (await runChecked("tar", ["-c", "-S", `--format=${format}`, "-C", src, "-f", "-", "sparse"], { maxOutput: 64 << 20 })).stdout;
      await rm(src, { recursive: true });
      assert.ok(tar.length < 1024 * 1024, "archived sparse");
      const res = await unpackLayer(Readable.from([tar]), l.dest);
      assert.equal(res.diffId, sha(tar));
      const st = await stat(path.join(l.dest, "sparse"));
      assert.equal(st.size, 64 * 1024 * 1024);
      const fd = await open(path.join(l.dest, "sparse"), "r");
      const buf = Buffer.alloc(5);
      await fd.read(buf, 0, 5, 29 * 1024 * 1024);
      await fd.close();
      assert.equal(buf.toString(), "seg29");
      await rm(path.join(l.dest, "sparse"));
      const err = await unpackLayer(Readable.from([tar]), l.dest, { maxSize: 32 * 1024 * 1024 }).catch((e: unknown) => e);
      assert.ok(isInvalidArgument(err), String(err));
      assert.match((err as Error).message, /limit/);
      await untouched(l);
    });
  }

  test("absolute member names are neutralised into dest", async (t) => {
    const l = await layout(t);
    await unpackLayer(Readable.from([makeTar([{ name: "/abs/file", data: "in dest" }])]), l.dest);
    assert.equal(await readFile(path.join(l.dest, "abs/file"), "utf8"), "in dest");
  });

  test("converts whiteouts to overlay form and drops aufs metadata", async (t) => {
    const l = await layout(t);
    const tar = makeTar([
      { name: "a/", type: "dir" },
      { name: "a/.wh.x", data: "" },
      { name: ".wh.top", data: "" },
      { name: "d/", type: "dir" },
      { name: "d/.wh..wh..opq", data: "" },
      { name: "d/y", data: "new" },
      { name: ".wh..wh.plnk/", type: "dir" },
      { name: ".wh..wh.plnk/1.2", data: "" },
    ]);
    await unpackLayer(Readable.from([tar]), l.dest);
    for (const p of ["a/x", "top"]) {
      const st = await lstat(path.join(l.dest, p));
      assert.ok(st.isCharacterDevice() && st.rdev === 0, `${p} is a 0:0 whiteout`);
    }
    assert.equal(await getfattr(path.join(l.dest, "d"), "trusted.overlay.opaque"), "y");
    assert.deepEqual((await readdir(l.dest)).sort(), ["a", "d", "top"]);
    assert.deepEqual(await readdir(path.join(l.dest, "a")), ["x"]);
    assert.deepEqual(await readdir(path.join(l.dest, "d")), ["y"]);
  });

  const pre: TarSpec[] = [
    { name: "ok/", type: "dir" },
    { name: "ok/file", data: Buffer.alloc(100_000, 1) },
  ];
  const hostile: [string, (l: { sentinel: string }) => TarSpec[], RegExp][] = [
    ["../ entry", () => [{ name: "../sentinel/pwned", data: "x" }], /"\.\.\/sentinel\/pwned"/],
    ["nested ../", () => [{ name: "ok/../../sentinel/pwned", data: "x" }], /\.\./],
    ["symlink, then a write through it", (l) => [{ name: "s", type: "symlink", linkname: l.sentinel }, { name: "s/pwned", data: "x" }], /"s\/pwned".*symlink/],
    ["relative symlink escape", () => [{ name: "up", type: "symlink", linkname: "../sentinel" }, { name: "up/pwned", data: "x" }], /symlink/],
    ["hard link to /etc/passwd", () => [{ name: "pw", type: "link", linkname: "/etc/passwd" }], /"pw".*absolute/],
    ["hard link to ../x", () => [{ name: "x", type: "link", linkname: "../sentinel/keep" }], /\.\./],
    ["whiteout naming ..", () => [{ name: "ok/.wh...", data: "" }], /whiteout/],
    ["huge size claim", () => [{ name: "big", size: 9 * 1024 ** 3 }], /"big".*limit/],
  ];
  for (const [what, specs, re] of hostile) {
    test(`rejects ${what}: InvalidArgument naming the entry, nothing written anywhere`, async (t) => {
      const l = await layout(t);
      const before = (await stat("/etc/passwd")).nlink;
      const tar = makeTar([...pre, ...specs(l)]);
      const err = await unpackLayer(Readable.from([gzipSync(tar)]), l.dest).catch((e: unknown) => e);
      assert.ok(isInvalidArgument(err), String(err));
      assert.match((err as Error).message, re);
      await untouched(l);
      assert.equal((await stat("/etc/passwd")).nlink, before);
    });
  }

  test("other failures leave dest empty too: corrupt gzip, diffID mismatch, abort", async (t) => {
    const l = await layout(t);
    const tar = makeTar(pre);
    const gz = gzipSync(tar);
    const corrupt = Buffer.concat([gz.subarray(0, gz.length - 30), Buffer.alloc(30, 0xaa)]);
    assert.ok(isInvalidArgument(await unpackLayer(Readable.from([corrupt]), l.dest).catch((e: unknown) => e)));
    await untouched(l);
    const wrong = sha(Buffer.from("other"));
    const err = await unpackLayer(Readable.from([gz]), l.dest, { expectedDiffId: wrong }).catch((e: unknown) => e);
    assert.ok(isInvalidArgument(err) && (err as Error).message.includes(wrong) && (err as Error).message.includes(sha(tar)));
    await untouched(l);
    const ac = new AbortController();
    async function* slow() {
      yield tar.subarray(0, 50_000);
      ac.abort();
      await new Promise((r) => setTimeout(r, 50));
      yield tar.subarray(50_000);
    }
    const aborted = await unpackLayer(Readable.from(slow()), l.dest, { signal: ac.signal }).catch((e: unknown) => e);
    assert.equal(codeOf(aborted), ErrorCode.Canceled);
    await untouched(l);
  });

  test("a failing source keeps its own error (zstd and gzip); corrupt zstd is InvalidArgument", async (t) => {
    const l = await layout(t);
    const tar = makeTar(pre);
    const zst = (await runChecked("zstd", ["-c", "-q"], { input: tar })).stdout;
    for (const data of [zst, gzipSync(tar)]) {
      async function* broken() {
        yield data.subarray(0, 40);
        throw new Error("connection reset");
      }
      const err = await unpackLayer(Readable.from(broken()), l.dest).catch((e: unknown) => e);
      assert.match(String(err), /connection reset/);
      assert.ok(!isInvalidArgument(err));
      await untouched(l);
    }
    const bad = Buffer.concat([zst.subarray(0, 20), Buffer.alloc(200, 0x55)]);
    const err = await unpackLayer(Readable.from([bad]), l.dest).catch((e: unknown) => e);
    assert.ok(isInvalidArgument(err), String(err));
    assert.match(String(err), /zstd/);
    await untouched(l);
  });

  test("dest must be an empty directory", async (t) => {
    const l = await layout(t);
    await assert.rejects(unpackLayer(Readable.from([makeTar([])]), l.sentinel), isFailedPrecondition);
    await assert.rejects(unpackLayer(Readable.from([makeTar([])]), path.join(l.base, "missing")), isFailedPrecondition);
    await assert.rejects(unpackLayer(path.join(l.base, "no-such-layer"), l.dest), isNotFound);
  });
});
