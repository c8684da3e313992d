/**
 * Runs one exec/attach request against the backend once a transport (SPDY or WebSocket) has set
 * up the client's streams, then reports the outcome on the error stream/channel.
 *
 * Invariant: the status is written only after stdout and stderr have been ended and flushed, so
 * a client never sees the exit status before the last output byte. Nothing is written once
 * `signal` has aborted (the client is gone or the server is closing).
 */
import type { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import type { Logger } from "../log.js";
import { commandStatus, formatCommand, type Status } from "./status.js";
import type { CommandIo, CommandResult, StreamingBackend, StreamingRequest, TerminalSize } from "./types.js";

export type CommandRequest = Extract<StreamingRequest, { kind: "exec" | "attach" }>;

/** The client-side streams a transport has set up; absent ones were not requested. */
export interface CommandChannels {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resizes?: AsyncIterable<TerminalSize>;
  /** Writes the final status in the negotiated encoding and ends the error stream. */
  writeStatus(status: Status): Promise<void>;
}

/** Which streams a request uses: with a tty stderr is merged into stdout and never opened. */
export function wantedStreams(req: CommandRequest): { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean } {
  return { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr && !req.tty, tty: req.tty };
}

async function endAndWait(w: Writable | undefined, signal: AbortSignal): Promise<void> {
  if (!w || w.destroyed || w.writableFinished) return;
  if (!w.writableEnded) w.end();
  await finished(w, { readable: false, signal }).catch(() => undefined);
}

export async function runCommand(
  backend: StreamingBackend,
  req: CommandRequest,
  ch: CommandChannels,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const io: CommandIo = { tty: req.tty };
  if (ch.stdin) io.stdin = ch.stdin;
  if (ch.stdout) io.stdout = ch.stdout;
  if (ch.stderr && !req.tty) io.stderr = ch.stderr;
  if (req.tty && ch.resizes) io.resizes = ch.resizes;
  let result: CommandResult | undefined;
  let error: unknown;
  try {
    result = req.kind === "exec" ? await backend.exec(req.containerId, req.cmd, io, signal) : await backend.attach(req.containerId, io, signal);
  } catch (err) {
    error = err ?? new Error("unknown error");
    log.warn({ containerId: req.containerId, kind: req.kind, err }, "streaming command failed");
  }
  if (signal.aborted) return;
  await Promise.all([endAndWait(ch.stdout, signal), endAndWait(ch.stderr, signal)]);
  if (signal.aborted) return;
  const what = req.kind === "exec" ? formatCommand(req.cmd) : `attach ${req.containerId}`;
  await ch.writeStatus(commandStatus(result, error, what));
}
