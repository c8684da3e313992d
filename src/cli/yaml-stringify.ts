/**
 * Writes JSON-like data as block YAML (`-o yaml`) that `parseYaml` reads back to an equal value:
 * strings that a reader would take for another type or for YAML syntax are double-quoted.
 */
import { plain } from "./yaml.js";

const PLAIN_SAFE = /^[A-Za-z0-9_/.][A-Za-z0-9_./@+=-]*( [A-Za-z0-9_./@+=-]+)*$/;

function scalarOut(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean" || typeof v === "number") return String(v);
  if (typeof v === "bigint") return v.toString();
  const s = String(v);
  // Quote anything a reader would take for another type or for YAML syntax.
  // YAML 1.1 readers also take yes/no/on/off and .inf/.nan for other types.
  const other = /^(y|n|yes|no|on|off|[-+]?\.inf|\.nan)$/i.test(s);
  return PLAIN_SAFE.test(s) && typeof plain(s) === "string" && !other ? s : JSON.stringify(s);
}

function emit(v: unknown, indent: number, out: string[]): void {
  const pad = " ".repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isContainer(item) && !isEmpty(item)) {
        const sub: string[] = [];
        emit(item, indent + 2, sub);
        out.push(`${pad}- ${sub[0]!.trimStart()}`, ...sub.slice(1));
      } else out.push(`${pad}- ${inline(item)}`);
    }
    return;
  }
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (val === undefined) continue;
    if (isContainer(val) && !isEmpty(val)) {
      out.push(`${pad}${scalarOut(k)}:`);
      emit(val, Array.isArray(val) ? indent : indent + 2, out);
    } else out.push(`${pad}${scalarOut(k)}: ${inline(val)}`);
  }
}

const isContainer = (v: unknown): v is object => typeof v === "object" && v !== null;
const isEmpty = (v: object) => (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);
const inline = (v: unknown) => (isContainer(v) ? (Array.isArray(v) ? "[]" : "{}") : scalarOut(v));

/** Writes `v` (JSON-like data) as block YAML that `parseYaml` reads back to an equal value. */
export function stringifyYaml(v: unknown): string {
  if (!isContainer(v) || isEmpty(v)) return `${inline(v)}\n`;
  const out: string[] = [];
  emit(v, 0, out);
  return `${out.join("\n")}\n`;
}
