/**
 * The YAML subset the CLI reads and writes: crictl-style config files (`key: value`), pod and
 * container configs, and `-o yaml` output. Block mappings and sequences (a sequence may sit at
 * its key's indent, as kubectl writes it), plain / single- / double-quoted scalars, flow
 * collections written as JSON-like `[a, "b"]` and `{k: v}`, `|` and `>` block scalars, comments.
 * Not supported (InvalidArgument naming the line): anchors, aliases, tags, multi-line flow
 * collections, several documents. Pure functions, no I/O. The writer is in yaml-stringify.ts.
 */
import { invalidArgument } from "../errors.js";

export type Value = null | boolean | number | string | Value[] | { [k: string]: Value };

interface Line {
  indent: number;
  text: string;
  /** 1-based line number in the source, for errors. */
  no: number;
}

/** Removes a `#` comment that is not inside quotes (a `#` starts one only after a blank). */
function stripComment(s: string): string {
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || s[i - 1] === " " || s[i - 1] === "\t")) return s.slice(0, i).trimEnd();
  }
  return s.trimEnd();
}

class Parser {
  private pos = 0;
  constructor(
    private readonly lines: Line[],
    private readonly raw: string[],
    private readonly what: string,
  ) {}

  fail(no: number, msg: string): never {
    throw invalidArgument(`${this.what}: line ${no}: ${msg}`);
  }

  parseDocument(): Value {
    if (this.lines.length === 0) return null;
    const v = this.block(this.lines[0]!.indent);
    if (this.pos < this.lines.length) this.fail(this.lines[this.pos]!.no, "unexpected indentation");
    return v;
  }

  private isSeqItem(t: string): boolean {
    return t === "-" || t.startsWith("- ");
  }

  private block(indent: number): Value {
    const first = this.lines[this.pos]!;
    if (this.isSeqItem(first.text)) return this.sequence(indent);
    if (splitKey(first.text) === undefined) {
      this.pos++;
      return this.scalar(first.text, first);
    }
    return this.mapping(indent);
  }

  private sequence(indent: number): Value[] {
    const out: Value[] = [];
    while (this.pos < this.lines.length) {
      const l = this.lines[this.pos]!;
      if (l.indent !== indent || !this.isSeqItem(l.text)) break;
      const rest = l.text.slice(1).trimStart();
      if (rest === "") {
        this.pos++;
        out.push(this.nested(indent));
      } else {
        // "- key: v" starts a mapping whose keys sit where `key` is: re-read the line there.
        const inner = indent + (l.text.length - rest.length);
        this.lines[this.pos] = { indent: inner, text: rest, no: l.no };
        out.push(this.block(inner));
      }
    }
    return out;
  }

  private mapping(indent: number): { [k: string]: Value } {
    const out: { [k: string]: Value } = {};
    while (this.pos < this.lines.length) {
      const l = this.lines[this.pos]!;
      if (l.indent < indent) break;
      if (l.indent > indent) this.fail(l.no, "unexpected indentation");
      if (this.isSeqItem(l.text)) break;
      const kv = splitKey(l.text);
      if (!kv) this.fail(l.no, `expected "key: value", got ${JSON.stringify(l.text)}`);
      const key = kv[0].startsWith('"') || kv[0].startsWith("'") ? String(this.scalar(kv[0], l)) : kv[0];
      if (Object.hasOwn(out, key)) this.fail(l.no, `duplicate key ${JSON.stringify(key)}`);
      this.pos++;
      if (kv[1] === "") out[key] = this.nested(indent, true);
      else if (kv[1] === "|" || kv[1] === ">" || kv[1] === "|-" || kv[1] === ">-") out[key] = this.blockScalar(indent, l, kv[1]);
      else out[key] = this.scalar(kv[1], l);
    }
    return out;
  }

  /** The value under a `key:` or `-` with nothing after it: a deeper block, or null. */
  private nested(indent: number, allowSameIndentSeq = false): Value {
    const next = this.lines[this.pos];
    if (!next) return null;
    if (next.indent > indent) return this.block(next.indent);
    if (allowSameIndentSeq && next.indent === indent && this.isSeqItem(next.text)) return this.sequence(indent);
    return null;
  }

  private blockScalar(indent: number, l: Line, style: string): string {
    // Block scalars keep their text as written: read the raw lines, not the comment-stripped ones.
    const parts: string[] = [];
    let inner = -1;
    while (this.pos < this.lines.length && this.lines[this.pos]!.indent > indent) {
      const n = this.lines[this.pos]!;
      if (inner < 0) inner = n.indent;
      parts.push(this.raw[n.no - 1]!.slice(inner));
      this.pos++;
    }
    if (parts.length === 0) this.fail(l.no, "empty block scalar");
    const text = style.startsWith("|") ? parts.join("\n") : parts.join(" ");
    return style.endsWith("-") ? text : `${text}\n`;
  }

