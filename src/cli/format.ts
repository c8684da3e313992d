/**
 * Output formatting shared by the verbs: crictl-like aligned tables, 13-character ids,
 * "x minutes ago", human sizes, and `-o json|yaml|table`. Pure functions, no I/O.
 */
import { invalidArgument } from "../errors.js";
import { stringifyYaml } from "./yaml-stringify.js";

/** Ids in tables are cut to this many characters, as crictl does. */
export const SHORT_ID = 13;

export type OutputFormat = "table" | "json" | "yaml";

export function parseOutputFormat(v: string | undefined, allowed: readonly OutputFormat[] = ["table", "json", "yaml"]): OutputFormat {
  const f = (v ?? "table") as OutputFormat;
  if (!allowed.includes(f)) throw invalidArgument(`output format ${JSON.stringify(v)}: use one of ${allowed.join(", ")}`);
  return f;
}

/** `sha256:abcd…` or a bare id → its first 13 characters (the digest's, without the algorithm). */
export function shortId(id: string): string {
  const bare = id.startsWith("sha256:") ? id.slice("sha256:".length) : id;
  return bare.slice(0, SHORT_ID);
}

/** Columns separated by at least three spaces, each as wide as its widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join("")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;

/** A past instant as "5 minutes ago" (the wording of Docker's and crictl's listings). */
export function ago(unixNanos: bigint, now = Date.now()): string {
  if (unixNanos <= 0n) return "Unknown";
  const secs = Math.max(0, (now - Number(unixNanos / 1_000_000n)) / 1000);
  let text: string;
  if (secs < 1) text = "Less than a second";
  else if (secs < 60) text = plural(Math.floor(secs), "second");
  else if (secs < 120) text = "About a minute";
  else if (secs < 3600) text = plural(Math.floor(secs / 60), "minute");
  else if (secs < 7200) text = "About an hour";
  else if (secs < 48 * 3600) text = plural(Math.floor(secs / 3600), "hour");
  else if (secs < 14 * 86400) text = plural(Math.floor(secs / 86400), "day");
  else if (secs < 60 * 86400) text = plural(Math.floor(secs / (7 * 86400)), "week");
  else if (secs < 730 * 86400) text = plural(Math.floor(secs / (30 * 86400)), "month");
  else text = plural(Math.floor(secs / (365 * 86400)), "year");
  return `${text} ago`;
}

/** Bytes with decimal units and three significant digits ("4.26MB"), as crictl prints sizes. */
export function humanSize(bytes: number | bigint): string {
  let n = Number(bytes);
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${Number(n.toPrecision(3))}${units[u]}`;
}

/** A duration in nanoseconds as "1.5s" / "20ms" / "300µs". */
export function humanNanos(ns: bigint | number): string {
  const n = Number(ns);
  if (n >= 1e9) return `${Number((n / 1e9).toPrecision(3))}s`;
  if (n >= 1e6) return `${Number((n / 1e6).toPrecision(3))}ms`;
  return `${Number((n / 1e3).toPrecision(3))}µs`;
}

/** JSON with bigints as decimal strings (protobuf JSON's convention for 64-bit numbers). */
export function toJsonText(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x), 2) + "\n";
}

/** Renders structured data as json or yaml (the table form is each verb's own). */
export function renderData(format: Exclude<OutputFormat, "table">, v: unknown): string {
  return format === "json" ? toJsonText(v) : stringifyYaml(JSON.parse(toJsonText(v)));
}

/** Splits an image reference into crictl's IMAGE and TAG columns (`<none>` when untagged). */
export function splitRepoTag(ref: string): [string, string] {
  const at = ref.indexOf("@");
  if (at >= 0) return [ref.slice(0, at), "<none>"];
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return [ref.slice(0, colon), ref.slice(colon + 1)];
  return [ref, "<none>"];
}
