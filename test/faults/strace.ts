/**
 * umount2 delayed in a running shim with strace's syscall fault injection: the IO-pressure case
 * of containerd issues 7496/8931, where the shim's rootfs unmount stalls inside Delete.
 *
 * Attach once the shim's containers run: runc's own set-up unmounts (pivot_root, old root) would
 * take the stall otherwise. `-f` follows the runc children the shim forks later. Each handle owns
 * exactly one strace process and `detach()` stops only that one, by its pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { sleep } from "../../src/util/signal.js";

export interface Umount2Delay {
  /** The traced shim. */
  readonly target: number;
  /** The strace process (ours; nothing else is ever signalled). */
  readonly pid: number;
  /** strace's output: one line per traced umount2, injected ones marked `(DELAYED)`. */
  readonly log: string;
  /** How many umount2 calls strace delayed so far (read from its output). */
  delayed(): Promise<number>;
  /** Stops strace (SIGTERM: it detaches from every thread, a stall in progress ends). Idempotent. */
  detach(): Promise<void>;
}

export interface Umount2DelayOptions {
  /** Delay before each injected umount2 enters the kernel. */
  delayMs: number;
  /** strace `when=` expression: which umount2 calls to delay (default "1": only the first). */
  when?: string;
  /** Where strace writes its trace (default /dev/null, then `delayed()` always reads 0). */
  log?: string;
  /** How long to wait for strace to seize every thread (default 10 s). */
  attachTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Starts strace on `pid` (and the threads and children it will have) delaying umount2; resolves
 * once every current thread of `pid` is traced, so the fault is in place when this returns.
 * Throws if strace exits or does not attach in time (after stopping it).
 */
export async function delayUmount2(pid: number, opts: Umount2DelayOptions): Promise<Umount2Delay> {
  const log = opts.log ?? "/dev/null";
  const inject = `inject=umount2:delay_enter=${Math.round(opts.delayMs * 1000)}us:when=${opts.when ?? "1"}`;
  const child = spawn("strace", ["-f", "-qq", "-o", log, "-e", "trace=umount2", "-e", inject, "-p", String(pid)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", () => {});
  const handle = new Handle(pid, child, exited, log);
  try {
    const deadline = Date.now() + (opts.attachTimeoutMs ?? 10_000);
    for (;;) {
      opts.signal?.throwIfAborted();
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`strace -p ${pid} exited: ${stderr.trim()}`);
      if (child.pid !== undefined && (await allThreadsTracedBy(pid, child.pid))) return handle;
      if (Date.now() > deadline) throw new Error(`strace did not attach to ${pid} within ${opts.attachTimeoutMs ?? 10_000} ms`);
      await sleep(20);
    }
  } catch (err) {
    await handle.detach();
    throw err;
  }
}

class Handle implements Umount2Delay {
  #detaching: Promise<void> | undefined;
  constructor(
    readonly target: number,
    readonly child: ChildProcess,
    readonly exited: Promise<void>,
    readonly log: string,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  async delayed(): Promise<number> {
    if (this.log === "/dev/null") return 0;
    const text = await readFile(this.log, "utf8").catch(() => "");
    return text.split("\n").filter((l) => l.includes("(DELAYED)")).length;
  }

  detach(): Promise<void> {
    this.#detaching ??= (async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return;
      this.child.kill("SIGTERM");
      const gone = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!gone) {
        // The kernel detaches the tracees of a dead tracer; stalled calls then run on.
        this.child.kill("SIGKILL");
        await this.exited;
      }
    })();
    return this.#detaching;
  }
}

/** True when every thread of `pid` reports `tracer` as its TracerPid; false if `pid` is gone. */
export async function allThreadsTracedBy(pid: number, tracer: number): Promise<boolean> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  if (tids.length === 0) return false;
  for (const tid of tids) {
    const status = await readFile(`/proc/${pid}/task/${tid}/status`, "utf8").catch(() => "");
    const m = /^TracerPid:\s+(\d+)$/m.exec(status);
    if (!m || Number(m[1]) !== tracer) return false;
  }
  return true;
}
