/**
 * `[doctor]` settings: the periodic drift check (the reconciler) of skiffd. Parsed here and
 * embedded in the daemon's Config as `doctor`.
 */
import { invalidArgument } from "../errors.js";

export interface DoctorConfig {
  /** Period of the reconciler's drift check; 0 turns it off. */
  intervalMs: number;
  /**
   * Whether the reconciler repairs what it finds. Off by default: it reports (logs, metrics) and
   * an operator repairs with `skiff doctor --repair`; start-up recovery repairs on every start.
   */
  repair: boolean;
  /** Bundle directories younger than this are not reported (a task create may be in flight). */
  bundleGraceMs: number;
}

export function defaultDoctorConfig(): DoctorConfig {
  return { intervalMs: 5 * 60 * 1000, repair: false, bundleGraceMs: 60_000 };
}

const KEYS = ["interval_ms", "repair", "bundle_grace_ms"];

/** Merges a `[doctor]` table over `base`; unknown keys and wrong types are InvalidArgument. */
export function doctorFromObject(raw: unknown, base: DoctorConfig): DoctorConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw invalidArgument("config: doctor must be a table");
  const t = raw as Record<string, unknown>;
  for (const k of Object.keys(t)) if (!KEYS.includes(k)) throw invalidArgument(`config: unknown key "doctor.${k}"`);
  const out = { ...base };
  const ms = (key: string, fallback: number): number => {
    const v = t[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw invalidArgument(`config: doctor.${key} must be a non-negative integer (ms), got ${JSON.stringify(v)}`);
    }
    return v;
  };
  out.intervalMs = ms("interval_ms", base.intervalMs);
  out.bundleGraceMs = ms("bundle_grace_ms", base.bundleGraceMs);
  if (t.repair !== undefined) {
    if (typeof t.repair !== "boolean") throw invalidArgument("config: doctor.repair must be a boolean");
    out.repair = t.repair;
  }
  return out;
}
