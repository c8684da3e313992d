/**
 * Prints what skiff could leak on this host: `shims=N mounts=N netns=N runc=N cni-rules=N`.
 *
 *   node --import tsx scripts/leak-report.ts [--save FILE] [--since FILE]
 *
 * --save FILE   also write the full snapshot as JSON to FILE;
 * --since FILE  compare with a snapshot saved earlier: list everything that is new and still
 *               there, and exit 1 if there is anything.
 */
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { diffSnapshots, formatCounts, formatLeaks, isEmptyDiff, snapshotHost } from "../src/testing/leaks.js";
import type { HostSnapshot } from "../src/testing/leaks.js";

const { values } = parseArgs({
  options: { save: { type: "string" }, since: { type: "string" } },
  strict: true,
});

const now = await snapshotHost();
console.log(formatCounts(now));
if (values.save) await writeFile(values.save, JSON.stringify(now, null, 2) + "\n");
if (values.since) {
  const before = JSON.parse(await readFile(values.since, "utf8")) as HostSnapshot;
  const diff = diffSnapshots(before, now);
  if (!isEmptyDiff(diff)) {
    console.error(`leak report: left behind since ${before.takenAt}:\n${formatLeaks(diff, now)}`);
    process.exitCode = 1;
  }
}
