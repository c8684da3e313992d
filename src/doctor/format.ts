/** The human-readable form of a doctor report (`skiff doctor` without `-o json`). */
import type { DoctorReport } from "./types.js";

/** Multi-line text: one line per finding, its repair indented under it, a verdict last. */
export function formatReport(r: DoctorReport): string {
  const lines: string[] = [];
  const width = Math.max(0, ...r.findings.map((f) => f.kind.length));
  r.findings.forEach((f, i) => {
    lines.push(`${f.kind.padEnd(width)}  ${f.object}`);
    lines.push(`${" ".repeat(width)}  ${f.message}`);
    const rep = r.repairs.find((x) => x.kind === f.kind && x.object === f.object) ?? r.repairs[i];
    if (rep) lines.push(`${" ".repeat(width)}  -> ${rep.outcome}: ${rep.message}`);
  });
  if (r.findings.length === 0) {
    lines.push("no drift: the host matches skiff's records");
  } else if (r.repairs.length === 0) {
    lines.push(`${r.findings.length} finding(s); run with --repair to fix them`);
  } else {
    const left = r.repairs.filter((x) => x.outcome === "failed" || x.outcome === "manual").length;
    lines.push(left === 0 ? `${r.findings.length} finding(s), all repaired` : `${r.findings.length} finding(s), ${left} not repaired`);
  }
  return lines.join("\n");
}
