/**
 * Reads a container's CRI log file (`RFC3339Nano stream P|F content` records) for `skiff logs`:
 * the last N records, optional timestamps, and `-f` following that survives ReopenContainerLog
 * (kubelet renames the file and the runtime opens a new one at the same path: the old file is
 * drained to its end before the new one is read from its start) and truncation.
 *
 * A record is emitted only once its newline is on disk, so a line the writer is still writing is
 * never shown torn. Records that do not parse are passed through as stdout text: showing odd
 * output beats hiding it.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { watch, type FSWatcher } from "node:fs";
import * as path from "node:path";
import { parseCriLogLine, type CriLogRecord } from "../logs/parse.js";
import type { LogStream } from "../logs/writer.js";
import { notFound } from "../errors.js";

export interface LogSink {
  write(stream: LogStream, text: string): void;
}

export interface ReadLogOptions {
  /** Only the last `tail` records of what is in the file now (follow then shows everything new). */
  tail?: number;
  timestamps?: boolean;
  follow?: boolean;
  /** Follow stops once this answers false and the file is drained (the container exited). */
  stillWriting?: () => Promise<boolean>;
  /** How often to look for new data when no file event arrives (ms). */
  pollMs?: number;
  signal?: AbortSignal;
}

/** The text `logs` prints for one record: content, newline only on an F record. */
export function formatRecord(r: CriLogRecord, timestamps = false): string {
  return `${timestamps ? `${r.timestamp} ` : ""}${r.content}${r.tag === "F" ? "\n" : ""}`;
}

/** Parses whole lines; a line that is not a CRI record becomes a full stdout line. */
export function parseRecords(lines: string[]): CriLogRecord[] {
  return lines.map((l) => {
    try {
      return parseCriLogLine(l);
    } catch {
      return { timestamp: "", stream: "stdout", tag: "F", content: l };
    }
  });
}

/** Splits `buf` after its last newline: the whole lines and the unfinished rest. */
export function splitLines(text: string): { lines: string[]; rest: string } {
  const end = text.lastIndexOf("\n");
  if (end < 0) return { lines: [], rest: text };
  return { lines: text.slice(0, end).split("\n"), rest: text.slice(end + 1) };
}

/** Follows one open file from a byte offset; returns what became whole lines since the last call. */
class Cursor {
  private rest = Buffer.alloc(0);
  constructor(
    readonly fh: FileHandle,
    readonly ino: number,
    private pos = 0,
  ) {}

  async readLines(): Promise<string[]> {
    const { size } = await this.fh.stat();
    if (size < this.pos) {
      // Truncated in place: start over from its new beginning.
      this.pos = 0;
      this.rest = Buffer.alloc(0);
    }
    const chunks: Buffer[] = [this.rest];
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.pos);
      if (bytesRead === 0) break;
      this.pos += bytesRead;
      chunks.push(buf.subarray(0, bytesRead));
    }
    const all = Buffer.concat(chunks);
    const end = all.lastIndexOf(0x0a);
    if (end < 0) {
      this.rest = all;
      return [];
    }
    this.rest = Buffer.from(all.subarray(end + 1));
    return all.subarray(0, end).toString("utf8").split("\n");
  }
}

async function openCursor(file: string): Promise<Cursor | undefined> {
  try {
    const fh = await open(file, "r");
    return new Cursor(fh, (await fh.stat()).ino);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Writes the log at `file` to `sink`; with `follow`, keeps going until the signal aborts or
 * `stillWriting` says the writer is done. NotFound if the file does not exist at the start.
 */
export async function readLog(file: string, sink: LogSink, opts: ReadLogOptions = {}): Promise<void> {
  let cur = await openCursor(file);
  if (!cur) throw notFound(`log file ${file} does not exist`);
  const emit = (lines: string[]) => {
    for (const r of parseRecords(lines)) sink.write(r.stream, formatRecord(r, opts.timestamps));
  };
  try {
    const first = await cur.readLines();
    emit(opts.tail !== undefined && opts.tail >= 0 ? first.slice(Math.max(0, first.length - opts.tail)) : first);
    if (!opts.follow) return;
    const wake = new Waker(path.dirname(file), opts.pollMs ?? 250, opts.signal);
    try {
      let lastCheck = 0;
      while (!opts.signal?.aborted) {
        await wake.next();
        emit(await cur.readLines());
        const now = await stat(file).catch(() => undefined);
        if (now && now.ino !== cur.ino) {
          // Rotated: whatever reached the old file before the switch comes first.
          emit(await cur.readLines());
          const next = await openCursor(file);
          if (next) {
            await cur.fh.close();
            cur = next;
            emit(await cur.readLines());
          }
        }
        if (opts.stillWriting && Date.now() - lastCheck > 1000) {
          lastCheck = Date.now();
          if (!(await opts.stillWriting())) {
            emit(await cur.readLines());
            return;
          }
        }
      }
    } finally {
      wake.close();
    }
  } finally {
    await cur.fh.close().catch(() => {});
  }
}

/** Resolves `next()` on a change in the directory, after `pollMs`, or when the signal aborts. */
class Waker {
  private watcher: FSWatcher | undefined;
  private pending: (() => void) | undefined;
  private readonly onAbort = () => this.pending?.();

  constructor(
    dir: string,
    private readonly pollMs: number,
    private readonly signal?: AbortSignal,
  ) {
    try {
      this.watcher = watch(dir, () => this.pending?.());
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      this.watcher = undefined; // polling alone still works
    }
    signal?.addEventListener("abort", this.onAbort);
  }

  next(): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, this.pollMs);
      const self = this;
      function done() {
        clearTimeout(t);
        self.pending = undefined;
        resolve();
      }
      this.pending = done;
      if (this.signal?.aborted) done();
    });
  }

  close(): void {
    this.watcher?.close();
    this.signal?.removeEventListener("abort", this.onAbort);
    this.pending?.();
  }
}
