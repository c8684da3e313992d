/**
 * Host-side bookkeeping of a peer containerd (test/peer/containerd.ts): what its pods and shims
 * leave outside its temp dir, found by identity so nothing of anyone else's is touched.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { runChecked } from "../../src/util/exec.js";
import type { Reply } from "../integration/cri-client.js";

export const NETNS_DIR = "/var/run/netns";
export const CGROUP_ROOT = "/sys/fs/cgroup";
/** Where containerd-shim-runc-v2 1.6 puts its sockets whatever the daemon's paths. */
export const SHIM_SOCKET_DIR = "/run/containerd/s";
/** containerd's CRI plugin keeps its pods and containers in this containerd namespace. */
export const CRI_NAMESPACE = "k8s.io";

/**
 * Removes the NAT rules the CNI plugins (bridge ipMasq, portmap) made for these sandbox ids:
 * every rule whose comment names one of them (`id: "<id>"`), and the per-sandbox `CNI-…`
 * chains those rules jump to. What containerd's CNI DEL would have done had it run.
 */
export async function removeCniRules(ids: Set<string>): Promise<void> {
  if (ids.size === 0) return;
  const saved = (await runChecked("iptables-save", ["-t", "nat"])).stdout.toString().split("\n");
  const mine = saved.filter((l) => l.startsWith("-A ") && [...ids].some((id) => l.includes(`id: \\"${id}\\"`)));
  if (mine.length === 0) return;
  const owned = new Set<string>();
  for (const l of mine) {
    const target = / -j (CNI-(?:DN-)?[0-9a-f]{24})\b/.exec(l)?.[1];
    if (target) owned.add(target);
  }
  const chainOf = (l: string) => l.split(" ")[1] ?? "";
  const lines = ["*nat"];
  for (const l of mine) if (!owned.has(chainOf(l))) lines.push("-D" + l.slice(2));
  for (const c of owned) lines.push(`-F ${c}`);
  for (const c of owned) lines.push(`-X ${c}`);
  lines.push("COMMIT", "");
  await runChecked("iptables-restore", ["-w", "--noflush"], { input: lines.join("\n") });
}

/** `/sys/fs/cgroup/<hierarchy>/k8s.io` wherever it exists. */
export async function criCgroupDirs(): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(CGROUP_ROOT);
  } catch {
    return [];
  }
  return names.map((n) => path.join(CGROUP_ROOT, n, CRI_NAMESPACE)).filter((d) => existsSync(d));
}

export async function listNetnsFiles(): Promise<string[]> {
  try {
    return await readdir(NETNS_DIR);
  } catch {
    return [];
  }
}

/** The network namespace paths in a verbose PodSandboxStatus (containerd 1.6: info.info JSON). */
export function netnsPathsOf(status: Reply): string[] {
  const out: string[] = [];
  for (const v of Object.values((status.info ?? {}) as Record<string, string>)) {
    try {
      const info = JSON.parse(v) as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } };
      for (const ns of info.runtimeSpec?.linux?.namespaces ?? []) {
        if (ns.type === "network" && ns.path) out.push(ns.path);
      }
    } catch {
      // not JSON
    }
  }
  return out;
}

/** Pids of containerd shims started by the containerd listening on `socket`. */
export async function shimPidsFor(socket: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${name}/cmdline`, "utf8")).split("\0");
    } catch {
      continue;
    }
    if (!path.basename(argv[0] ?? "").startsWith("containerd-shim")) continue;
    const i = argv.indexOf("-address");
    if (i >= 0 && argv[i + 1] === socket) pids.push(Number(name));
  }
  return pids;
}
