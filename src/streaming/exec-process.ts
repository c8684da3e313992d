/**
 * A streaming exec: one process in a running container, started through the task's shim with
 * FIFOs for the streams the client asked for, its output piped to the client, its stdin fed from
 * the client, terminal size changes applied, and its exit code returned.
 *
 * Invariants:
 * - Whatever happens (client gone, shim error, success) the exec ends deleted in the shim and in
 *   the metadata, and its FIFOs are removed. A client that leaves (`signal` aborts) has the
 *   process SIGKILLed first; the cleanup runs under its own timeout, never the caller's signal.
 * - Output readers are opened before the shim opens the writers, so no output is missed; stdout
 *   and stderr are ended once the shim closed the FIFOs (after copying all output) or after a
 *   short drain bound when a grandchild keeps them open.
 * - Without a tty, the end of the client's input closes the process's stdin (FIFO EOF, then
 *   CloseIO), as containerd does for exec (stdin_once). With a tty it stays open: a terminal
 *   client ends input with ^D in-band.
 */
import { randomBytes } from "node:crypto";
import { constants, open } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { mkfifos, openFifoReader } from "../runtime/fifo.js";
import { abortError, linkedSignal, raceSignal, throwIfAborted } from "../util/signal.js";
import { isNotFound } from "../errors.js";
import type { CriDeps } from "../cri/deps.js";
import { CLEANUP_TIMEOUT_MS } from "../cri/deps.js";
import type { CommandIo, CommandResult } from "./types.js";

/** How long output still in the pipes may take to arrive after the process exited. */
export const EXEC_DRAIN_MS = 2000;

export interface ExecOptions {
  containerId: string;
  /** OCI process (the container's, with args and terminal replaced). */
  process: Record<string, unknown>;
  /** Directory for the exec's FIFOs (created; the FIFOs are removed afterwards). */
  dir: string;
}

/** Opens a FIFO for writing without waiting for its reader (O_RDWR; see container-stdio.ts). */
async function openFifoWriter(p: string): Promise<net.Socket> {
  const fd = await new Promise<number>((resolve, reject) =>
    open(p, constants.O_RDWR | constants.O_NONBLOCK, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
  const s = new net.Socket({ fd, readable: false, writable: true });
  s.on("error", () => {});
  return s;
}

/** Copies a FIFO reader to the client; resolves when the FIFO ended (or failed). */
function pipeOut(from: net.Socket, to: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    from.once("close", () => resolve());
    from.once("error", () => resolve());
    if (to) {
      from.pipe(to, { end: false });
      // A client that stops reading must not stall the shim forever: on its error, drain to nowhere.
      to.once("error", () => {
        from.unpipe(to);
        from.resume();
      });
    } else {
      from.resume();
    }
  });
}

/** Feeds the client's stdin into the FIFO; resolves when the client's input ended. */
function pipeIn(from: Readable, to: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    from.pipe(to, { end: false });
    from.once("end", () => resolve());
    from.once("close", () => resolve());
    from.once("error", () => resolve());
  });
}

