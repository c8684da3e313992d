/**
 * The doctor: runs the drift check on demand (`skiff doctor`, through the debug API) and
 * periodically (the reconciler), optionally repairs what it finds, and keeps counters.
 *
 * Invariants:
 * - One check at a time: a periodic run and an RPC never interleave their repairs.
 * - A finding is repaired only if it is seen again in a second look at the host and, right
 *   before its repair, in freshly read records; anything that disappeared or gained an owner
 *   meanwhile is skipped.
 * - `close()` stops the timer and waits for a running check; idempotent.
 */
import type { Logger } from "../log.js";
import { nowRfc3339 } from "../util/time.js";
import { DEFAULT_BUNDLE_GRACE_MS, detectDrift } from "./detect.js";
import {
  FINDING_KINDS,
  findingKey,
  type DoctorReport,
  type Finding,
  type FindingKind,
  type HostState,
  type RecordState,
  type RepairOutcome,
  type RepairResult,
} from "./types.js";

export interface DoctorDeps {
  log: Logger;
  /** Reads the records (synchronous: one consistent view of the metadata). */
  records(): RecordState;
  host(signal?: AbortSignal): Promise<HostState>;
  repair(f: Finding, signal?: AbortSignal): Promise<RepairResult>;
  bundleGraceMs?: number;
}

export interface DoctorMetrics {
  /** Checks completed (on demand and periodic). */
  checks: number;
  /** Checks that failed to run (host or records unreadable). */
  checkErrors: number;
  /** Findings per kind, summed over every check. */
  findings: Record<FindingKind, number>;
  /** Repairs per outcome, summed over every check. */
  repairs: Record<RepairOutcome, number>;
  /** RFC 3339 time of the last completed check; "" before the first. */
  lastCheckAt: string;
  /** Findings of the last completed check. */
  lastFindings: number;
}

export interface PeriodicOptions {
  /** 0 = off. */
  intervalMs: number;
  repair: boolean;
}

const zeroFindings = (): Record<FindingKind, number> =>
  Object.fromEntries(FINDING_KINDS.map((k) => [k, 0])) as Record<FindingKind, number>;
const zeroRepairs = (): Record<RepairOutcome, number> => ({ repaired: 0, queued: 0, skipped: 0, manual: 0, failed: 0 });

const FIXED: ReadonlySet<RepairOutcome> = new Set(["repaired", "queued", "skipped"]);

export class Doctor {
  #tail: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #abort = new AbortController();
  readonly #metrics: DoctorMetrics = { checks: 0, checkErrors: 0, findings: zeroFindings(), repairs: zeroRepairs(), lastCheckAt: "", lastFindings: 0 };

  constructor(private readonly deps: DoctorDeps) {}

  /** Runs one check (after any check in progress), repairing when asked. */
  check(opts: { repair: boolean; signal?: AbortSignal }): Promise<DoctorReport> {
    const next = this.#tail.then(() => this.#check(opts));
    this.#tail = next.catch(() => {});
    return next;
  }

  async #check(opts: { repair: boolean; signal?: AbortSignal }): Promise<DoctorReport> {
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.#abort.signal]) : this.#abort.signal;
    const checkedAt = nowRfc3339();
    const detect = (host: HostState, records: RecordState) =>
      detectDrift(host, records, { bundleGraceMs: this.deps.bundleGraceMs ?? DEFAULT_BUNDLE_GRACE_MS });
    let findings: Finding[];
    try {
      findings = detect(await this.deps.host(signal), this.deps.records());
    } catch (err) {
      this.#metrics.checkErrors++;
      throw err;
    }
    for (const f of findings) this.deps.log.warn({ kind: f.kind, object: f.object }, `doctor: ${f.message}`);
    const repairs: RepairResult[] = [];
    if (opts.repair && findings.length > 0) {
      // A second look at the host: what was there only for a moment is nobody's leak.
      const host = await this.deps.host(signal);
      const order = (f: Finding) => FINDING_KINDS.indexOf(f.kind);
      for (const f of [...findings].sort((a, b) => order(a) - order(b))) {
        signal.throwIfAborted();
        const still = new Set(detect(host, this.deps.records()).map(findingKey));
        const r = still.has(findingKey(f))
          ? await this.deps.repair(f, signal)
          : { kind: f.kind, object: f.object, outcome: "skipped" as const, message: "no longer a drift at the recheck" };
        const level = FIXED.has(r.outcome) ? "info" : "error";
        this.deps.log[level]({ kind: r.kind, object: r.object, outcome: r.outcome }, `doctor repair: ${r.message}`);
        repairs.push(r);
      }
    }
    this.#count(findings, repairs, checkedAt);
    const clean = opts.repair ? repairs.every((r) => FIXED.has(r.outcome)) : findings.length === 0;
    return { checkedAt, findings, repairs, clean };
  }

  #count(findings: Finding[], repairs: RepairResult[], at: string): void {
    const m = this.#metrics;
    m.checks++;
    m.lastCheckAt = at;
    m.lastFindings = findings.length;
    for (const f of findings) m.findings[f.kind]++;
    for (const r of repairs) m.repairs[r.outcome]++;
  }

  /** A copy of the counters. */
  metrics(): DoctorMetrics {
    const m = this.#metrics;
    return { ...m, findings: { ...m.findings }, repairs: { ...m.repairs } };
  }

  /** Starts the reconciler: a check every `intervalMs` after the previous one ended (each check logs its findings and repairs). */
  startPeriodic(opts: PeriodicOptions): void {
    if (opts.intervalMs <= 0 || this.#closed || this.#timer) return;
    const { log } = this.deps;
    const tick = async () => {
      try {
        await this.check({ repair: opts.repair });
      } catch (err) {
        if (!this.#closed) log.error({ err: (err as Error).message }, "doctor: drift check failed");
      }
      if (!this.#closed) this.#arm(tick, opts.intervalMs);
    };
    this.#arm(tick, opts.intervalMs);
  }

  #arm(tick: () => Promise<void>, ms: number): void {
    this.#timer = setTimeout(() => void tick(), ms);
    this.#timer.unref(); // the reconciler never keeps the daemon alive on its own
  }

  async close(): Promise<void> {
    if (this.#closed) return this.#tail.then(() => undefined);
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#tail;
  }
}
