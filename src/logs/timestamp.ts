/**
 * RFC3339Nano timestamps for CRI log records, formatted as Go's `time.RFC3339Nano` does on the
 * local clock: local time zone, `Z` for a zero offset, trailing zeros of the fraction trimmed
 * (and no `.` at all when the fraction is zero).
 */

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Formats `ns` (nanoseconds since the epoch) in the local time zone. */
export function formatRfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  const frac = Number(ns % 1_000_000_000n);
  let fraction = "";
  if (frac !== 0) fraction = "." + pad(frac, 9).replace(/0+$/, "");
  const offMin = -d.getTimezoneOffset();
  let zone = "Z";
  if (offMin !== 0) {
    const abs = Math.abs(offMin);
    zone = `${offMin < 0 ? "-" : "+"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  }
  return (
    `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${fraction}${zone}`
  );
}

let lastWallMs = 0;
let hrAtWallTick = 0n;

/**
 * Wall-clock time in nanoseconds. Date.now() has millisecond resolution; the sub-millisecond
 * digits come from the monotonic clock (time elapsed since the wall clock last ticked, capped
 * below 1 ms) so records written within one millisecond still carry distinct, ordered times.
 */
export function wallClockNs(): bigint {
  const wall = Date.now();
  const hr = process.hrtime.bigint();
  if (wall !== lastWallMs) {
    lastWallMs = wall;
    hrAtWallTick = hr;
  }
  let sub = hr - hrAtWallTick;
  if (sub > 999_999n) sub = 999_999n;
  return BigInt(wall) * 1_000_000n + sub;
}
