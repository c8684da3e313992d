/**
 * Reading the JSON or YAML files `runp`, `create` and `run` take (crictl's format: the CRI
 * message in proto JSON, snake_case field names or lowerCamelCase), and turning CRI messages into
 * the JSON `inspect` prints. A file with an unknown field or a wrong type is InvalidArgument
 * naming the file: a typo must not silently drop a setting.
 */
import { readFile } from "node:fs/promises";
import { fromJson, toJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { invalidArgument } from "../errors.js";
import { parseYaml } from "./yaml.js";

/** Parses `text` (JSON, or YAML when it does not start like JSON) into a message of `schema`. */
export function parseMessage<D extends DescMessage>(schema: D, text: string, file: string): MessageShape<D> {
  let doc: unknown;
  const t = text.trimStart();
  if (t.startsWith("{")) {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw invalidArgument(`${file}: not valid JSON: ${(err as Error).message}`, err);
    }
  } else {
    doc = parseYaml(text, file);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw invalidArgument(`${file}: expected a ${schema.typeName} object`);
  }
  try {
    return fromJson(schema, doc as JsonValue);
  } catch (err) {
    throw invalidArgument(`${file}: not a valid ${schema.typeName}: ${(err as Error).message}`, err);
  }
}

export async function loadMessage<D extends DescMessage>(schema: D, file: string): Promise<MessageShape<D>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw invalidArgument(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
  return parseMessage(schema, text, file);
}

/** proto JSON of a message (lowerCamelCase, 64-bit numbers as strings), as crictl prints it. */
export function messageJson<D extends DescMessage>(schema: D, msg: MessageShape<D>): JsonValue {
  return toJson(schema, msg, { alwaysEmitImplicit: true });
}

/**
 * A verbose `info` map as structured data: each value is JSON text in CRI (containerd puts its
 * whole internal state there); values that are not JSON stay strings.
 */
export function infoJson(info: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}
