/** The reliability table: one row per scenario and runtime, printed as Markdown. */
import assert from "node:assert/strict";
import type { ScenarioResult } from "./cri.js";

function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
}
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–");

/** `| scenario | runtime | N | leaked shims | other leftovers | exits exact | exit visible ms p50/max | StopPodSandbox ms p50/max | clean after ms | errors |` */
export function table(results: ScenarioResult[]): string {
  const head = [
    "Scenario",
    "Runtime",
    "N",
    "Faults injected",
    "Leaked shims",
    "Other leftovers",
    "Exit codes exact",
    "Exit visible ms (p50 / max)",
    "StopPodSandbox ms (p50 / max)",
    "Stop/Remove retries",
    "Clean after ms",
    "Errors",
  ];
  const rows = results.map((r) => [
    r.scenario + (r.seed !== undefined ? ` (seed ${r.seed})` : ""),
    r.runtime,
    String(r.count),
    String(r.faults),
    String(r.leakedShims),
    String(r.leftovers.length - r.leakedShims),
    `${r.exitsCorrect}/${r.exitsTotal}`,
    `${ms(q(r.exitVisibleMs, 0.5))} / ${ms(r.exitVisibleMs.length ? Math.max(...r.exitVisibleMs) : NaN)}`,
    `${ms(q(r.stopPodMs, 0.5))} / ${ms(r.stopPodMs.length ? Math.max(...r.stopPodMs) : NaN)}`,
    String(r.retries),
    ms(r.cleanMs),
    String(r.errors.length),
  ]);
  return [`| ${head.join(" | ")} |`, `| ${head.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/** The details behind a row: leftovers, wrong exits, errors and notes (first 20 of each). */
export function details(r: ScenarioResult): string {
  const lines = [`${r.scenario} on ${r.runtime}:`];
  for (const [k, xs] of [
    ["left", r.leftovers],
    ["wrong exit", r.exitErrors],
    ["error", r.errors],
    ["note", r.notes],
  ] as const) {
    for (const x of xs.slice(0, 20)) lines.push(`  ${k}: ${x}`);
    if (xs.length > 20) lines.push(`  … ${xs.length - 20} more ${k} lines`);
  }
  return lines.join("\n");
}

/**
 * A scenario's verdict: no error, zero leftovers, every exit exact, at least `minExits` exits
 * checked, and at least one fault injected per pod or lifecycle (fewer means it did not take).
 */
export function assertPerfect(r: ScenarioResult, minExits: number): void {
  const why = details(r);
  assert.deepEqual(r.errors, [], why);
  assert.deepEqual(r.leftovers, [], why);
  assert.deepEqual(r.exitErrors, [], why);
  assert.ok(r.exitsTotal >= minExits, `${r.exitsTotal} exits checked, want ≥ ${minExits}\n${why}`);
  assert.ok(r.faults >= r.count, `${r.faults} faults injected for ${r.count}\n${why}`);
  assert.equal(r.exitsCorrect, r.exitsTotal, why);
}
