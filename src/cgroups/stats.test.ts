import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parseFlatKeyed, readCgroupStats, sumStats } from "./stats.js";
import { dirsOfPid, hostCgroupLayout, statsOfPid } from "./index.js";

async function fixture(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

test("v2: cpu.stat usage_usec in ns, working set = current - inactive_file, memory.max", async (t) => {
  const dir = await fixture(t, {
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    "memory.current": "10485760\n",
    "memory.max": "67108864\n",
    "memory.stat": "anon 4194304\nfile 6291456\ninactive_file 2097152\nactive_file 4194304\npgfault 42\npgmajfault 3\n",
    "pids.current": "2\n",
  });
  const s = await readCgroupStats({ version: 2, dir });
  assert.equal(s.cpuUsageNs, 1_500_000n);
  assert.deepEqual(s.memory, {
    usageBytes: 10485760n,
    workingSetBytes: 10485760n - 2097152n,
    limitBytes: 67108864n,
    rssBytes: 4194304n,
    pageFaults: 42n,
    majorPageFaults: 3n,
  });
  assert.equal(s.pids, 2n);
});

test("v2: memory.max 'max' is no limit; a vanished cgroup is empty stats", async (t) => {
  const dir = await fixture(t, { "memory.current": "100\n", "memory.max": "max\n", "memory.stat": "inactive_file 400\n" });
  const s = await readCgroupStats({ version: 2, dir });
  assert.equal(s.memory?.limitBytes, undefined);
  assert.equal(s.memory?.workingSetBytes, 0n, "never below zero");
  assert.equal(s.cpuUsageNs, undefined);
  assert.deepEqual(await readCgroupStats({ version: 2, dir: path.join(dir, "gone") }), {});
});

test("v1: cpuacct.usage, total_* memory.stat keys, unlimited limit dropped", async (t) => {
  const dir = await fixture(t, {
    "cpuacct/cpuacct.usage": "987654321\n",
    "memory/memory.usage_in_bytes": "8192000\n",
    "memory/memory.limit_in_bytes": "9223372036854771712\n",
    "memory/memory.stat": "cache 10\nrss 20\ninactive_file 1\ntotal_rss 4096000\ntotal_inactive_file 1024000\ntotal_pgfault 7\ntotal_pgmajfault 1\n",
  });
  const s = await readCgroupStats({ version: 1, cpuacct: path.join(dir, "cpuacct"), memory: path.join(dir, "memory") });
  assert.equal(s.cpuUsageNs, 987654321n);
  assert.equal(s.memory?.workingSetBytes, 8192000n - 1024000n);
  assert.equal(s.memory?.rssBytes, 4096000n);
  assert.equal(s.memory?.limitBytes, undefined);
  assert.equal(s.memory?.pageFaults, 7n);
  assert.equal(s.pids, undefined);
});

test("parseFlatKeyed skips malformed lines", () => {
  assert.deepEqual([...parseFlatKeyed("a 1\nb\nc x\n d  22 \n")], [["a", 1n], ["d", 22n]]);
});

test("sumStats adds counters and drops the limit", () => {
  const m = { usageBytes: 10n, workingSetBytes: 5n, limitBytes: 100n, rssBytes: 1n, pageFaults: 2n, majorPageFaults: 0n };
  const s = sumStats([{ cpuUsageNs: 3n, memory: m, pids: 1n }, { cpuUsageNs: 4n, memory: m }, {}]);
  assert.equal(s.cpuUsageNs, 7n);
  assert.equal(s.pids, 1n);
  assert.deepEqual(s.memory, { usageBytes: 20n, workingSetBytes: 10n, rssBytes: 2n, pageFaults: 4n, majorPageFaults: 0n });
});

test("this process's real cgroup (v1 here) has CPU time and memory", async () => {
  const layout = await hostCgroupLayout();
  const dirs = await dirsOfPid(layout, process.pid);
  assert.equal(dirs?.version, layout.version);
  const s = await statsOfPid(process.pid);
  assert.ok((s.cpuUsageNs ?? 0n) > 0n, `cpu usage ${s.cpuUsageNs}`);
  assert.ok((s.memory?.usageBytes ?? 0n) > 0n, "memory usage");
  assert.ok(s.memory!.workingSetBytes <= s.memory!.usageBytes);
  assert.deepEqual(await statsOfPid(2 ** 22 + 7), {});
});