  scalar(s: string, l: Line): Value {
    if (s.startsWith('"')) {
      try {
        return JSON.parse(s) as string;
      } catch {
        this.fail(l.no, `bad double-quoted string ${s}`);
      }
    }
    if (s.startsWith("'")) {
      if (!s.endsWith("'") || s.length < 2) this.fail(l.no, `unterminated single-quoted string ${s}`);
      return s.slice(1, -1).replaceAll("''", "'");
    }
    if (s.startsWith("[") || s.startsWith("{")) return new FlowParser(s, (m) => this.fail(l.no, m)).parse();
    if (/^[&*!]/.test(s)) this.fail(l.no, `anchors, aliases and tags are not supported: ${s}`);
    return plain(s);
  }
}

/** Splits `key: value` (value may be empty); undefined when the line is not a mapping entry. */
function splitKey(t: string): [string, string] | undefined {
  let i = 0;
  if (t.startsWith('"') || t.startsWith("'")) {
    const q = t[0]!;
    i = 1;
    while (i < t.length && t[i] !== q) i += t[i] === "\\" && q === '"' ? 2 : 1;
    i++;
    if (t[i] !== ":") return undefined;
  } else {
    if (t.startsWith("[") || t.startsWith("{")) return undefined;
    const m = /:(\s|$)/.exec(t);
    if (!m) return undefined;
    i = m.index;
  }
  const key = t.slice(0, i).trim();
  if (key === "") return undefined;
  return [key, t.slice(i + 1).trim()];
}

/** A plain scalar: null, booleans and numbers as YAML 1.2's core schema reads them; else a string. */
export function plain(s: string): Value {
  if (s === "" || s === "~" || s === "null" || s === "Null" || s === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?(\d+|\d*\.\d+|\d+\.\d*)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return Number.parseInt(s.slice(2), 16);
  return s;
}

class FlowParser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly fail: (m: string) => never,
  ) {}

  parse(): Value {
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) this.fail(`unexpected ${JSON.stringify(this.s.slice(this.i))} after a flow collection`);
    return v;
  }

  private ws(): void {
    while (this.s[this.i] === " " || this.s[this.i] === "\t") this.i++;
  }

  private value(): Value {
    this.ws();
    const c = this.s[this.i];
    if (c === "[") {
      this.i++;
      const out: Value[] = [];
      this.ws();
      if (this.s[this.i] === "]") return this.i++, out;
      for (;;) {
        out.push(this.value());
        this.ws();
        const d = this.s[this.i++];
        if (d === "]") return out;
        if (d !== ",") this.fail(`expected "," or "]" in ${this.s}`);
      }
    }
    if (c === "{") {
      this.i++;
      const out: { [k: string]: Value } = {};
      this.ws();
      if (this.s[this.i] === "}") return this.i++, out;
      for (;;) {
        const k = this.value();
        this.ws();
        if (this.s[this.i++] !== ":") this.fail(`expected ":" in ${this.s}`);
        out[String(k)] = this.value();
        this.ws();
        const d = this.s[this.i++];
        if (d === "}") return out;
        if (d !== ",") this.fail(`expected "," or "}" in ${this.s}`);
      }
    }
    if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(this.s.slice(this.i));
      if (!m) this.fail(`unterminated string in ${this.s}`);
      this.i += m[0].length;
      return JSON.parse(m[0]) as string;
    }
    if (c === "'") {
      const m = /^'(?:[^']|'')*'/.exec(this.s.slice(this.i));
      if (!m) this.fail(`unterminated string in ${this.s}`);
      this.i += m[0].length;
      return m[0].slice(1, -1).replaceAll("''", "'");
    }
    const m = /^[^,:\]}]*/.exec(this.s.slice(this.i))!;
    this.i += m[0].length;
    return plain(m[0].trim());
  }
}

/** Parses `text`; `what` names the source in errors. InvalidArgument on anything outside the subset. */
export function parseYaml(text: string, what = "yaml"): unknown {
  const raw = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const lines: Line[] = [];
  let docs = 0;
  for (let n = 0; n < raw.length; n++) {
    const src = raw[n]!;
    if (/^\t/.test(src)) throw invalidArgument(`${what}: line ${n + 1}: tabs are not allowed for indentation`);
    const t = stripComment(src);
    if (t.trim() === "") continue;
    if (t === "---" || t === "...") {
      if (t === "---" && ++docs > 1) throw invalidArgument(`${what}: line ${n + 1}: only one document is supported`);
      if (lines.length > 0 && t === "---") throw invalidArgument(`${what}: line ${n + 1}: only one document is supported`);
      continue;
    }
    const indent = t.length - t.trimStart().length;
    lines.push({ indent, text: t.trim(), no: n + 1 });
  }
  return new Parser(lines, raw, what).parseDocument();
}
