/**
 * Named network namespaces for pods, managed through `ip netns` because Node cannot setns(2).
 * A namespace named N is bind-mounted at `/var/run/netns/N`; skiff's names are `skiff-<podId>`
 * so start-up recovery can tell its own namespaces (orphans to remove) from everyone else's.
 */
import { access } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import { run, runChecked } from "../util/exec.js";

export const NETNS_DIR = "/var/run/netns";
export const NETNS_PREFIX = "skiff-";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface NetnsOptions {
  signal?: AbortSignal;
  /** The `ip` binary (default "ip", found on PATH). */
  ipBin?: string;
}

/** The namespace name for a pod: `skiff-<podId>`, cut to the 255-byte file-name limit. */
export function netnsNameForPod(podId: string): string {
  if (podId === "" || podId.includes("/") || podId.includes("\0")) {
    throw invalidArgument(`netns: invalid pod id ${JSON.stringify(podId)}`);
  }
  return (NETNS_PREFIX + podId).slice(0, 255);
}

/** The path `ip netns` mounts a namespace of this name at. */
export function netnsPath(name: string): string {
  checkName(name);
  return path.join(NETNS_DIR, name);
}

function checkName(name: string): void {
  if (!NAME_RE.test(name) || name.length > 255) {
    throw invalidArgument(`netns: invalid namespace name ${JSON.stringify(name)}`);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates the namespace and returns its path. An existing namespace of that name is an error
 * from `ip` (AlreadyExists is not distinguishable reliably), so callers own unique names.
 */
export async function createNetns(name: string, opts: NetnsOptions = {}): Promise<string> {
  checkName(name);
  await runChecked(opts.ipBin ?? "ip", ["netns", "add", name], { signal: opts.signal });
  return netnsPath(name);
}

/** Removes the namespace; a namespace that is already gone is success (idempotent). */
export async function removeNetns(name: string, opts: NetnsOptions = {}): Promise<void> {
  checkName(name);
  const p = netnsPath(name);
  if (!(await exists(p))) return;
  const res = await run(opts.ipBin ?? "ip", ["netns", "delete", name], { signal: opts.signal });
  if (res.code !== 0 && (await exists(p))) {
    await runChecked(opts.ipBin ?? "ip", ["netns", "delete", name], { signal: opts.signal });
  }
}

/** Names of all named namespaces (everyone's, not only skiff's; filter by NETNS_PREFIX). */
export async function listNetns(opts: NetnsOptions = {}): Promise<string[]> {
  const res = await runChecked(opts.ipBin ?? "ip", ["netns", "list"], { signal: opts.signal });
  return res.stdout
    .toString()
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "");
}
