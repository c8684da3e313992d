/**
 * Runs a child process to completion without blocking the event loop.
 * The child is killed (SIGKILL) if `signal` aborts; the promise then rejects with the abort error.
 */
import { spawn } from "node:child_process";
import { abortError } from "./signal.js";
import { internal } from "../errors.js";
import { activeSpawner, type Spawner } from "./spawner.js";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Uint8Array | string;
  signal?: AbortSignal;
  /** Cap on captured stdout/stderr bytes each (default 4 MiB). */
  maxOutput?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  pid: number | undefined;
}

export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutput ?? 4 << 20;
  const sp = activeSpawner();
  if (sp) return runVia(sp, file, args, opts, max);
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(abortError(opts.signal, file));
      return;
    }
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on("data", (b: Buffer) => {
      if (outLen < max) out.push(b);
      outLen += b.length;
    });
    child.stderr.on("data", (b: Buffer) => {
      if (errLen < max) err.push(b);
      errLen += b.length;
    });
    const onAbort = () => child.kill("SIGKILL");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (e) => {
      opts.signal?.removeEventListener("abort", onAbort);
      reject(internal(`${file}: ${e.message}`, e));
    });
    child.on("close", (code, sig) => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (opts.signal?.aborted) {
        reject(abortError(opts.signal, file));
        return;
      }
      resolve({ code, signal: sig, stdout: Buffer.concat(out), stderr: Buffer.concat(err), pid: child.pid });
    });
    child.stdin.on("error", () => {}); // the child may exit without reading its input
    child.stdin.end(opts.input ?? "");
  });
}

/** run() through skiff-spawner (see util/spawner.ts): same results, no fork of the daemon. */
async function runVia(sp: Spawner, file: string, args: string[], opts: RunOptions, max: number): Promise<RunResult> {
  if (opts.signal?.aborted) throw abortError(opts.signal, file);
  const h = sp.run({ file, args, env: opts.env ?? process.env, cwd: opts.cwd, input: opts.input, maxOutput: max });
  const onAbort = () => h.kill("SIGKILL");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const r = await h.done;
    if (opts.signal?.aborted) throw abortError(opts.signal, file);
    return r;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/** Like run(), but a non-zero exit is an error carrying the command's stderr. */
export async function runChecked(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const res = await run(file, args, opts);
  if (res.code !== 0) {
    const why = res.stderr.toString().trim() || res.stdout.toString().trim() || `signal ${res.signal}`;
    throw internal(`${file} ${args.join(" ")}: exit ${res.code ?? res.signal}: ${why}`);
  }
  return res;
}
