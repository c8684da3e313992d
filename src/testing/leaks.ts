/**
 * Host leak detection for integration tests: what skiff could leave behind (shim processes,
 * mounts, network namespaces, runc containers) is snapshotted before and after a test, and
 * anything new that is still there afterwards is a leak.
 *
 * Snapshots are plain JSON-serializable data (scripts/leak-report.ts saves them to files).
 * They are host-wide: processes started by anything else on the machine between the two
 * snapshots show up too, so compare snapshots taken around work that runs alone.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const SHIM_BINARY = "containerd-shim-runc-v2";
/** containerd-shim-runc-v2 1.6 keeps runc state here, one root per namespace. */
const SHIM_RUNC_ROOTS_DIR = "/run/containerd/runc";

export interface ShimProcess {
  pid: number;
  /** Full command line (argv). */
  args: string[];
  /** Working directory: the bundle for a running shim; "" when unreadable. */
  cwd: string;
}

export interface MountEntry {
  /** Mount id from /proc/self/mountinfo; unique among current mounts. */
  id: number;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Root of the mount within its file system ("/" unless a bind mount of a subtree). */
  root: string;
}

export interface RuncContainer {
  /** The runc --root this container was listed from. */
  runcRoot: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
}

export interface HostSnapshot {
  takenAt: string;
  /** Mount prefixes the `mounts` list was filtered by. */
  mountPrefixes: string[];
  /** Live (non-zombie) containerd-shim-runc-v2 processes. */
  shims: ShimProcess[];
  /** Mounts at or below one of `mountPrefixes` (any type: overlay, bind, tmpfs, nsfs…). */
  mounts: MountEntry[];
  /** Names from `ip netns list`. */
  netns: string[];
  /** Containers of every runc root under /run/containerd/runc/ plus the extra `runcRoots`. */
  runcContainers: RuncContainer[];
  /** nat rules a CNI plugin made for a pod (their comment names the network and the pod id). */
  cniRules?: string[];
}

export interface SnapshotOptions {
  /** Where to look for mounts. Default: `defaultMountPrefixes()`. */
  mountPrefixes?: readonly string[];
  /** runc roots to list in addition to the shim's ones under /run/containerd/runc/. */
  runcRoots?: readonly string[];
}

export interface LeakDiff {
  newShimPids: number[];
  newMounts: MountEntry[];
  newNetns: string[];
  newRuncContainers: RuncContainer[];
  newCniRules: string[];
}

/** Thrown by assertNoLeaks; `diff` holds every leftover. */
export class HostLeakError extends Error {
  override name = "HostLeakError";
  readonly code = "host_leak";
  readonly diff: LeakDiff;
  constructor(message: string, diff: LeakDiff) {
    super(message);
    this.diff = diff;
  }
}

/** The temp dir tests work in, and skiff's default state and root dirs. */
export function defaultMountPrefixes(): string[] {
  return [tmpdir(), "/run/skiff", "/var/lib/skiff"];
}

export async function snapshotHost(opts: SnapshotOptions = {}): Promise<HostSnapshot> {
  const mountPrefixes = [...(opts.mountPrefixes ?? defaultMountPrefixes())];
  const [shims, mounts, netns, runcContainers, cniRules] = await Promise.all([
    listShims(),
    mountsUnder(mountPrefixes),
    listNetns(),
    listRuncContainers(opts.runcRoots ?? []),
    listCniRules(),
  ]);
  return { takenAt: new Date().toISOString(), mountPrefixes, shims, mounts, netns, runcContainers, cniRules };
}

/** What is in `after` and was not in `before`. */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot): LeakDiff {
  const shimPids = new Set(before.shims.map((s) => s.pid));
  const mountIds = new Set(before.mounts.map((m) => m.id));
  const netns = new Set(before.netns);
  const runc = new Set(before.runcContainers.map(runcKey));
  const rules = new Set(before.cniRules ?? []);
  return {
    newShimPids: after.shims.filter((s) => !shimPids.has(s.pid)).map((s) => s.pid),
    newMounts: after.mounts.filter((m) => !mountIds.has(m.id)),
    newNetns: after.netns.filter((n) => !netns.has(n)),
    newRuncContainers: after.runcContainers.filter((c) => !runc.has(runcKey(c))),
    newCniRules: (after.cniRules ?? []).filter((r) => !rules.has(r)),
  };
}

export function isEmptyDiff(diff: LeakDiff): boolean {
  return (
    diff.newShimPids.length === 0 &&
    diff.newMounts.length === 0 &&
    diff.newNetns.length === 0 &&
    diff.newRuncContainers.length === 0 &&
    diff.newCniRules.length === 0
  );
}

/** A readable, multi-line list of every leftover in `diff`; "" when there is none. */
export function formatLeaks(diff: LeakDiff, after: HostSnapshot): string {
  const lines: string[] = [];
  for (const pid of diff.newShimPids) {
    const shim = after.shims.find((s) => s.pid === pid);
    const cwd = shim?.cwd ? ` (cwd ${shim.cwd})` : "";
    lines.push(`  shim pid ${pid}: ${shim?.args.join(" ") ?? "?"}${cwd}`);
  }
  for (const m of diff.newMounts) {
    lines.push(`  mount ${m.mountPoint} (${m.fsType} from ${m.source}${m.root === "/" ? "" : ` root ${m.root}`})`);
  }
  for (const n of diff.newNetns) lines.push(`  netns ${n}`);
  for (const r of diff.newCniRules) lines.push(`  iptables nat ${r}`);
  for (const c of diff.newRuncContainers) {
    lines.push(`  runc container ${c.id} in ${c.runcRoot}: ${c.status}, pid ${c.pid}, bundle ${c.bundle}`);
  }
  return lines.join("\n");
}

