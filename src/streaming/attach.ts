/**
 * Attach: a client joins a running container's stdio. Its output goes to the client as a copy
 * (the CRI log keeps the original, see cri/container-stdio.ts), the client's input goes to the
 * container's stdin FIFO, terminal size changes go to the task's console.
 *
 * Invariants:
 * - Detaching (the client leaves, `signal` aborts) never stops the container and never closes
 *   its stdin, except through stdin_once: when the container was created with `stdin_once` and
 *   no tty, the first attacher whose input ends closes the container's stdin (FIFO EOF, then
 *   CloseIO) and keeps receiving output. Otherwise the end of an attacher's input ends that
 *   attach (its output streams are ended), as containerd does.
 * - Several attachers may be attached at once; each gets every output chunk it has room for.
 * - Resolves with the container's exit code when its output ended (it exited), or with no exit
 *   code when the client left.
 */
import type { Readable } from "node:stream";
import { isNotFound } from "../errors.js";
import type { CriDeps } from "../cri/deps.js";
import type { ContainerStdio } from "../cri/container-stdio.js";
import { linkedSignal } from "../util/signal.js";
import { applyResizes } from "./exec-process.js";
import type { CommandIo, CommandResult } from "./types.js";

export interface AttachTarget {
  containerId: string;
  stdio: ContainerStdio;
  tty: boolean;
  stdinOnce: boolean;
  /** Resolves once the container's exit is recorded; gives its exit code. */
  exitCode(signal: AbortSignal): Promise<number | undefined>;
}

/** How long to wait for the exit record once the output ended. */
const EXIT_RECORD_WAIT_MS = 5000;

export async function runAttach(d: CriDeps, t: AttachTarget, io: CommandIo, signal: AbortSignal): Promise<CommandResult> {
  const out = t.tty ? { stdout: io.stdout } : { stdout: io.stdout, stderr: io.stderr };
  const sub = t.stdio.subscribe(out);
  let inputEnded = (): void => {};
  const inputDone = new Promise<"input">((resolve) => (inputEnded = () => resolve("input")));
  const stopInput = io.stdin ? forwardStdin(d, t, io.stdin, inputEnded) : () => {};
  const finished = new AbortController();
  if (t.tty && io.resizes) {
    const live = AbortSignal.any([signal, finished.signal]);
    void applyResizes(io.resizes, (w, h) => d.tasks.resizePty(t.containerId, w, h, { signal: live }), live);
  }
  let onLeave = () => {};
  try {
    const left = new Promise<"left">((resolve) => {
      onLeave = () => resolve("left");
      if (signal.aborted) return resolve("left");
      signal.addEventListener("abort", onLeave, { once: true });
    });
    const why = await Promise.race([left, inputDone, sub.ended.then(() => "ended" as const)]);
    if (why === "left") return {};
    io.stdout?.end();
    io.stderr?.end();
    if (why === "input") return {};
    const bound = linkedSignal([signal], EXIT_RECORD_WAIT_MS);
    try {
      const code = await t.exitCode(bound.signal).catch(() => undefined);
      return code === undefined ? {} : { exitCode: code };
    } finally {
      bound.dispose();
    }
  } finally {
    signal.removeEventListener("abort", onLeave);
    finished.abort();
    sub.unsubscribe();
    stopInput();
  }
}

/**
 * Copies the client's input into the container's stdin with backpressure (the client's stream
 * pauses while the FIFO is full). Returns a function that detaches from the client's stream.
 */
function forwardStdin(d: CriDeps, t: AttachTarget, stdin: Readable, endAttach: () => void): () => void {
  let detached = false;
  const onData = (chunk: Buffer) => {
    if (t.stdio.writeStdin(chunk)) return;
    stdin.pause();
    void t.stdio.drainStdin().then(() => {
      if (!detached) stdin.resume();
    });
  };
  const onEnd = () => {
    if (detached) return;
    detached = true;
    stdin.off("data", onData);
    if (!t.stdinOnce || t.tty) return endAttach();
    if (t.stdio.claimStdinOnce()) void closeContainerStdin(d, t);
  };
  stdin.on("data", onData);
  stdin.once("end", onEnd);
  return () => {
    detached = true;
    stdin.off("data", onData);
    stdin.off("end", onEnd);
  };
}

async function closeContainerStdin(d: CriDeps, t: AttachTarget): Promise<void> {
  await t.stdio.closeStdin();
  await d.tasks.closeIO(t.containerId).catch((err: unknown) => {
    if (!isNotFound(err)) d.log.debug({ container: t.containerId, err: (err as Error).message }, "container stdin not closed");
  });
}
