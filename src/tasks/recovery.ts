/**
 * Start-up recovery and shim-loss handling for the tasks service.
 *
 * After a restart (SIGKILL included) the SQLite records are the truth to reconcile with what is
 * live: shims are reconnected by their recorded address and pid; each task's state is read from
 * its shim, so an exit that happened while the daemon was down is recorded with its real code;
 * pending teardowns resume; shims no task needs are shut down; bundles, shim homes and mounts
 * that no record explains are cleaned up.
 */
import { readdir, rm } from "node:fs/promises";
import * as path from "node:path";
import type { TasksService } from "./service.js";
import type { ShimHandle } from "../runtime/shim-manager.js";
import { bundlePath, listBundles, readBundleAddress, removeBundle } from "../runtime/bundle.js";
import { TtrpcClient } from "../ttrpc/index.js";
import { ShimTaskClient } from "../runtime/shim-client.js";
import { isAlive, waitForExit } from "../util/proc.js";
import { isNotFound } from "../errors.js";
import { Status } from "../gen/containerd/types/task/task_pb.js";
import { exitTimeOf, nowRfc3339 } from "../util/time.js";
import { UNKNOWN_EXIT_STATUS } from "./types.js";

/** Reconnects or tears down after a shim connection closed unexpectedly. */
export async function handleShimDisconnect(svc: TasksService, shimId: string): Promise<void> {
  const row = svc.meta.shims.find(shimId);
  if (!row) return;
  if (row.pid && (await isAlive(row.pid))) {
    try {
      const h = await svc.shims.connect(row);
      rearm(svc, h);
      return;
    } catch (err) {
      svc.log.warn({ shim: shimId, err: (err as Error).message }, "shim alive but not reachable");
      if (row.pid && (await isAlive(row.pid))) return; // the next operation retries the connection
    }
  }
  svc.log.warn({ shim: shimId, pid: row.pid }, "shim died; cleaning up its tasks");
  const users = svc.meta.tasks.list({ shimId }).filter((t) => t.deletedAt === null);
  if (users.length === 0) {
    await svc.shims.forget(shimId);
    return;
  }
  for (const t of users) void svc.teardown.enqueue(t.id);
}

/** Re-registers exit monitors for every live task of a shim. */
function rearm(svc: TasksService, h: ShimHandle): void {
  for (const t of svc.meta.tasks.list({ shimId: h.id })) {
    if (t.deletedAt === null && !svc.exits.recorded(t.id)) svc.monitor(t.id, h);
  }
}

export async function recover(svc: TasksService): Promise<void> {
  const { meta, shims, log, cfg } = svc;
  const live = new Map<string, ShimHandle>();
  for (const row of meta.shims.list()) {
    if (row.state === "stopped") continue;
    if (!row.address) {
      // Crashed mid-start: the shim may have written its address before we recorded it.
      const addr = await readBundleAddress(row.bundle);
      if (addr) meta.shims.update(row.id, { address: addr.replace(/^unix:\/\//, "") });
    }
    const fresh = meta.shims.get(row.id);
    if (!fresh.address) continue;
    try {
      const h = await shims.connect(fresh);
      live.set(row.id, h);
    } catch (err) {
      log.warn({ shim: row.id, err: (err as Error).message }, "recorded shim not reachable at start-up");
    }
  }

  const pending = new Set(meta.teardowns.list().map((w) => w.taskId));
  for (const t of meta.tasks.list()) {
    if (t.deletedAt !== null || pending.has(t.id)) continue;
    const h = live.get(t.shimId);
    if (!h) {
      void svc.teardown.enqueue(t.id);
      continue;
    }
    try {
      const st = await h.task.state(t.id, "", { timeoutMs: cfg.timeouts.shimCallMs });
      if (st.status === Status.STOPPED) {
        svc.exits.record(t.id, {
          exitStatus: st.exitStatus,
          exitedAt: exitTimeOf(st.exitedAt),
        });
      } else {
        // The row lags the shim when the daemon died between a shim call and its record: Create
        // done but not written (unknown), or Start done but not written (created).
        const started = st.status === Status.RUNNING || st.status === Status.PAUSED || st.status === Status.PAUSING;
        if (started && t.status !== "running") meta.tasks.update(t.id, { status: "running", pid: st.pid });
        else if (t.status === "unknown") meta.tasks.update(t.id, { status: "created", pid: st.pid });
        svc.monitor(t.id, h);
      }
    } catch (err) {
      if (!isNotFound(err)) {
        log.warn({ task: t.id, err: (err as Error).message }, "task state unknown at start-up");
        continue;
      }
      // The shim has no record: created by a crashed daemon, or deleted mid-teardown.
      if (t.status !== "unknown") {
        svc.exits.record(t.id, { exitStatus: UNKNOWN_EXIT_STATUS, exitedAt: nowRfc3339(), reason: "task lost" });
      }
      void svc.teardown.enqueue(t.id);
    }
  }
  svc.teardown.resumeAll();

  // Shims that no task needs.
  const needed = new Set(
    meta.tasks
      .list()
      .filter((t) => t.deletedAt === null)
      .map((t) => t.shimId),
  );
  for (const row of meta.shims.list()) {
    if (needed.has(row.id)) continue;
    try {
      if (await shims.shutdown(row.id)) await shims.forget(row.id);
    } catch (err) {
      log.warn({ shim: row.id, err: (err as Error).message }, "could not shut down unused shim");
    }
  }
  await removeOrphans(svc);
}

/** Bundles and shim homes on disk that no record explains. */
async function removeOrphans(svc: TasksService): Promise<void> {
  const { meta, shims, log, cfg } = svc;
  for (const id of await listBundles(cfg.state, cfg.namespace)) {
    const t = meta.tasks.find(id);
    if (t && (t.deletedAt === null || meta.teardowns.find(id))) continue;
    const dir = bundlePath(cfg.state, cfg.namespace, id);
    log.warn({ bundle: dir }, "removing orphan bundle");
    await shims.cleanupTask(cfg.defaultRuntime, id, dir).catch(() => {});
    await removeBundle(dir).catch((err: unknown) => log.error({ bundle: dir, err }, "orphan bundle not removed"));
  }
  const homes = path.join(cfg.state, "shims", cfg.namespace);
  let names: string[] = [];
  try {
    names = await readdir(homes);
  } catch {
    return;
  }
  for (const g of names) {
    if (meta.shims.find(g)) continue;
    const home = path.join(homes, g);
    const addr = await readBundleAddress(home);
    if (addr) await shutdownUnrecorded(addr.replace(/^unix:\/\//, ""), g, svc);
    log.warn({ home }, "removing orphan shim home");
    await rm(home, { recursive: true, force: true });
  }
}

/** A shim we have no record of (crash before the record was written): ask it to exit. */
async function shutdownUnrecorded(address: string, group: string, svc: TasksService): Promise<void> {
  let client: TtrpcClient | undefined;
  try {
    client = await TtrpcClient.connect(address, { namespace: svc.cfg.namespace, timeoutMs: 2000 });
    const task = new ShimTaskClient(client);
    const { shimPid } = await task.connect(group, { timeoutMs: 2000 });
    await task.shutdown(group, false, { timeoutMs: 2000 }).catch(() => {});
    if (await waitForExit(shimPid, svc.cfg.timeouts.shimExitMs)) await rm(address, { force: true });
  } catch {
    // Nothing listening: nothing to shut down.
  } finally {
    client?.destroy();
  }
}