/** Throws a HostLeakError listing every shim, mount, netns and runc container left behind. */
export function assertNoLeaks(before: HostSnapshot, after: HostSnapshot): void {
  const diff = diffSnapshots(before, after);
  if (isEmptyDiff(diff)) return;
  const counts =
    `${diff.newShimPids.length} shim(s), ${diff.newMounts.length} mount(s), ` +
    `${diff.newNetns.length} netns, ${diff.newRuncContainers.length} runc container(s), ${diff.newCniRules.length} CNI rule(s)`;
  throw new HostLeakError(`left behind ${counts}:\n${formatLeaks(diff, after)}`, diff);
}

/** `shims=N mounts=N netns=N runc=N cni-rules=N`, as printed by scripts/leak-report.ts. */
export function formatCounts(s: HostSnapshot): string {
  return `shims=${s.shims.length} mounts=${s.mounts.length} netns=${s.netns.length} runc=${s.runcContainers.length} cni-rules=${s.cniRules?.length ?? 0}`;
}

// ---- collectors -----------------------------------------------------------------------------


/** Live containerd-shim-runc-v2 processes, found through /proc/PID/cmdline. */
export async function listShims(): Promise<ShimProcess[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid): Promise<ShimProcess | undefined> => {
      // Processes come and go while we read: every read may fail with ENOENT/ESRCH.
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
      if (cmdline === "") return undefined; // kernel thread, zombie, or gone
      const args = cmdline.replace(/\0$/, "").split("\0");
      if (basename(args[0] ?? "") !== SHIM_BINARY) return undefined;
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => "");
      return { pid, args, cwd };
    }),
  );
  return found.filter((s): s is ShimProcess => s !== undefined).sort((a, b) => a.pid - b.pid);
}

/** Mounts of this mount namespace at or below any of `prefixes`, from /proc/self/mountinfo. */
export async function mountsUnder(prefixes: readonly string[]): Promise<MountEntry[]> {
  const normalized = prefixes.map((p) => (p.length > 1 ? p.replace(/\/+$/, "") : p));
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const m = parseMountInfoLine(line);
    if (m && normalized.some((p) => m.mountPoint === p || m.mountPoint.startsWith(p === "/" ? p : `${p}/`))) {
      out.push(m);
    }
  }
  return out;
}

/**
 * Parses one mountinfo line:
 * `36 35 98:0 /root /mnt/point rw,noatime master:1 - ext4 /dev/root rw`.
 */
export function parseMountInfoLine(line: string): MountEntry | undefined {
  const fields = line.split(" ");
  const sep = fields.indexOf("-", 6);
  if (fields.length < 10 || sep < 0) return undefined;
  return {
    id: Number(fields[0]),
    root: unescapeMount(fields[3] ?? ""),
    mountPoint: unescapeMount(fields[4] ?? ""),
    fsType: fields[sep + 1] ?? "",
    source: unescapeMount(fields[sep + 2] ?? ""),
  };
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Names from `ip netns list` (lines look like `name (id: 3)` or `name`). */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await execFileAsync("ip", ["netns", "list"]);
  return stdout
    .split("\n")
    .map((l) => l.trim().split(" ")[0] ?? "")
    .filter((n) => n !== "")
    .sort();
}

/** Containers in every runc root under /run/containerd/runc/ and in `extraRoots`. */
export async function listRuncContainers(extraRoots: readonly string[] = []): Promise<RuncContainer[]> {
  let shimRoots: string[] = [];
  try {
    const entries = await readdir(SHIM_RUNC_ROOTS_DIR, { withFileTypes: true });
    shimRoots = entries.filter((e) => e.isDirectory()).map((e) => join(SHIM_RUNC_ROOTS_DIR, e.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const roots = [...new Set([...shimRoots, ...extraRoots])].sort();
  const perRoot = await Promise.all(roots.map(listRuncRoot));
  return perRoot.flat();
}

interface RuncListEntry {
  id: string;
  pid: number;
  status: string;
  bundle: string;
}

async function listRuncRoot(runcRoot: string): Promise<RuncContainer[]> {
  // `runc list` on a missing root prints "null" and succeeds, so no existence check is needed.
  const { stdout } = await execFileAsync("runc", ["--root", runcRoot, "list", "--format", "json"]);
  const parsed = JSON.parse(stdout.trim() || "null") as RuncListEntry[] | null;
  return (parsed ?? []).map((c) => ({ runcRoot, id: c.id, pid: c.pid, status: c.status, bundle: c.bundle }));
}

function runcKey(c: RuncContainer): string {
  return `${c.runcRoot}\0${c.id}`;
}

/** nat rules whose comment carries a CNI pod attachment (`name: "NET" id: "ID"`). */
export async function listCniRules(): Promise<string[]> {
  let out: string;
  try {
    out = (await promisify(execFile)("iptables-save", ["-t", "nat"], { maxBuffer: 64 << 20 })).stdout;
  } catch {
    return [];
  }
  return out.split("\n").filter((l) => l.startsWith("-A ") && l.includes(String.raw`--comment "name: \"`) && l.includes(String.raw`\" id: \"`));
}
