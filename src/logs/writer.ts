/**
 * Writes container output to a file in the Kubernetes CRI log format, one record per line:
 *
 *   <RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
 *
 * Behaviour follows containerd's CRI logger (pkg/cri/io/logger.go, redirectLogs):
 * - a line ends at `\n`; the `\n` and one `\r` right before it are not part of the content;
 *   an empty line is an `F` record with empty content;
 * - a line longer than `maxLineBytes` is cut into `P` records of exactly `maxLineBytes` bytes
 *   followed by an `F` record with the rest (a line of exactly `maxLineBytes` is one `F` record);
 * - output left without a newline when a stream ends (EOF) is written as `P` record(s).
 *
 * Invariants:
 * - Records are built per stream, so stdout and stderr never mix inside one line.
 * - All file work (appends, reopen, close) runs on one promise chain: a record is written by one
 *   `write(2)` on an O_APPEND descriptor and never interleaves with another, and a reopen
 *   happens between two writes, never inside one.
 * - Timestamps are taken when a record is built and never decrease within one writer.
 * - Nothing here is synchronous file system work (the event loop never stalls).
 *
 * Not safe to share between processes; one writer per log file in the daemon. The owner calls
 * `close()` (idempotent), which writes pending partial lines as `P` records.
 */
import { mkdir, open, type FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { SkiffError, ErrorCode } from "../errors.js";
import { formatRfc3339Nano, wallClockNs } from "./timestamp.js";

export type LogStream = "stdout" | "stderr";

/** containerd's default `max_container_log_line_size`. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024;

export interface CriLogWriterOptions {
  /** Longest content of one record; longer lines become P…P F records. Default 16384. */
  maxLineBytes?: number;
  /** Clock in nanoseconds since the epoch (tests). Default: the local wall clock. */
  now?: () => bigint;
}

const NL = 0x0a;
const CR = 0x0d;

interface Pending {
  chunks: Buffer[];
  length: number;
}

