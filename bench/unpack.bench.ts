/**
 * Layer unpack throughput: skiff's unpackLayer (validating parser + GNU tar + whiteout pass)
 * against plain `tar -x` of the same layer, uncompressed, gzip and zstd. The layer (~100 MB) has
 * 20,000 small files in 200 directories plus 3 files of 10 MB. Prints a table; asserts nothing.
 *
 *   node --import tsx bench/unpack.bench.ts [runs=3]
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { runChecked } from "../src/util/exec.js";
import { TAR_ARGS, unpackLayer } from "../src/unpack/unpack.js";

const RUNS = Number(process.argv[2] ?? 3);
const work = await mkdtemp(path.join(tmpdir(), "skiff-bench-unpack-"));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timed(fn: (dest: string) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dest = path.join(work, `dest-${i}`);
    await mkdir(dest);
    await runChecked("sync", []);
    const t0 = process.hrtime.bigint();
    await fn(dest);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await rm(dest, { recursive: true, force: true });
  }
  return median(times);
}

try {
  // Generate the tree: half-compressible content (random bytes repeated), as real layers are.
  const src = path.join(work, "src");
  const seed = randomBytes(64 * 1024);
  for (let d = 0; d < 200; d++) {
    const dir = path.join(src, "usr/share", `pkg${d}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(
      Array.from({ length: 100 }, (_, f) => {
        const len = 1024 + (((d * 100 + f) * 977) % 512) * 2; // even, 1-2 KiB
        const off = (d * 131 + f * 17) % (seed.length - len);
        return writeFile(path.join(dir, `file${f}.txt`), Buffer.concat([seed.subarray(off, off + len / 2), Buffer.alloc(len / 2, f)]));
      }),
    );
  }
  await mkdir(path.join(src, "opt/big"), { recursive: true });
  for (let i = 0; i < 3; i++) {
    const chunk = Buffer.concat([randomBytes(512 * 1024), Buffer.alloc(512 * 1024, i)]);
    await writeFile(path.join(src, "opt/big", `blob${i}`), Buffer.concat(Array.from({ length: 10 }, () => chunk)));
  }
  const tarFile = path.join(work, "layer.tar");
  await runChecked("tar", ["-c", "--xattrs", "--numeric-owner", "-C", src, "-f", tarFile, "."]);
  await runChecked("sh", ["-c", `gzip -6 -c '${tarFile}' > '${tarFile}.gz' && zstd -q -3 -c '${tarFile}' > '${tarFile}.zst'`]);
  await rm(src, { recursive: true, force: true });
  const size = (await stat(tarFile)).size;
  const mb = size / 1e6;

  const rows: [string, number][] = [];
  const tarX = (file: string, extra: string[]) => (dest: string) =>
    runChecked("tar", [...TAR_ARGS, ...extra, "-C", dest, "-f", file]);
  rows.push(["skiff unpackLayer  (tar)", await timed((d) => unpackLayer(tarFile, d, { compression: "none" }))]);
  rows.push(["plain tar -x       (tar)", await timed(tarX(tarFile, []))]);
  rows.push(["skiff unpackLayer  (gzip)", await timed((d) => unpackLayer(`${tarFile}.gz`, d, { compression: "gzip" }))]);
  rows.push(["plain tar -xz      (gzip)", await timed(tarX(`${tarFile}.gz`, ["-z"]))]);
  rows.push(["skiff unpackLayer  (zstd)", await timed((d) => unpackLayer(`${tarFile}.zst`, d, { compression: "zstd" }))]);
  rows.push(["plain tar --zstd   (zstd)", await timed(tarX(`${tarFile}.zst`, ["--zstd"]))]);

  console.log(`\nlayer: ${mb.toFixed(1)} MB uncompressed, 20,003 files; median of ${RUNS} runs\n`);
  console.log("| method                    |   ms   |  MB/s  | vs tar |");
  console.log("|---------------------------|--------|--------|--------|");
  for (let i = 0; i < rows.length; i++) {
    const [name, ms] = rows[i]!;
    const base = rows[i % 2 === 0 ? i + 1 : i]![1];
    console.log(`| ${name.padEnd(25)} | ${ms.toFixed(0).padStart(6)} | ${(mb / (ms / 1000)).toFixed(0).padStart(6)} | ${(ms / base).toFixed(2).padStart(5)}x |`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
