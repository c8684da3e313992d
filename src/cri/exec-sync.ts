/**
 * ExecSync: runs a process in a running container through the task's shim and collects its
 * output. On timeout only that process is killed (SIGKILL); the call then returns the output so
 * far and the killed process's exit code (137). Each stream keeps at most `maxOutputBytes`; the
 * rest is read and dropped so the process never blocks on a full pipe. The exec's FIFOs and its
 * record are removed whatever happens, and a caller that gives up also has the process killed.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import * as path from "node:path";
import type * as net from "node:net";
import { mkfifos, openFifoReader } from "../runtime/fifo.js";
import { linkedSignal, throwIfAborted } from "../util/signal.js";
import { isNotFound } from "../errors.js";
import type { CriDeps } from "./deps.js";

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  timedOut: boolean;
}

export interface ExecSyncOptions {
  containerId: string;
  process: Record<string, unknown>;
  /** 0: no timeout. */
  timeoutMs: number;
  maxOutputBytes: number;
  /** Directory for the exec's FIFOs (created). */
  dir: string;
  signal?: AbortSignal;
}

/** How long to wait for output still in the pipes after the process exited. */
const DRAIN_MS = 2000;
const KILL_WAIT_MS = 10_000;

class Collector {
  readonly chunks: Buffer[] = [];
  length = 0;
  readonly ended: Promise<void>;
  constructor(
    readonly sock: net.Socket,
    max: number,
  ) {
    this.ended = new Promise((resolve) => {
      sock.on("data", (b: Buffer) => {
        const room = max - this.length;
        if (room <= 0) return;
        const part = b.length > room ? b.subarray(0, room) : b;
        this.chunks.push(part);
        this.length += part.length;
      });
      sock.once("end", resolve);
      sock.once("close", resolve);
      sock.once("error", () => resolve());
    });
  }
  text(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export async function execSync(d: CriDeps, o: ExecSyncOptions): Promise<ExecSyncResult> {
  const execId = `exec-${randomBytes(8).toString("hex")}`;
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const out = path.join(o.dir, `${execId}-stdout`);
  const err = path.join(o.dir, `${execId}-stderr`);
  const collectors: Collector[] = [];
  let added = false;
  let started = false;
  let exited = false;
  try {
    await mkfifos([out, err]);
    for (const p of [out, err]) collectors.push(new Collector(await openFifoReader(p), o.maxOutputBytes));
    const execs = d.tasks.execs;
    // Add and Start are not cut by the caller's signal (each is bounded by the shim call
    // timeout): a Start abandoned in flight would start a process after the cleanup below ran.
    await execs.add({ taskId: o.containerId, execId, process: o.process, stdout: out, stderr: err });
    added = true;
    throwIfAborted(o.signal, `exec in container "${o.containerId}"`);
    // The exec's wait is registered inside start, before the process can exit.
    await execs.start(o.containerId, execId);
    started = true;
    throwIfAborted(o.signal, `exec in container "${o.containerId}"`);
    const limit = linkedSignal([o.signal], o.timeoutMs > 0 ? o.timeoutMs : undefined);
    let timedOut = false;
    let exitCode: number;
    try {
      exitCode = (await execs.wait(o.containerId, execId, { signal: limit.signal })).exitStatus;
    } catch (e) {
      if (o.signal?.aborted) throw e;
      timedOut = true;
      await execs.kill(o.containerId, execId, 9).catch((ke: unknown) => {
        if (!isNotFound(ke)) throw ke;
      });
      const bound = linkedSignal([], KILL_WAIT_MS);
      try {
        exitCode = (await execs.wait(o.containerId, execId, { signal: bound.signal })).exitStatus;
      } finally {
        bound.dispose();
      }
    } finally {
      limit.dispose();
    }
    exited = true;
    await Promise.race([Promise.all(collectors.map((c) => c.ended)), new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
    return { stdout: collectors[0]!.text(), stderr: collectors[1]!.text(), exitCode, timedOut };
  } finally {
    if (added) {
      const cleanup = linkedSignal([], KILL_WAIT_MS);
      try {
        if (started && !exited) {
          await d.tasks.execs.kill(o.containerId, execId, 9, { signal: cleanup.signal }).catch(() => {});
          await d.tasks.execs.wait(o.containerId, execId, { signal: cleanup.signal }).catch(() => {});
        }
        await d.tasks.execs.delete(o.containerId, execId, { signal: cleanup.signal }).catch((e2: unknown) => {
          d.log.warn({ container: o.containerId, exec: execId, err: (e2 as Error).message }, "exec not deleted");
        });
      } finally {
        cleanup.dispose();
      }
    }
    for (const c of collectors) c.sock.destroy();
    await rm(out, { force: true });
    await rm(err, { force: true });
  }
}
