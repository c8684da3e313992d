/**
 * ttrpc micro-benchmark on a real unix socket, one connection, an echo handler.
 *   node --import tsx bench/ttrpc.bench.ts
 * Measures sequential round-trip latency (p50/p99) and throughput with 1 and 32 concurrent
 * callers. Each phase is time-bounded, so the whole run takes a few seconds.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TtrpcClient, TtrpcServer } from "../src/ttrpc/index.js";

const WARMUP_MS = 300;
const PHASE_MS = 1500;
const PAYLOAD = new Uint8Array(64).fill(1);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Runs `callers` loops of back-to-back calls for `ms`; returns per-call latencies in µs. */
async function run(client: TtrpcClient, callers: number, ms: number): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  const start = performance.now();
  const stopAt = start + ms;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < stopAt) {
        const t0 = performance.now();
        await client.call("bench.Echo", "Echo", PAYLOAD);
        latencies.push((performance.now() - t0) * 1000);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - start) / 1000 };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-ttrpc-bench-"));
  const server = new TtrpcServer();
  server.register("bench.Echo", "Echo", async (p) => p);
  const path = join(dir, "bench.sock");
  await server.listen(path);
  const client = await TtrpcClient.connect(path);
  try {
    await run(client, 8, WARMUP_MS);
    const rows: string[][] = [];
    for (const callers of [1, 32]) {
      const { latencies, seconds } = await run(client, callers, PHASE_MS);
      latencies.sort((a, b) => a - b);
      rows.push([
        String(callers),
        String(latencies.length),
        Math.round(latencies.length / seconds).toLocaleString("en-US"),
        percentile(latencies, 50).toFixed(1),
        percentile(latencies, 99).toFixed(1),
      ]);
    }
    const header = ["callers", "calls", "calls/s", "p50 µs", "p99 µs"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
    console.log(`ttrpc unary echo, ${PAYLOAD.length}-byte payload, one unix-socket connection, node ${process.version}`);
    console.log(line(header));
    for (const r of rows) console.log(line(r));
  } finally {
    client.destroy();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
