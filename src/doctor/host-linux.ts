/**
 * Collects the host side of the drift check: shim processes of skiff's namespace (from
 * /proc/PID/cmdline), runc containers of its runc roots, mounts under its root and state dirs
 * (/proc/self/mountinfo), its network namespaces, and its per-object directories.
 *
 * Everything is read asynchronously; processes and files come and go while we read, so a read
 * that fails because the object vanished simply drops it.
 */
import { readdir, readFile, readlink, stat } from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../config.js";
import { listNetns } from "../cni/netns.js";
import { bundlesDir } from "../runtime/bundle.js";
import { readMounts } from "../runtime/mount-linux.js";
import type { HostDir, HostMount, HostRuncContainer, HostShim, HostState } from "./types.js";

/** containerd-shim-runc-v2 1.6 keeps runc state here when the runtime sets no root of its own. */
export const DEFAULT_RUNC_ROOT = "/run/containerd/runc";

export interface HostScope {
  cfg: Config;
  /** Prefix of the daemon's netns names (`skiff-<namespace>-`). */
  netnsPrefix: string;
  signal?: AbortSignal;
}

export async function collectHost(scope: HostScope): Promise<HostState> {
  const { cfg } = scope;
  const [shims, runc, mounts, netns, bundles, podDirs, shimHomes] = await Promise.all([
    shimsOfNamespace(cfg.namespace),
    runcContainers(runcRootsOf(cfg)),
    mountsBelow([cfg.root, cfg.state]),
    listNetns({ signal: scope.signal }).then((names) => names.filter((n) => n.startsWith(scope.netnsPrefix))),
    dirsIn(bundlesDir(cfg.state, cfg.namespace)),
    dirsIn(path.join(cfg.root, "pods")),
    dirsIn(path.join(cfg.state, "shims", cfg.namespace)),
  ]);
  return { shims, runc, mounts, netns, bundles, podDirs, shimHomes };
}

/** `<runc root>/<namespace>` of every configured runtime handler, without duplicates. */
export function runcRootsOf(cfg: Config): string[] {
  const roots = Object.values(cfg.runtimes).map((r) => path.join(r.runcRoot || DEFAULT_RUNC_ROOT, cfg.namespace));
  return [...new Set(roots)];
}

/**
 * Parses a shim command line. Returns the group for a shim daemon of `namespace`; undefined for
 * anything else, including the short-lived `start` and `delete` invocations of the binary (they
 * end on their own and must not be mistaken for orphans).
 */
export function parseShimArgs(args: readonly string[], namespace: string): string | undefined {
  if (path.basename(args[0] ?? "") !== "containerd-shim-runc-v2") return undefined;
  const last = args[args.length - 1];
  if (last === "start" || last === "delete") return undefined;
  const flag = (name: string): string | undefined => {
    const i = args.findIndex((a) => a === `-${name}` || a === `--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (flag("namespace") !== namespace) return undefined;
  return flag("id");
}

export async function shimsOfNamespace(namespace: string): Promise<HostShim[]> {
  const pids = (await readdir("/proc")).filter((n) => /^\d+$/.test(n)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid): Promise<HostShim | undefined> => {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
      if (cmdline === "") return undefined; // kernel thread, zombie, or gone
      const group = parseShimArgs(cmdline.replace(/\0$/, "").split("\0"), namespace);
      if (group === undefined) return undefined;
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => "");
      return { pid, group, cwd };
    }),
  );
  return found.filter((s): s is HostShim => s !== undefined).sort((a, b) => a.pid - b.pid);
}

export async function runcContainers(roots: readonly string[]): Promise<HostRuncContainer[]> {
  const out: HostRuncContainer[] = [];
  for (const root of roots) {
    for (const id of await names(root)) {
      let pid = 0;
      try {
        const state = JSON.parse(await readFile(path.join(root, id, "state.json"), "utf8")) as { init_process_pid?: number };
        pid = state.init_process_pid ?? 0;
      } catch (err) {
        // No state.json: not a container (runc writes it at create), or one being deleted.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      }
      out.push({ root, id, pid });
    }
  }
  return out;
}

/** Mounts strictly below any of `dirs` (a dir that is itself a mount point is not reported). */
export async function mountsBelow(dirs: readonly string[]): Promise<HostMount[]> {
  const prefixes = dirs.map((d) => `${d.replace(/\/+$/, "")}/`);
  const seen = new Set<string>();
  const out: HostMount[] = [];
  for (const m of await readMounts()) {
    if (!prefixes.some((p) => m.mountPoint.startsWith(p)) || seen.has(m.mountPoint)) continue;
    seen.add(m.mountPoint);
    out.push({ mountPoint: m.mountPoint, fsType: m.fsType, source: m.source });
  }
  return out;
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

async function dirsIn(dir: string): Promise<HostDir[]> {
  const now = Date.now();
  const out: HostDir[] = [];
  for (const id of await names(dir)) {
    const p = path.join(dir, id);
    const st = await stat(p).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    out.push({ id, path: p, ageMs: Math.max(0, now - st.mtimeMs) });
  }
  return out;
}
