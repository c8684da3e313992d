/**
 * What a runtime left on the host after a scenario, counted by kind, each item attributable to
 * the runtime under test (its namespace, socket, dirs), so other work on the machine never
 * counts. skiff: shims, runc containers, mounts, netns, veths on its bridge, CNI nat rules, IPAM
 * reservations, task bundles, pod dirs, and SQLite rows (after every pod is removed no row of a
 * pod, container, task, shim, exec or teardown may remain: each would be a record without a
 * live object). containerd: shims, runc containers and mounts of the peer.
 */
import { readdir } from "node:fs/promises";
import * as path from "node:path";
import Database from "better-sqlite3";
import type { Env } from "../integration/harness.js";
import { listNetns, NETNS_PREFIX } from "../../src/cni/netns.js";
import { mountsUnder } from "../../src/runtime/mount-linux.js";
import { listCniRules } from "../../src/testing/leaks.js";
import { run } from "../../src/util/exec.js";
import { sleep } from "../../src/util/signal.js";
import { shimsBy } from "../faults/kill.js";

/** Tables whose rows all describe live objects (images are kept on purpose and not counted). */
export const OBJECT_TABLES = ["cri_sandboxes", "cri_containers", "containers", "tasks", "shims", "execs", "teardowns"] as const;

export interface Leftovers {
  shims: number[];
  runc: string[];
  mounts: string[];
  netns: string[];
  veths: string[];
  cniRules: string[];
  ipam: string[];
  bundles: string[];
  /** Shim home dirs (`<state>/shims/<namespace>/<id>`). */
  shimHomes: string[];
  podDirs: string[];
  /** Rows per table of OBJECT_TABLES (only non-zero ones). */
  rows: Record<string, number>;
}

export function emptyLeftovers(): Leftovers {
  return { shims: [], runc: [], mounts: [], netns: [], veths: [], cniRules: [], ipam: [], bundles: [], shimHomes: [], podDirs: [], rows: {} };
}

/**
 * What is in `after` and not in `before` (rows: the excess count), so a scenario counts only
 * what it left, not what an earlier scenario on the same runtime did (containerd's leaks).
 */
export function minus(after: Leftovers, before: Leftovers): Leftovers {
  const out = emptyLeftovers();
  for (const k of ["shims", "runc", "mounts", "netns", "veths", "cniRules", "ipam", "bundles", "shimHomes", "podDirs"] as const) {
    const seen = new Set<unknown>(before[k]);
    (out[k] as unknown[]) = (after[k] as unknown[]).filter((x) => !seen.has(x));
  }
  for (const [t, n] of Object.entries(after.rows)) if (n > (before.rows[t] ?? 0)) out.rows[t] = n - (before.rows[t] ?? 0);
  return out;
}

/** One line per leftover item; [] when clean. */
export function describe(l: Leftovers): string[] {
  const out: string[] = [];
  for (const p of l.shims) out.push(`shim pid ${p}`);
  for (const [k, items] of [
    ["runc container", l.runc],
    ["mount", l.mounts],
    ["netns", l.netns],
    ["veth on the bridge", l.veths],
    ["iptables nat", l.cniRules],
    ["IPAM reservation", l.ipam],
    ["task bundle", l.bundles],
    ["shim home dir", l.shimHomes],
    ["pod dir", l.podDirs],
  ] as const) {
    for (const x of items) out.push(`${k} ${x}`);
  }
  for (const [t, n] of Object.entries(l.rows)) out.push(`${n} row(s) in ${t}`);
  return out;
}

async function dirNames(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

export interface SkiffAuditOptions {
  /** Mount points under the env dir that belong to the test (a fault's tmpfs), not to skiff. */
  ignoreMounts?: string[];
}

/** Everything of `env`'s daemon still on the host (the daemon may be running or stopped). */
export async function auditSkiff(env: Env, opts: SkiffAuditOptions = {}): Promise<Leftovers> {
  const c = env.cfg;
  const l = emptyLeftovers();
  l.shims = (await shimsBy("-namespace", c.namespace)).map((s) => s.pid);
  const runcRoot = path.join("/run/containerd/runc", c.namespace);
  l.runc = (await run("runc", ["--root", runcRoot, "list", "-q"])).stdout.toString().split("\n").filter(Boolean);
  const ignore = new Set(opts.ignoreMounts ?? []);
  l.mounts = (await mountsUnder(env.dir)).filter((m) => !ignore.has(m));
  l.netns = (await listNetns()).filter((n) => n.startsWith(`${NETNS_PREFIX}${c.namespace}-`));
  const links = (await run("ip", ["-o", "link", "show", "master", c.cni.defaultBridge])).stdout.toString();
  l.veths = links
    .split("\n")
    .filter(Boolean)
    .map((x) => x.split(":")[1]?.trim().split("@")[0] ?? x);
  const net = `skn-${c.namespace.slice(-8)}`;
  l.cniRules = (await listCniRules()).filter((r) => r.includes(String.raw`name: \"${net}\"`));
  const ipamDir = path.join(env.dir, "ipam");
  for (const n of await dirNames(ipamDir)) {
    for (const f of await dirNames(path.join(ipamDir, n))) if (/^\d+\.\d+\.\d+\.\d+$/.test(f)) l.ipam.push(`${n}/${f}`);
  }
  l.bundles = await dirNames(path.join(c.state, "tasks", c.namespace));
  l.shimHomes = await dirNames(path.join(c.state, "shims", c.namespace));
  l.podDirs = await dirNames(path.join(c.root, "pods"));
  l.rows = countRows(path.join(c.root, "meta.db"));
  return l;
}

/** Row counts of OBJECT_TABLES (non-zero only), read-only (safe while the daemon runs). */
export function countRows(dbFile: string): Record<string, number> {
  let db: Database.Database;
  try {
    db = new Database(dbFile, { readonly: true, fileMustExist: true });
  } catch {
    return {};
  }
  try {
    const out: Record<string, number> = {};
    const have = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    for (const t of OBJECT_TABLES) {
      if (!have.has(t)) continue;
      const n = (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
      if (n) out[t] = n;
    }
    return out;
  } finally {
    db.close();
  }
}

/** A containerd peer's leftovers: shims naming its socket, its runc containers, mounts in its dir. */
export async function auditPeer(peer: { socket: string; runcRoot: string; dir: string }): Promise<Leftovers> {
  const l = emptyLeftovers();
  l.shims = (await shimsBy("-address", peer.socket)).map((s) => s.pid);
  l.runc = (await run("runc", ["--root", peer.runcRoot, "list", "-q"])).stdout.toString().split("\n").filter(Boolean);
  l.mounts = await mountsUnder(peer.dir);
  return l;
}

/**
 * Polls `audit` until it finds nothing or `timeoutMs` passes; returns the last leftovers and how
 * long it took to get clean (NaN when it never did).
 */
export async function waitClean(audit: () => Promise<Leftovers>, timeoutMs: number): Promise<{ left: Leftovers; cleanMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const left = await audit();
    if (describe(left).length === 0) return { left, cleanMs: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) return { left, cleanMs: NaN };
    await sleep(250);
  }
}
