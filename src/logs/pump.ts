/**
 * Copies a container's stdout/stderr FIFOs into a CriLogWriter.
 *
 * Lifecycle and restart semantics:
 * - First start: create the FIFOs (`createLogFifos`) and call `attachLogs` BEFORE the task is
 *   created. The readers are opened O_RDONLY|O_NONBLOCK; epoll reports no hang-up until a
 *   writer (the shim) has opened the FIFO, so an early reader does not see a spurious EOF.
 * - The shim (containerd-shim-runc-v2, pkg/process/io.go copyPipes) opens each FIFO twice,
 *   O_WRONLY and O_RDONLY, and keeps both open until the process's output is fully copied. While
 *   no daemon reader exists (daemon down or restarting), the shim's own read end keeps its writes
 *   from failing with EPIPE, and output waits in the FIFO.
 * - After a restart, call `attachLogs` on the existing FIFO paths (with a new writer on the same
 *   log file): the new readers pick up what waited in the pipe, then live output.
 * - The bound, honestly: the FIFO holds one pipe buffer (64 KiB by default on Linux,
 *   /proc/sys/fs/pipe-max-size aside). When it is full the shim's copy blocks, then the pipe
 *   between the container and the shim fills (another 64 KiB), and then the container's own
 *   writes to stdout/stderr block until a reader returns. Nothing is dropped, but a chatty
 *   container stalls while the daemon is down; output is only lost if the shim itself dies.
 * - The stream ends (EOF) when the shim closes its write end, i.e. after the process exited and
 *   its output was copied. Each stream's unterminated tail is then written as a `P` record.
 *
 * `close()` stops reading without treating it as EOF: data already read into memory is handed
 * to the writer, data still in the kernel pipe stays there for the next reader, and a partial
 * line stays buffered in the writer (if the writer is then closed, it is written as a `P`
 * record and its continuation later arrives as the next record, which is what P means).
 */
import { lstat, mkdir } from "node:fs/promises";
import type * as net from "node:net";
import * as path from "node:path";
import { mkfifos, openFifoReader } from "../runtime/fifo.js";
import { SkiffError, ErrorCode } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { CriLogWriter, LogStream } from "./writer.js";

/** Pause reading a FIFO while this many bytes are written to the log file but not yet on disk. */
const HIGH_WATER_BYTES = 1024 * 1024;

export interface LogFifos {
  stdout: string;
  stderr: string;
}

/** The FIFO paths for container `id` in `dir` (containerd names them `<id>-stdout`/`<id>-stderr`). */
export function logFifoPaths(dir: string, id: string): LogFifos {
  if (!id || id.includes("/") || id === "." || id === "..") {
    throw new SkiffError(ErrorCode.InvalidArgument, `invalid container id for log FIFOs: ${JSON.stringify(id)}`);
  }
  return { stdout: path.join(dir, `${id}-stdout`), stderr: path.join(dir, `${id}-stderr`) };
}

/**
 * Creates `dir` and the two FIFOs (mode 0600). FIFOs that already exist are kept (a daemon
 * restart re-attaches to them); anything else at those paths is an AlreadyExists error.
 */