export class CriLogWriter {
  readonly path: string;
  readonly maxLineBytes: number;
  readonly #now: () => bigint;
  #fh: FileHandle | undefined;
  #lastNs = 0n;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #pending: Record<LogStream, Pending> = {
    stdout: { chunks: [], length: 0 },
    stderr: { chunks: [], length: 0 },
  };
  /** Records built but not yet handed to write(2). */
  #queue: Buffer[] = [];
  /** The flush that will take #queue, if one is scheduled and has not started. */
  #scheduled: Promise<void> | undefined;
  /** Tail of the serialized file work; never rejects. */
  #tail: Promise<void> = Promise.resolve();

  constructor(filePath: string, opts: CriLogWriterOptions = {}) {
    const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(max) || max <= 0) {
      throw new SkiffError(ErrorCode.InvalidArgument, `maxLineBytes must be a positive integer, got ${max}`);
    }
    this.path = filePath;
    this.maxLineBytes = max;
    this.#now = opts.now ?? wallClockNs;
  }

  /** Creates the parent directory and opens (or creates, mode 0640) the log file for appending. */
  async open(): Promise<void> {
    if (this.#closed) throw closedError(this.path);
    await this.#enqueue(async () => {
      if (!this.#fh) this.#fh = await openLogFile(this.path);
    });
  }

  /**
   * CRI ReopenContainerLog: after the records written so far are on disk, closes the file and
   * opens the same path again (creating it if rotation renamed it away). Records built before
   * the call land in the old file, later ones in the new file; none is split across the two.
   * Partial lines still buffered stay buffered and continue in the new file.
   */
  async reopen(): Promise<void> {
    if (this.#closed) throw closedError(this.path);
    await this.#enqueue(async () => {
      const old = this.#fh;
      this.#fh = undefined;
      await old?.close();
      this.#fh = await openLogFile(this.path);
    });
  }

  /**
   * Appends container output from one stream. Complete lines (and full `maxLineBytes` pieces of
   * long lines) become records now; a trailing partial line waits for the rest. Resolves when
   * the records built from this chunk are written; rejects if that write fails (the writer keeps
   * going: later records are still attempted, as containerd does to keep draining the container).
   * Callers must handle the returned promise (an unhandled rejection would end the process).
   */
  write(stream: LogStream, chunk: Buffer): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(this.path));
    const p = this.#pending[stream];
    const max = this.maxLineBytes;
    let start = 0;
    let built = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NL, start);
      if (nl === -1) {
        p.chunks.push(Buffer.from(chunk.subarray(start)));
        p.length += chunk.length - start;
        // Cut full pieces as soon as content beyond them is known. A trailing `\r` does not
        // count: it may be the start of a `\r\n` ending, which is not content.
        while (contentLength(p) > max) {
          this.#build(stream, "P", take(p, max));
          built++;
        }
        break;
      }
      p.chunks.push(chunk.subarray(start, nl));
      p.length += nl - start;
      let line = take(p, p.length);
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      while (line.length > max) {
        this.#build(stream, "P", line.subarray(0, max));
        line = line.subarray(max);
        built++;
      }
      this.#build(stream, "F", line);
      built++;
      start = nl + 1;
    }
    return built > 0 ? this.#scheduleFlush() : Promise.resolve();
  }

  /**
   * The stream reached EOF: its unterminated output (if any) is written as `P` record(s), as
   * containerd does. The writer stays open (the other stream may still be running).
   */
  endStream(stream: LogStream): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#flushPartial(stream) ? this.#scheduleFlush() : Promise.resolve();
  }

  /** Resolves once every record built so far is written (or its write failed). */
  async drain(): Promise<void> {
    await this.#tail;
  }

  /**
   * Writes each stream's unterminated output as `P` records (stdout first), waits for all
   * records, closes the file. Idempotent; later writes reject with FailedPrecondition.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#flushPartial("stdout");
      this.#flushPartial("stderr");
      this.#closed = true;
      if (this.#queue.length) void this.#scheduleFlush().catch(() => {});
      this.#closing = this.#enqueue(async () => {
        const fh = this.#fh;
        this.#fh = undefined;
        await fh?.close();
      });
    }
    return this.#closing;
  }

  #flushPartial(stream: LogStream): boolean {
    const p = this.#pending[stream];
    if (p.length === 0) return false;
    const rest = take(p, p.length);
    for (let off = 0; off < rest.length; off += this.maxLineBytes) {
      this.#build(stream, "P", rest.subarray(off, off + this.maxLineBytes));
    }
    return true;
  }

  #build(stream: LogStream, tag: "P" | "F", content: Buffer): void {
    let ns = this.#now();
    if (ns < this.#lastNs) ns = this.#lastNs;
    this.#lastNs = ns;
    const head = Buffer.from(`${formatRfc3339Nano(ns)} ${stream} ${tag} `);
    const rec = Buffer.allocUnsafe(head.length + content.length + 1);
    head.copy(rec, 0);
    content.copy(rec, head.length);
    rec[rec.length - 1] = NL;
    this.#queue.push(rec);
  }

  #scheduleFlush(): Promise<void> {
    if (!this.#scheduled) {
      const flush = this.#tail.then(() => {
        this.#scheduled = undefined;
        return this.#flushQueue();
      });
      this.#scheduled = flush;
      this.#tail = flush.catch(() => {});
    }
    return this.#scheduled;
  }

  async #flushQueue(): Promise<void> {
    const records = this.#queue;
    this.#queue = [];
    if (records.length === 0) return;
    const fh = this.#fh;
    if (!fh) throw new SkiffError(ErrorCode.FailedPrecondition, `log file ${this.path} is not open`);
    // One buffer, one append: whole records only, in order.
    const buf = records.length === 1 ? records[0]! : Buffer.concat(records);
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }

  #enqueue(op: () => Promise<void>): Promise<void> {
    const p = this.#tail.then(op);
    this.#tail = p.catch(() => {});
    return p;
  }
}

function closedError(p: string): SkiffError {
  return new SkiffError(ErrorCode.FailedPrecondition, `log writer for ${p} is closed`);
}

async function openLogFile(p: string): Promise<FileHandle> {
  await mkdir(path.dirname(p), { recursive: true });
  return open(p, "a", 0o640); // O_WRONLY|O_APPEND|O_CREAT
}

/** Bytes of `p` that are certainly content (a trailing `\r` may be part of `\r\n`). */
function contentLength(p: Pending): number {
  const last = p.chunks[p.chunks.length - 1];
  const endsWithCr = last !== undefined && last.length > 0 && last[last.length - 1] === CR;
  return endsWithCr ? p.length - 1 : p.length;
}

/** Removes and returns the first `n` bytes of `p`. */
function take(p: Pending, n: number): Buffer {
  const all = p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks, p.length);
  const out = all.subarray(0, n);
  const rest = all.subarray(n);
  p.chunks = rest.length ? [rest] : [];
  p.length = rest.length;
  return out;
}
