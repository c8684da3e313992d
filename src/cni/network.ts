/**
 * A pod network: one conflist (bridge + IPAM + portmap, or whatever the admin installed) plus the
 * separate loopback list, invoked through the CNI plugins.
 *
 * Invariants:
 * - setUp either returns with every plugin added, or throws after DEL has been run (under fresh
 *   timeouts, not the caller's signal) for every plugin it ran, in reverse order.
 * - tearDown is idempotent: DEL of something already gone is success. It runs DEL for every
 *   plugin even if one fails, then throws the first failure so the caller retries.
 * - The ADD result is kept (in memory, and in `cacheDir` when given) so DEL and CHECK get it as
 *   `prevResult`, as the spec asks. Callers serialize setUp/tearDown/check per pod id.
 */
import { access, mkdir, readFile, rm } from "node:fs/promises";
import * as path from "node:path";
import { errnoCode, writeFileAtomic } from "../content/fs-atomic.js";
import { failedPrecondition, SkiffError, toSkiffError } from "../errors.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { loadConfList, loopbackConflist } from "./config.js";
import { type CniCommand, DEFAULT_BIN_DIRS, DEFAULT_PLUGIN_TIMEOUT_MS, invokePlugin } from "./plugin.js";
import type { CniConfList, CniInterface, CniResult, CniRoute, PortMapping } from "./types.js";

export interface CniNetworkOptions {
  conf: CniConfList;
  /** Where plugin binaries are looked up, in order (default /usr/lib/cni, /opt/cni/bin). */
  binDirs?: string[];
  /** Bound on each single plugin run (default 30 s). */
  pluginTimeoutMs?: number;
  /** The pod's interface (default "eth0"). */
  ifName?: string;
  /** Bring `lo` up with the loopback plugin (default true). */
  loopback?: boolean;
  /** Directory for ADD results, so DEL/CHECK after a daemon restart get `prevResult`. */
  cacheDir?: string;
  logger?: Logger;
}

export interface SetUpOptions {
  portMappings?: PortMapping[];
  /** Extra CNI_ARGS (e.g. K8S_POD_NAMESPACE, K8S_POD_NAME); IgnoreUnknown=1 is always sent. */
  args?: Record<string, string>;
  signal?: AbortSignal;
}

export interface TearDownOptions {
  portMappings?: PortMapping[];
  args?: Record<string, string>;
  signal?: AbortSignal;
}

export interface PodNetworkStatus {
  interfaces: CniInterface[];
  /** The pod interface's addresses without prefix length, in result order. */
  ips: string[];
  routes: CniRoute[];
  /** The chain's final result as the plugins printed it. */
  result: CniResult;
}

interface RuntimeValues {
  portMappings?: PortMapping[];
}

/** What setUp keeps per pod: DEL needs both (portmap deletes nothing without its mappings). */
interface CachedAttachment {
  result: CniResult;
  runtime: RuntimeValues;
}

export class CniNetwork {
  readonly conf: CniConfList;
  readonly binDirs: string[];
  readonly pluginTimeoutMs: number;
  readonly ifName: string;
  readonly #loopback: CniConfList | undefined;
  readonly #cacheDir: string | undefined;
  readonly #log: Logger;
  readonly #attachments = new Map<string, CachedAttachment>();

  constructor(opts: CniNetworkOptions) {
    this.conf = opts.conf;
    this.binDirs = opts.binDirs ?? DEFAULT_BIN_DIRS;
    this.pluginTimeoutMs = opts.pluginTimeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
    this.ifName = opts.ifName ?? "eth0";
    this.#loopback = opts.loopback === false ? undefined : loopbackConflist(opts.conf.cniVersion);
    this.#cacheDir = opts.cacheDir;
    this.#log = opts.logger ?? silentLogger;
  }

  /** A network from the first valid config in `confDir` (see loadConfList). */
  static async load(confDir: string, opts: Omit<CniNetworkOptions, "conf"> = {}): Promise<CniNetwork> {
    const { conf } = await loadConfList(confDir);
    return new CniNetwork({ ...opts, conf });
  }

  /** Adds the pod to the network: loopback first, then the chain. See the class invariants. */
  async setUp(podId: string, netnsPath: string, opts: SetUpOptions = {}): Promise<PodNetworkStatus> {
    const rt: RuntimeValues = { portMappings: opts.portMappings };
    const args = cniArgs(opts.args);
    const undo: (() => Promise<void>)[] = [];
    try {
      // The loopback list and the chain are independent: they run side by side. Each keeps its
      // own order (and undo order); both settle before a failure is unwound.
      const [lo, chain] = await Promise.allSettled([
        this.#loopback ? this.#add(this.#loopback, podId, netnsPath, "lo", rt, args, opts.signal, undo) : undefined,
        this.#add(this.conf, podId, netnsPath, this.ifName, rt, args, opts.signal, undo),
      ]);
      if (lo.status === "rejected") throw lo.reason;
      if (chain.status === "rejected") throw chain.reason;
      const result = chain.value;
      await this.#save(podId, { result, runtime: rt });
      return toStatus(result, this.ifName);
    } catch (err) {
      const failures: string[] = [];
      for (const fn of undo.reverse()) {
        try {
          await fn();
        } catch (e) {
          failures.push(toSkiffError(e).message);
        }
      }
      const e = toSkiffError(err);
      this.#log.warn({ podId, err: e.message, rollbackFailures: failures }, "cni setUp failed, rolled back");
      if (failures.length === 0) throw e;
      throw new SkiffError(e.code, `${e.message}; rollback: ${failures.join("; ")}`, { cause: e });
    }
  }