export async function createLogFifos(dir: string, id: string): Promise<LogFifos> {
  const paths = logFifoPaths(dir, id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const missing: string[] = [];
  for (const p of [paths.stdout, paths.stderr]) {
    const st = await lstat(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
    if (st === undefined) missing.push(p);
    else if (!st.isFIFO()) throw new SkiffError(ErrorCode.AlreadyExists, `${p} exists and is not a FIFO`);
  }
  await mkfifos(missing);
  return paths;
}

export interface AttachLogsOptions {
  /** stdout FIFO; omit when the container has none. */
  stdoutFifo?: string;
  /** stderr FIFO; omit for a TTY container (its output all comes on stdout). */
  stderrFifo?: string;
  /** Receives the output; owned by the caller (attachLogs never closes it). */
  writer: CriLogWriter;
  logger?: Logger;
}

export interface LogPump {
  /**
   * Resolves when every attached stream has ended (EOF, read error, or `close()`) and the
   * records built from it are written. Never rejects.
   */
  readonly done: Promise<void>;
  /**
   * Stops reading now (see the module comment: not an EOF, nothing in the pipe is lost) and
   * resolves once what was read is handed to the writer and written. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Opens readers on the FIFOs and starts copying into `opts.writer`. Call before the task is
 * created (first start) or at any time on FIFOs a live shim holds (re-attach after a restart).
 * If opening the second FIFO fails, the first reader is destroyed and the error is thrown.
 */
export async function attachLogs(opts: AttachLogsOptions): Promise<LogPump> {
  const log = opts.logger ?? silentLogger;
  const specs: Array<[LogStream, string]> = [];
  if (opts.stdoutFifo) specs.push(["stdout", opts.stdoutFifo]);
  if (opts.stderrFifo) specs.push(["stderr", opts.stderrFifo]);
  const sockets: Array<[LogStream, net.Socket]> = [];
  try {
    for (const [stream, p] of specs) sockets.push([stream, await openFifoReader(p)]);
  } catch (err) {
    for (const [, s] of sockets) s.destroy();
    throw err;
  }
  const pipes = sockets.map(([stream, sock]) => new StreamPipe(stream, sock, opts.writer, log));
  const done = Promise.all(pipes.map((p) => p.done)).then(() => {});
  let closing: Promise<void> | undefined;
  return {
    done,
    close() {
      closing ??= Promise.all(pipes.map((p) => p.stop())).then(() => {});
      return closing;
    },
  };
}

/** One FIFO → writer copy with backpressure. */
class StreamPipe {
  readonly done: Promise<void>;
  #inFlight = 0;
  #paused = false;
  #stopped = false;
  #writes = new Set<Promise<void>>();
  #resolveEnded!: () => void;

  constructor(
    readonly stream: LogStream,
    readonly sock: net.Socket,
    readonly writer: CriLogWriter,
    readonly log: Logger,
  ) {
    const ended = new Promise<void>((resolve) => (this.#resolveEnded = resolve));
    this.done = ended.then(() => this.#settled());
    sock.on("data", (chunk: Buffer) => this.#onData(chunk));
    sock.on("end", () => {
      // EOF: the shim closed its write end. The unterminated tail becomes a P record.
      if (!this.#stopped) this.#track(this.writer.endStream(this.stream));
    });
    sock.on("error", (err) => log.warn({ err, stream }, "reading container log FIFO failed"));
    sock.on("close", () => this.#resolveEnded());
  }

  #onData(chunk: Buffer): void {
    this.#inFlight += chunk.length;
    this.#track(
      this.writer.write(this.stream, chunk).finally(() => {
        this.#inFlight -= chunk.length;
        if (this.#paused && this.#inFlight < HIGH_WATER_BYTES / 2) {
          this.#paused = false;
          if (!this.sock.destroyed) this.sock.resume();
        }
      }),
    );
    if (!this.#paused && !this.#stopped && this.#inFlight >= HIGH_WATER_BYTES) {
      this.#paused = true;
      this.sock.pause();
    }
  }

  #track(p: Promise<void>): void {
    const q = p.catch((err: unknown) =>
      this.log.warn({ err, stream: this.stream, path: this.writer.path }, "writing container log failed"),
    );
    this.#writes.add(q);
    void q.finally(() => this.#writes.delete(q));
  }

  async #settled(): Promise<void> {
    while (this.#writes.size) await Promise.all([...this.#writes]);
  }

  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      // Hand over what Node already read from the pipe (buffered while paused); read() emits
      // 'data' for each chunk it returns. What is still in the kernel pipe stays there.
      if (!this.sock.destroyed) {
        while (this.sock.read() !== null) {
          /* delivered through the 'data' listener */
        }
        this.sock.destroy();
      }
    }
    await this.done;
  }
}
