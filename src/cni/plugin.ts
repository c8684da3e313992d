/**
 * Runs one CNI plugin binary: the config on stdin, the CNI_* environment, the result or a
 * `{code, msg, details}` error on stdout. Every run is bounded by a timeout; on timeout or
 * cancel the plugin's whole process group is SIGKILLed (plugins spawn iptables, and a plugin
 * written as a script spawns everything), and the promise settles without waiting for
 * grandchildren that still hold the pipes.
 */
import { spawn } from "node:child_process";
import { activeSpawner, type Spawner } from "../util/spawner.js";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import * as path from "node:path";
import { deadlineExceeded, failedPrecondition, internal, SkiffError, unavailable } from "../errors.js";
import { abortError, linkedSignal } from "../util/signal.js";
import { CniErrorCode, type CniErrorResult, type CniResult } from "./types.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION";

export const DEFAULT_BIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin"];
export const DEFAULT_PLUGIN_TIMEOUT_MS = 30_000;

export interface InvokeOptions {
  command: CniCommand;
  /** The plugin's `type`: a binary name looked up in binDirs. */
  type: string;
  binDirs: string[];
  containerId: string;
  netnsPath: string;
  ifName: string;
  /** CNI_ARGS, joined as `K=V;K=V`. */
  args?: Record<string, string>;
  /** The network config for this plugin (with name, cniVersion, prevResult, runtimeConfig). */
  config: object;
  timeoutMs: number;
  /** The caller's signal (cancel); the timeout is added here. */
  signal?: AbortSignal;
  /** Who the run is for, e.g. "pod abc"; goes into every error message. */
  subject: string;
}

/** Finds `type` in the first of `binDirs` holding an executable of that name. */
export async function findPlugin(type: string, binDirs: string[]): Promise<string> {
  if (type.includes("/") || type === "" || type === "." || type === "..") {
    throw failedPrecondition(`cni: invalid plugin type ${JSON.stringify(type)}`);
  }
  for (const dir of binDirs) {
    const file = path.join(dir, type);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // try the next dir
    }
  }
  throw failedPrecondition(`cni: plugin ${JSON.stringify(type)} not found in ${binDirs.join(", ")}`);
}

interface Exit {
  code: number | null;
  sig: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function spawnBounded(file: string, env: NodeJS.ProcessEnv, input: string, signal: AbortSignal): Promise<Exit> {
  const sp = activeSpawner();
  if (sp) return spawnVia(sp, file, env, input, signal);
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const child = spawn(file, [], { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let errLen = 0;
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => {
      if (errLen < 64 << 10) err.push(b);
      errLen += b.length;
    });
    let settled = false;
    const onAbort = () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          child.kill("SIGKILL");
        }
      }
      child.stdout.destroy();
      child.stderr.destroy();
      if (!settled) {
        settled = true;
        reject(signal.reason);
      }
    };
    signal.addEventListener("abort", onAbort, { once: true });
    child.on("error", (e) => {
      signal.removeEventListener("abort", onAbort);
      if (!settled) {
        settled = true;
        reject(internal(`${file}: ${e.message}`, e));
      }
    });
    child.on("close", (code, sig) => {
      signal.removeEventListener("abort", onAbort);
      if (settled) return;
      settled = true;
      resolve({ code, sig, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on("error", () => {}); // the plugin may exit without reading its input
    child.stdin.end(input);
  });
}

/** spawnBounded through skiff-spawner: own session, the group killed on abort. */
function spawnVia(sp: Spawner, file: string, env: NodeJS.ProcessEnv, input: string, signal: AbortSignal): Promise<Exit> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const h = sp.run({ file, args: [], env, input, maxOutput: 16 << 20, session: true });
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      h.kill("SIGKILL");
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    h.done.then(
      (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve({ code: r.code, sig: r.signal, stdout: r.stdout.toString(), stderr: r.stderr.subarray(0, 64 << 10).toString() });
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Runs the plugin. Resolves with its result for ADD (and VERSION), undefined for DEL/CHECK.
 * Errors: DeadlineExceeded (timeout, naming the plugin), Canceled (caller's signal),
 * Unavailable (plugin said "try again later", code 11), Internal (any other plugin error,
 * with the plugin's msg), FailedPrecondition (plugin binary missing).
 */
export async function invokePlugin(opts: InvokeOptions): Promise<CniResult | undefined> {
  const file = await findPlugin(opts.type, opts.binDirs);
  const what = `cni plugin ${opts.type} ${opts.command} for ${opts.subject}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: opts.command,
    CNI_CONTAINERID: opts.containerId,
    CNI_NETNS: opts.netnsPath,
    CNI_IFNAME: opts.ifName,
    CNI_ARGS: Object.entries(opts.args ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(";"),
    CNI_PATH: opts.binDirs.join(path.delimiter),
  };
  const bound = linkedSignal([opts.signal], opts.timeoutMs);
  const signal = bound.signal;
  let exit: Exit;
  try {
    exit = await spawnBounded(file, env, JSON.stringify(opts.config), signal);
  } catch (err) {
    if (err instanceof SkiffError) throw err;
    const reason: unknown = signal.reason;
    if (reason instanceof Error && reason.name === "TimeoutError" && !opts.signal?.aborted) {
      throw deadlineExceeded(`${what}: no answer within ${opts.timeoutMs} ms (killed)`, err);
    }
    throw abortError(signal, what);
  } finally {
    bound.dispose();
  }
  const parsed = parseJson(exit.stdout);
  if (exit.code !== 0) {
    const e = parsed as Partial<CniErrorResult> | undefined;
    if (e && typeof e === "object" && typeof e.msg === "string") {
      const msg = `${what}: ${e.msg}${e.details ? ` (${e.details})` : ""} [code ${e.code}]`;
      throw e.code === CniErrorCode.TryAgainLater ? unavailable(msg) : internal(msg);
    }
    const why = exit.stderr.trim() || exit.stdout.trim() || "no output";
    throw internal(`${what}: exit ${exit.code ?? exit.sig}: ${why}`);
  }
  if (opts.command === "DEL" || opts.command === "CHECK") return undefined;
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw internal(`${what}: result is not a JSON object: ${exit.stdout.slice(0, 200)}`);
  }
  return parsed as CniResult;
}
