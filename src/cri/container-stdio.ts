/**
 * The live stdio of a running container beyond its CRI log: the stdin FIFO the daemon holds
 * open (containers created with `stdin`), and the fan-out of its output to attached clients.
 *
 * Invariants:
 * - The CRI log is the primary reader of the output; attachers get copies. `publish` never
 *   waits: a subscriber whose writable already buffers `maxBufferedBytes` misses chunks (they
 *   are counted in `dropped`), so a slow attacher never holds back the log or other attachers.
 * - The stdin FIFO is opened O_RDWR by the daemon before the task exists, so the shim's
 *   non-blocking open for reading succeeds and the container never sees EOF while no client is
 *   attached. `closeStdin()` is the only way the container's stdin ends (stdin_once, exit).
 * - Owned by ContainerService: one per running container, `close()`d with the log pump.
 */
import { constants, open } from "node:fs";
import { lstat } from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import type { Writable } from "node:stream";
import { alreadyExists } from "../errors.js";
import { mkfifo } from "../runtime/fifo.js";
import { CriLogWriter, type CriLogWriterOptions, type LogStream } from "../logs/writer.js";

/** Default bound on what one attacher may have queued before it misses output. */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

export interface OutputSubscriber {
  stdout?: Writable;
  /** Absent: stderr output is not wanted (or, with a tty, there is none). */
  stderr?: Writable;
  maxBufferedBytes?: number;
}

export interface Subscription {
  /** Chunks this subscriber missed because it was too slow. */
  readonly dropped: number;
  /** Resolves when the container's output ended (it exited) or the stdio was closed. */
  readonly ended: Promise<void>;
  unsubscribe(): void;
}

interface Entry {
  sub: OutputSubscriber;
  dropped: number;
}

/** The FIFO path of a container's stdin, next to its log FIFOs. */
export function stdinFifoPath(dir: string, id: string): string {
  return path.join(dir, `${id}-stdin`);
}

export class ContainerStdio {
  readonly #subs = new Set<Entry>();
  readonly #ended: Promise<void>;
  #resolveEnded!: () => void;
  #stdin: net.Socket | undefined;
  #stdinClosing: Promise<void> | undefined;
  #stdinOnceUsed = false;

  private constructor(stdin: net.Socket | undefined) {
    this.#stdin = stdin;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    // A shim that went away makes writes fail with EPIPE; the attacher just sees stdin ignored.
    stdin?.on("error", () => {});
  }

  /**
   * Opens the stdio of a container. With `stdinFifo`, the FIFO is created when missing (a
   * restarted daemon finds the shim's one) and opened for writing without waiting for a reader.
   */
  static async open(opts: { stdinFifo?: string } = {}): Promise<ContainerStdio> {
    if (!opts.stdinFifo) return new ContainerStdio(undefined);
    const p = opts.stdinFifo;
    const st = await lstat(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
    if (!st) await mkfifo(p);
    else if (!st.isFIFO()) throw alreadyExists(`${p} exists and is not a FIFO`);
    // O_RDWR: opening for writing alone fails (ENXIO) until the shim opened its read end.
    const fd = await new Promise<number>((resolve, reject) =>
      open(p, constants.O_RDWR | constants.O_NONBLOCK, (err, fd) => (err ? reject(err) : resolve(fd))),
    );
    return new ContainerStdio(new net.Socket({ fd, readable: false, writable: true }));
  }

  get hasStdin(): boolean {
    return this.#stdin !== undefined;
  }

  /** True while the container's stdin can still take input. */
  get stdinOpen(): boolean {
    return this.#stdin !== undefined && this.#stdinClosing === undefined;
  }

  /** A copy of a chunk of the container's output, to every subscriber with room for it. */
  publish(stream: LogStream, chunk: Buffer): void {
    for (const e of this.#subs) {
      const w = stream === "stdout" ? e.sub.stdout : e.sub.stderr;
      if (!w || w.destroyed || w.writableEnded) continue;
      if (w.writableLength >= (e.sub.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES)) {
        e.dropped++;
        continue;
      }
      w.write(chunk);
    }
  }

  subscribe(sub: OutputSubscriber): Subscription {
    const e: Entry = { sub, dropped: 0 };
    this.#subs.add(e);
    return {
      get dropped() {
        return e.dropped;
      },
      ended: this.#ended,
      unsubscribe: () => this.#subs.delete(e),
    };
  }

  /**
   * Writes client input to the container's stdin. Returns false when the caller should wait for
   * `drainStdin()` before writing more (bounded memory); input after the stdin closed is dropped.
   */
  writeStdin(chunk: Buffer): boolean {
    if (!this.stdinOpen) return true;
    return this.#stdin!.write(chunk);
  }

  /** Resolves when buffered stdin input has been handed to the FIFO (or the stdin closed). */
  drainStdin(): Promise<void> {
    const s = this.#stdin;
    if (!s || !this.stdinOpen || !s.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        s.off("drain", done);
        s.off("close", done);
        resolve();
      };
      s.once("drain", done);
      s.once("close", done);
    });
  }

  /**
   * Claims the stdin_once close: true for the first caller only. The first attacher whose
   * input ends closes the container's stdin; later ones do not.
   */
  claimStdinOnce(): boolean {
    if (this.#stdinOnceUsed) return false;
    this.#stdinOnceUsed = true;
    return true;
  }

  /** Ends the container's stdin: what was written is flushed, then the FIFO's writer closes (EOF). */
  closeStdin(): Promise<void> {
    const s = this.#stdin;
    if (!s) return Promise.resolve();
    this.#stdinClosing ??= new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      s.once("close", () => resolve());
      s.end();
      // A FIFO nobody reads (shim gone) never drains: do not hold the caller for it.
      setTimeout(() => s.destroy(), 2000).unref();
    });
    return this.#stdinClosing;
  }

  /** The container's output ended: subscribers are told (their `ended` resolves). */
  outputEnded(): void {
    this.#resolveEnded();
  }

  /** Releases everything: stdin closed, subscribers told. Idempotent. */
  async close(): Promise<void> {
    this.outputEnded();
    this.#subs.clear();
    if (this.#stdin) {
      this.#stdinClosing ??= Promise.resolve();
      this.#stdin.destroy();
    }
  }
}

/**
 * A CRI log writer that also hands every chunk to the container's attachers before logging it.
 * The log pump drives it like a plain writer.
 */
export class TeeLogWriter extends CriLogWriter {
  constructor(
    filePath: string,
    readonly stdio: ContainerStdio,
    opts: CriLogWriterOptions = {},
  ) {
    super(filePath, opts);
  }

  override write(stream: LogStream, chunk: Buffer): Promise<void> {
    this.stdio.publish(stream, chunk);
    return super.write(stream, chunk);
  }
}