export async function runExec(d: CriDeps, o: ExecOptions, io: CommandIo, signal: AbortSignal): Promise<CommandResult> {
  const { containerId } = o;
  const execId = `exec-${randomBytes(8).toString("hex")}`;
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const base = path.join(o.dir, execId);
  const paths = {
    stdin: io.stdin ? `${base}-stdin` : "",
    stdout: io.stdout ? `${base}-stdout` : "",
    stderr: io.stderr && !io.tty ? `${base}-stderr` : "",
  };
  const made = [paths.stdin, paths.stdout, paths.stderr].filter(Boolean);
  const readers: net.Socket[] = [];
  let stdinWriter: net.Socket | undefined;
  let added = false;
  let started = false;
  let exited = false;
  const execs = d.tasks.execs;
  // Ends the resize loop with the exec (the client's resize stream may outlive it).
  const finished = new AbortController();
  try {
    await mkfifos(made);
    const outs: Promise<void>[] = [];
    if (paths.stdout) {
      const r = await openFifoReader(paths.stdout);
      readers.push(r);
      outs.push(pipeOut(r, io.stdout));
    }
    if (paths.stderr) {
      const r = await openFifoReader(paths.stderr);
      readers.push(r);
      outs.push(pipeOut(r, io.stderr));
    }
    if (paths.stdin) stdinWriter = await openFifoWriter(paths.stdin);
    // Add and Start are not cut by the client going away (each is bounded by the shim call
    // timeout): a Start abandoned in flight would start a process after the cleanup below ran.
    await execs.add({ taskId: containerId, execId, process: o.process, ...paths, terminal: io.tty });
    added = true;
    throwIfAborted(signal, `exec in container "${containerId}"`);
    await execs.start(containerId, execId);
    started = true;
    throwIfAborted(signal, `exec in container "${containerId}"`);
    const exit = execs.wait(containerId, execId, { signal });
    if (io.stdin && stdinWriter) void feedStdin(d, containerId, execId, io, stdinWriter);
    if (io.tty && io.resizes) {
      const live = AbortSignal.any([signal, finished.signal]);
      void applyResizes(io.resizes, (w, h) => execs.resize(containerId, execId, w, h, { signal: live }), live);
    }
    const { exitStatus } = await exit;
    exited = true;
    // Output still in the pipes arrives after the exit; a grandchild holding them open is cut off.
    await raceSignal(Promise.race([Promise.all(outs), new Promise((r) => setTimeout(r, EXEC_DRAIN_MS).unref())]), signal, "exec output");
    // Nothing may be written to the client's streams after they end.
    for (const r of readers) r.unpipe();
    io.stdout?.end();
    io.stderr?.end();
    return { exitCode: exitStatus };
  } catch (err) {
    if (signal.aborted) throw abortError(signal, `exec in container "${containerId}"`);
    throw err;
  } finally {
    finished.abort();
    if (added) await removeExec(d, containerId, execId, started && !exited);
    stdinWriter?.destroy();
    for (const r of readers) r.destroy();
    await Promise.all(made.map((p) => rm(p, { force: true })));
  }
}

async function feedStdin(d: CriDeps, containerId: string, execId: string, io: CommandIo, w: net.Socket): Promise<void> {
  await pipeIn(io.stdin!, w);
  if (io.tty) return;
  await new Promise<void>((resolve) => {
    if (w.destroyed) return resolve();
    w.once("close", () => resolve());
    w.end();
  });
  await d.tasks.closeIO(containerId, execId).catch((err: unknown) => {
    if (!isNotFound(err)) d.log.debug({ container: containerId, exec: execId, err: (err as Error).message }, "exec stdin not closed");
  });
}

/** Applies terminal size changes in order until the iteration ends or the signal aborts. */
export async function applyResizes(
  sizes: AsyncIterable<{ width: number; height: number }>,
  apply: (width: number, height: number) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  try {
    for await (const s of sizes) {
      if (signal.aborted) return;
      // A size of 0 means "unknown" to the protocol and is an error to the shim.
      if (!(s.width > 0 && s.height > 0)) continue;
      await apply(s.width, s.height).catch(() => {});
    }
  } catch {
    // The connection ended mid-iteration: nothing left to resize.
  }
}

/** Kills (when still running), waits for, and deletes the exec, bounded by its own timeout. */
async function removeExec(d: CriDeps, containerId: string, execId: string, kill: boolean): Promise<void> {
  const execs = d.tasks.execs;
  const cleanup = linkedSignal([], CLEANUP_TIMEOUT_MS);
  try {
    if (kill) {
      await execs.kill(containerId, execId, 9, { signal: cleanup.signal }).catch(() => {});
      await execs.wait(containerId, execId, { signal: cleanup.signal }).catch(() => {});
    }
    await execs.delete(containerId, execId, { signal: cleanup.signal }).catch((err: unknown) => {
      if (!isNotFound(err)) d.log.warn({ container: containerId, exec: execId, err: (err as Error).message }, "exec not deleted");
    });
  } finally {
    cleanup.dispose();
  }
}
