/**
 * Parses CRI log files (the format CriLogWriter writes): used by tests and by readers of
 * container logs. Pure functions, no I/O.
 */
import { SkiffError, ErrorCode } from "../errors.js";
import type { LogStream } from "./writer.js";

export interface CriLogRecord {
  /** The timestamp exactly as written (RFC3339Nano). */
  timestamp: string;
  stream: LogStream;
  /** F: the record ends a line; P: the line continues in the next record of the same stream. */
  tag: "F" | "P";
  content: string;
}

const RECORD = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s;

/** Parses one record (without its trailing newline); InvalidArgument if malformed. */
export function parseCriLogLine(line: string): CriLogRecord {
  const m = RECORD.exec(line);
  if (!m) throw new SkiffError(ErrorCode.InvalidArgument, `malformed CRI log record: ${JSON.stringify(line.slice(0, 80))}`);
  return { timestamp: m[1]!, stream: m[2] as LogStream, tag: m[3] as "F" | "P", content: m[4]! };
}

/** Parses a whole file's text; a last line without its newline is an error (a torn record). */
export function parseCriLog(text: string): CriLogRecord[] {
  if (text === "") return [];
  if (!text.endsWith("\n")) throw new SkiffError(ErrorCode.InvalidArgument, "CRI log ends with a torn record");
  return text.slice(0, -1).split("\n").map(parseCriLogLine);
}

/**
 * Joins P…F records into whole lines per stream, in file order of each line's last record.
 * A stream's trailing P records (output that ended without a newline) form a last line too.
 */
export function joinCriLogLines(records: CriLogRecord[]): Array<{ stream: LogStream; line: string }> {
  const out: Array<{ stream: LogStream; line: string }> = [];
  const partial: Record<LogStream, string | undefined> = { stdout: undefined, stderr: undefined };
  for (const r of records) {
    const text = (partial[r.stream] ?? "") + r.content;
    if (r.tag === "F") {
      out.push({ stream: r.stream, line: text });
      partial[r.stream] = undefined;
    } else {
      partial[r.stream] = text;
    }
  }
  for (const stream of ["stdout", "stderr"] as const) {
    const rest = partial[stream];
    if (rest !== undefined) out.push({ stream, line: rest });
  }
  return out;
}
