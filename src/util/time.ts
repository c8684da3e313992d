/** Timestamps with nanosecond precision, kept as RFC 3339 strings so a shim's exit time survives exactly. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";

/** `2026-11-28T02:59:22.334272655Z` from a protobuf Timestamp. */
export function timestampToRfc3339(ts: Timestamp): string {
  const ms = Number(ts.seconds) * 1000;
  const base = new Date(ms).toISOString().slice(0, 19); // YYYY-MM-DDTHH:MM:SS
  return `${base}.${String(ts.nanos).padStart(9, "0")}Z`;
}

export function rfc3339ToTimestamp(s: string): Timestamp {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(s);
  if (!m) {
    const d = new Date(s);
    return create(TimestampSchema, { seconds: BigInt(Math.floor(d.getTime() / 1000)), nanos: (d.getTime() % 1000) * 1e6 });
  }
  const seconds = BigInt(Math.floor(Date.parse(`${m[1]}Z`) / 1000));
  const nanos = Number((m[2] ?? "").padEnd(9, "0") || "0");
  return create(TimestampSchema, { seconds, nanos });
}

export function nowRfc3339(): string {
  const ms = Date.now();
  return timestampToRfc3339(create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 }));
}

/** Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z): what a 1.6 shim sends for "not set". */
const GO_ZERO_TIME_SECONDS = -62135596800n;

/** True for an unset Timestamp, the Unix epoch, or Go's zero time (the shim's "not exited"). */
export function isZeroTimestamp(ts: Timestamp | undefined): boolean {
  return !ts || ((ts.seconds === 0n || ts.seconds <= GO_ZERO_TIME_SECONDS) && ts.nanos === 0);
}

/** The shim's exit time as RFC 3339, or now when it sent none (unset or Go's zero time). */
export function exitTimeOf(ts: Timestamp | undefined): string {
  return isZeroTimestamp(ts) ? nowRfc3339() : timestampToRfc3339(ts!);
}