  /**
   * Removes the pod from the network (chain in reverse, then loopback). Idempotent. Port
   * mappings default to the ones given to setUp (kept in memory and in cacheDir).
   */
  async tearDown(podId: string, netnsPath: string, opts: TearDownOptions = {}): Promise<void> {
    const cached = await this.#load(podId);
    const rt: RuntimeValues = { portMappings: opts.portMappings ?? cached?.runtime.portMappings };
    const args = cniArgs(opts.args);
    // Plugins skip in-namespace work for an empty CNI_NETNS; a removed namespace means exactly that.
    const ns = (await pathExists(netnsPath)) ? netnsPath : "";
    const prev = cached?.result;
    // Chain and loopback list side by side (independent lists; each in its own reverse order).
    const results = await Promise.allSettled([
      this.#del(this.conf, podId, ns, this.ifName, rt, args, prev, opts.signal),
      this.#loopback ? this.#del(this.#loopback, podId, ns, "lo", rt, args, undefined, opts.signal) : undefined,
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw toSkiffError(failed.reason);
    await this.#drop(podId);
  }

  /** Runs CHECK on the chain against the cached ADD result. */
  async check(podId: string, netnsPath: string, opts: SetUpOptions = {}): Promise<void> {
    if (this.conf.disableCheck) return;
    const cached = await this.#load(podId);
    if (!cached) throw failedPrecondition(`cni: no ADD result for pod ${podId}; cannot CHECK`);
    const prev = cached.result;
    const rt: RuntimeValues = { portMappings: opts.portMappings ?? cached.runtime.portMappings };
    const args = cniArgs(opts.args);
    for (const p of this.conf.plugins) {
      await this.#invoke("CHECK", this.conf, p, podId, netnsPath, this.ifName, rt, args, prev, opts.signal);
    }
  }

  async #add(
    list: CniConfList,
    podId: string,
    netnsPath: string,
    ifName: string,
    rt: RuntimeValues,
    args: Record<string, string>,
    signal: AbortSignal | undefined,
    undo: (() => Promise<void>)[],
  ): Promise<CniResult> {
    let prev: CniResult | undefined;
    for (let i = 0; i < list.plugins.length; i++) {
      const p = list.plugins[i]!;
      // A plugin that fails may have done part of its work: DEL it too (DEL tolerates absence).
      undo.push(() => this.#invoke("DEL", list, p, podId, netnsPath, ifName, rt, args, undefined, undefined).then(() => {}));
      const res = await this.#invoke("ADD", list, p, podId, netnsPath, ifName, rt, args, prev, signal);
      if (!res) throw failedPrecondition(`cni plugin ${p.type} ADD for pod ${podId}: empty result`);
      prev = res;
    }
    return prev!;
  }

  async #del(
    list: CniConfList,
    podId: string,
    netnsPath: string,
    ifName: string,
    rt: RuntimeValues,
    args: Record<string, string>,
    prev: CniResult | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let first: unknown;
    for (const p of [...list.plugins].reverse()) {
      try {
        await this.#invoke("DEL", list, p, podId, netnsPath, ifName, rt, args, prev, signal);
      } catch (err) {
        first ??= err;
        if (signal?.aborted) break;
      }
    }
    if (first !== undefined) throw first;
  }

  #invoke(
    command: CniCommand,
    list: CniConfList,
    plugin: CniConfList["plugins"][number],
    podId: string,
    netnsPath: string,
    ifName: string,
    rt: RuntimeValues,
    args: Record<string, string>,
    prev: CniResult | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CniResult | undefined> {
    const config: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    if (prev) config.prevResult = prev;
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      const v = (rt as Record<string, unknown>)[cap];
      if (on && v !== undefined) runtimeConfig[cap] = v;
    }
    if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
    return invokePlugin({
      command,
      type: plugin.type,
      binDirs: this.binDirs,
      containerId: podId,
      netnsPath,
      ifName,
      args,
      config,
      timeoutMs: this.pluginTimeoutMs,
      signal,
      subject: `pod ${podId}`,
    });
  }

  #cacheFile(podId: string): string | undefined {
    return this.#cacheDir && path.join(this.#cacheDir, `${this.conf.name}-${podId}-${this.ifName}.json`);
  }

  async #save(podId: string, att: CachedAttachment): Promise<void> {
    this.#attachments.set(podId, att);
    const file = this.#cacheFile(podId);
    if (!file) return;
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, JSON.stringify(att));
  }

  async #load(podId: string): Promise<CachedAttachment | undefined> {
    const mem = this.#attachments.get(podId);
    if (mem) return mem;
    const file = this.#cacheFile(podId);
    if (!file) return undefined;
    try {
      return JSON.parse(await readFile(file, "utf8")) as CachedAttachment;
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") this.#log.warn({ podId, file, err: String(err) }, "cni: unreadable cached result");
      return undefined;
    }
  }

  async #drop(podId: string): Promise<void> {
    this.#attachments.delete(podId);
    const file = this.#cacheFile(podId);
    if (file) await rm(file, { force: true });
  }
}

function cniArgs(extra: Record<string, string> | undefined): Record<string, string> {
  return { IgnoreUnknown: "1", ...extra };
}

async function pathExists(p: string): Promise<boolean> {
  if (p === "") return false;
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The pod-facing view of a result: the pod interface's addresses (all, if none is tagged), without prefix. */
export function toStatus(result: CniResult, ifName: string): PodNetworkStatus {
  const interfaces = result.interfaces ?? [];
  const ipcs = result.ips ?? [];
  const onPod = (i: number | undefined) => i !== undefined && interfaces[i]?.name === ifName && interfaces[i]?.sandbox;
  const mine = ipcs.filter((c) => onPod(c.interface));
  return {
    interfaces,
    ips: (mine.length > 0 ? mine : ipcs).map((c) => c.address.split("/")[0] ?? c.address),
    routes: result.routes ?? [],
    result,
  };
}
