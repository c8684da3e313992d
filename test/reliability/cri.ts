/**
 * CRI calls and bookkeeping shared by the reliability scenarios: calls with a deadline (kubelet
 * always sets one), exit polling that measures how late an exit became visible, and the result
 * record every scenario returns.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Reply } from "../integration/cri-client.js";
import { detailsOf } from "../integration/cri-client.js";
import { sleep } from "../../src/util/signal.js";

/** kubelet's default CRI request timeout. */
export const KUBELET_TIMEOUT_MS = 120_000;

/** A unary call with a deadline, like kubelet's (grpc-js takes call options after the request). */
export function callT(client: grpc.Client, method: string, req: object, timeoutMs = KUBELET_TIMEOUT_MS): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (client as any)[method](req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: Reply) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** "CODE: details" of a gRPC error, for reports. */
export function errText(err: unknown): string {
  const e = err as grpc.ServiceError;
  return e && typeof e.code === "number" ? `grpc ${e.code}: ${detailsOf(e)}` : String((err as Error)?.message ?? err);
}

/** What one scenario on one runtime found. */
export interface ScenarioResult {
  scenario: string;
  runtime: string;
  count: number;
  /** Seed of the random fault schedule (scenarios 3 and 4). */
  seed?: number;
  /** One line per leftover found after the scenario's teardown deadline. */
  leftovers: string[];
  /** Shims still alive at that point (a subset of `leftovers`, counted apart for the table). */
  leakedShims: number;
  exitsTotal: number;
  exitsCorrect: number;
  /** One line per container whose reported exit differs from the truth. */
  exitErrors: string[];
  /** Per container: ms from its finished_at until a ContainerStatus first showed EXITED. */
  exitVisibleMs: number[];
  /** Per pod: how long StopPodSandbox took (successful calls). */
  stopPodMs: number[];
  /** Faults actually injected (delayed calls, kills, failed/hung plugin calls, refused runs). */
  faults: number;
  /** Stop/RemovePodSandbox calls that failed and were retried (kubelet-style) before succeeding. */
  retries: number;
  /** From the last RemovePodSandbox to nothing left (NaN: never within the deadline). */
  cleanMs: number;
  /** RPC failures and fault-injection problems that invalidate or fail the run. */
  errors: string[];
  notes: string[];
}

export function newResult(scenario: string, runtime: string, count: number): ScenarioResult {
  return {
    scenario,
    runtime,
    count,
    leftovers: [],
    leakedShims: 0,
    exitsTotal: 0,
    exitsCorrect: 0,
    exitErrors: [],
    exitVisibleMs: [],
    stopPodMs: [],
    retries: 0,
    faults: 0,
    cleanMs: NaN,
    errors: [],
    notes: [],
  };
}

/** Records an observed exit against the truth (`want`: a code, or "nonzero" when unknowable). */
export function checkExit(r: ScenarioResult, what: string, status: Reply | undefined, want: number | "nonzero"): void {
  r.exitsTotal++;
  if (!status || status.state !== "CONTAINER_EXITED") {
    r.exitErrors.push(`${what}: state ${status?.state ?? "unknown"}, want EXITED with ${want}`);
    return;
  }
  const ok = want === "nonzero" ? status.exit_code !== 0 : status.exit_code === want;
  if (ok) r.exitsCorrect++;
  else r.exitErrors.push(`${what}: exit code ${status.exit_code} (${status.reason}: ${String(status.message).slice(0, 300)}), want ${want}`);
}

/**
 * Polls ContainerStatus until EXITED (or `timeoutMs`); returns the status and how long after the
 * recorded finish the exit became visible.
 */
export async function waitExited(
  runtime: () => grpc.Client,
  id: string,
  opts: { timeoutMs?: number; pollMs?: number } = {},
): Promise<{ status: Reply | undefined; visibleMs: number }> {
  const end = Date.now() + (opts.timeoutMs ?? 30_000);
  let status: Reply | undefined;
  for (;;) {
    try {
      status = (await callT(runtime(), "ContainerStatus", { container_id: id }, 10_000)).status;
    } catch {
      status = undefined; // a daemon being restarted: keep polling
    }
    if (status?.state === "CONTAINER_EXITED") {
      const finished = Number(BigInt(status.finished_at) / 1_000_000n);
      return { status, visibleMs: finished > 0 ? Date.now() - finished : NaN };
    }
    if (Date.now() > end) return { status, visibleMs: NaN };
    await sleep(opts.pollMs ?? 50);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The exit code of container `i`: distinct for i < 250, never 0 (a real exit is nonzero). */
export function codeFor(i: number): number {
  return 1 + (i % 250);
}
