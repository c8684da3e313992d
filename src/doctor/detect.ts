/**
 * The drift comparison: host state against records, as a pure function (no I/O), so every rule
 * is unit-tested with fixtures.
 *
 * The rules lean towards "belongs to something": an object is an orphan only when no record
 * could explain it, counting tasks whose teardown is still pending (the daemon is on them) and
 * shims still starting. Repairs act on orphans only, so a false "belongs" costs a missed
 * cleanup while a false "orphan" could kill a live container.
 */
import type { ContainerFacts, Finding, HostState, PodFacts, RecordState, TaskFacts } from "./types.js";

export interface DetectOptions {
  /**
   * Bundle directories younger than this are never orphans: the tasks service writes the bundle
   * before the task record (a crash in between leaves one for the next check or restart).
   */
  bundleGraceMs: number;
}

export const DEFAULT_BUNDLE_GRACE_MS = 60_000;

/**
 * Failed attempts after which a teardown counts as stuck: with the default backoff (1 s
 * doubling) that is half a minute of failures in one phase, past any transient cause.
 */
export const STUCK_TEARDOWN_ATTEMPTS = 5;

const isUnder = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);

/** Tasks the daemon still owns: live, or torn down but with teardown work pending. */
function ownedTasks(records: RecordState): TaskFacts[] {
  return records.tasks.filter((t) => t.live || t.teardownPending);
}

export function detectDrift(host: HostState, records: RecordState, opts: DetectOptions = { bundleGraceMs: DEFAULT_BUNDLE_GRACE_MS }): Finding[] {
  const out: Finding[] = [];
  const owned = ownedTasks(records);
  const ownedIds = new Set(owned.map((t) => t.id));
  const shimIds = new Set(records.shims.map((s) => s.id));
  const shimPids = new Set(records.shims.flatMap((s) => (s.pid ? [s.pid] : [])));
  const neededShims = new Set(owned.map((t) => t.shimId));
  const hostShimPids = new Set(host.shims.map((s) => s.pid));

  for (const s of host.shims) {
    if (shimIds.has(s.group) || neededShims.has(s.group) || shimPids.has(s.pid)) continue;
    out.push({
      kind: "orphan-shim",
      object: `pid ${s.pid} (group ${s.group})`,
      message: `shim process ${s.pid} of group "${s.group}" has no shim or task record`,
      pid: s.pid,
      group: s.group,
      cwd: s.cwd,
    });
  }

  for (const c of host.runc) {
    if (ownedIds.has(c.id)) continue;
    out.push({
      kind: "orphan-runc-container",
      object: c.id,
      message: `runc container "${c.id}" in ${c.root} (init pid ${c.pid}) has no task record`,
      root: c.root,
      id: c.id,
    });
  }

  const ownedBundles = [...owned.map((t) => t.bundle), ...records.pods.map((p) => p.dir)].filter((b) => b !== "");
  for (const m of host.mounts) {
    if (ownedBundles.some((b) => isUnder(m.mountPoint, b))) continue;
    out.push({
      kind: "orphan-mount",
      object: m.mountPoint,
      message: `${m.fsType} mount at ${m.mountPoint} (from ${m.source}) belongs to no live task or pod`,
      mountPoint: m.mountPoint,
    });
  }

  const podNetns = new Set(records.pods.flatMap((p) => (p.netns ? [p.netns] : [])));
  for (const name of host.netns) {
    if (podNetns.has(name)) continue;
    out.push({ kind: "orphan-netns", object: name, message: `network namespace "${name}" belongs to no pod record`, name });
  }
  const hostNetns = new Set(host.netns);
  for (const p of records.pods) {
    if (p.state !== "ready" || !p.netns || hostNetns.has(p.netns)) continue;
    out.push({
      kind: "missing-netns",
      object: p.id,
      message: `ready pod "${p.id}" has lost its network namespace "${p.netns}"`,
      podId: p.id,
      name: p.netns,
    });
  }

  for (const b of host.bundles) {
    if (ownedIds.has(b.id) || b.ageMs < opts.bundleGraceMs) continue;
    out.push({ kind: "orphan-bundle", object: b.path, message: `bundle of "${b.id}" has no task record`, id: b.id, path: b.path });
  }
  const podIds = new Set(records.pods.map((p) => p.id));
  for (const d of host.podDirs) {
    if (podIds.has(d.id)) continue;
    out.push({ kind: "orphan-pod-dir", object: d.path, message: `pod directory of "${d.id}" has no pod sandbox record`, id: d.id, path: d.path });
  }
  for (const d of host.shimHomes) {
    if (shimIds.has(d.id)) continue;
    out.push({ kind: "orphan-shim-home", object: d.path, message: `shim home of group "${d.id}" has no shim record`, id: d.id, path: d.path });
  }

  const shimsById = new Map(records.shims.map((s) => [s.id, s]));
  for (const t of records.tasks) {
    if (!t.live || t.teardownPending) continue;
    const s = shimsById.get(t.shimId);
    if (s?.state === "starting") continue; // its pid is learnt once the shim answers
    if (s && s.state !== "stopped" && s.pid !== null && hostShimPids.has(s.pid)) continue;
    const why = !s ? "has no shim record" : s.state === "stopped" ? "is recorded as stopped" : `process ${s.pid ?? "?"} is gone`;
    out.push({
      kind: "task-without-shim",
      object: t.id,
      message: `task "${t.id}" is live but its shim "${t.shimId}" ${why}`,
      taskId: t.id,
      shimId: t.shimId,
    });
  }

  const liveTasks = new Set(records.tasks.filter((t) => t.live).map((t) => t.id));
  for (const c of records.containers) {
    if (!needsTask(c) || liveTasks.has(c.id)) continue;
    out.push({ kind: "container-without-task", object: c.id, message: `container "${c.id}" is ${c.state} but has no live task`, id: c.id });
  }
  for (const p of records.pods) {
    if (!podNeedsTask(p) || liveTasks.has(p.id)) continue;
    out.push({ kind: "pod-without-task", object: p.id, message: `pod sandbox "${p.id}" is ready but its pause task is gone`, id: p.id });
  }
  for (const w of records.teardowns) {
    if (w.attempts < STUCK_TEARDOWN_ATTEMPTS) continue;
    out.push({
      kind: "stuck-teardown",
      object: w.taskId,
      message: `teardown of task "${w.taskId}" failed ${w.attempts} times in phase ${w.phase}: ${w.lastError ?? "no error recorded"}`,
      taskId: w.taskId,
    });
  }
  return out;
}

/** A running container has a live task until its exit has been handled. */
const needsTask = (c: ContainerFacts): boolean => c.state === "running";
const podNeedsTask = (p: PodFacts): boolean => p.state === "ready";

