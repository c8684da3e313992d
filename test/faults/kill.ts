/**
 * Process kills: the shims of one namespace, or a daemon at a chosen or random moment. Only the
 * pids named here are signalled (never by process name), and each kill waits until the process
 * is really gone, so what follows sees the fault complete.
 */
import { readdir, readFile } from "node:fs/promises";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { sleep } from "../../src/util/signal.js";
import type { Rng } from "./random.js";

export interface ShimInfo {
  pid: number;
  /** The shim's `-id` (skiff and containerd: the pod sandbox id, one shim per pod). */
  id: string;
}

/**
 * Live containerd-shim-runc-v2 processes whose command line has `flag value` (skiff's shims:
 * `-namespace NS`; a containerd's: `-address SOCKET`).
 */
export async function shimsBy(flag: "-namespace" | "-address", value: string): Promise<ShimInfo[]> {
  const out: ShimInfo[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const argv = await readFile(`/proc/${name}/cmdline`, "utf8").then((t) => t.split("\0"), () => [] as string[]);
    if (!argv[0]?.endsWith("containerd-shim-runc-v2")) continue;
    const i = argv.indexOf(flag);
    if (i < 0 || argv[i + 1] !== value) continue;
    const j = argv.indexOf("-id");
    out.push({ pid: Number(name), id: j >= 0 ? (argv[j + 1] ?? "") : "" });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** SIGKILLs `pid` and waits (up to `timeoutMs`) until it is gone; false if it was already gone. */
export async function killAndWait(pid: number, timeoutMs = 5000): Promise<boolean> {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return false;
  }
  if (!(await waitForExit(pid, timeoutMs))) throw new Error(`pid ${pid} still alive ${timeoutMs} ms after SIGKILL`);
  return true;
}

export interface KillShimsOptions {
  /** How many (default all), picked at random when `rng` is given, else the first by pid. */
  count?: number;
  rng?: Rng;
  /** Random pause before each kill, in ms ([0, maxGapMs], default 0). */
  maxGapMs?: number;
}

/** SIGKILLs shims of namespace `ns` and returns the killed ones, in kill order. */
export async function killShims(ns: string, opts: KillShimsOptions = {}): Promise<ShimInfo[]> {
  let shims = await shimsBy("-namespace", ns);
  if (opts.rng) shims = opts.rng.shuffle(shims);
  shims = shims.slice(0, opts.count ?? shims.length);
  const killed: ShimInfo[] = [];
  for (const s of shims) {
    if (opts.maxGapMs && opts.rng) await sleep(opts.rng.int(0, opts.maxGapMs));
    if (await killAndWait(s.pid)) killed.push(s);
  }
  return killed;
}

/** A kill scheduled for later; `done` resolves with whether it fired (false when cancelled). */
export interface ScheduledKill {
  readonly atMs: number;
  /** True once the timer fired (the signal may still be on its way). */
  readonly fired: boolean;
  readonly done: Promise<boolean>;
  cancel(): void;
}

/**
 * SIGKILLs `pid` after `atMs` (use `rng.int(0, max)` for a random point). Resolves `done` once
 * the process is gone. A process that exited on its own meanwhile is not signalled.
 */
export function killAfter(pid: number, atMs: number): ScheduledKill {
  let cancel = () => {};
  let fired = false;
  const done = new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => {
      fired = true;
      void (async () => ((await isAlive(pid)) ? killAndWait(pid, 10_000) : false))().then(resolve, reject);
    }, atMs);
    cancel = () => {
      clearTimeout(timer);
      resolve(false);
    };
  });
  return {
    atMs,
    done,
    cancel,
    get fired() {
      return fired;
    },
  };
}
