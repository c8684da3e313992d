/**
 * `google.protobuf.Any` helpers for containerd 1.6 wire compatibility.
 *
 * containerd 1.6 (gogo typeurl) writes `Any.type_url` as the bare full message name
 * (`containerd.runc.v1.Options`) and looks types up by that exact string, so a
 * `type.googleapis.com/` prefix (what `@bufbuild/protobuf`'s `anyPack` writes) makes a 1.6 shim
 * fail to decode its options. We always write bare names and accept both forms when reading.
 *
 * A few Anys carry JSON instead of protobuf: containerd registers OCI runtime-spec Go structs with
 * typeurl under `types.containerd.io/opencontainers/runtime-spec/<major>/<Name>`, and the value is
 * the struct's JSON encoding. See `packJsonAny` / `unpackJsonAny`.
 *
 * All functions are pure; decoding failures throw SkiffError InvalidArgument.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, Message, MessageShape, Registry } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import type { Any } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors.js";

export type { Any } from "@bufbuild/protobuf/wkt";

const OCI_RUNTIME_SPEC_PREFIX = "types.containerd.io/opencontainers/runtime-spec/1";
/** JSON `specs.Spec` (a whole config.json). */
export const OCI_SPEC_TYPE_URL = `${OCI_RUNTIME_SPEC_PREFIX}/Spec`;
/** JSON `specs.Process`: `ExecProcessRequest.spec`. */
export const OCI_PROCESS_TYPE_URL = `${OCI_RUNTIME_SPEC_PREFIX}/Process`;
/** JSON `specs.LinuxResources`: `UpdateTaskRequest.resources`. */
export const OCI_LINUX_RESOURCES_TYPE_URL = `${OCI_RUNTIME_SPEC_PREFIX}/LinuxResources`;

/**
 * The message name an Any's type URL refers to: the part after the last `/`
 * (`type.googleapis.com/a.B` and `a.B` both give `a.B`). Empty for an empty URL.
 */
export function typeNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf("/");
  return slash >= 0 ? typeUrl.slice(slash + 1) : typeUrl;
}

/** Packs `message` into an Any whose type URL is the bare message name. */
export function packAny<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Any {
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, message) });
}

/** True if `any` holds a message of the given schema or full type name (bare or prefixed URL). */
export function anyIs(any: Any | undefined, schemaOrName: DescMessage | string): boolean {
  if (!any || any.typeUrl === "") return false;
  const want = typeof schemaOrName === "string" ? schemaOrName : schemaOrName.typeName;
  return typeNameOf(any.typeUrl) === want;
}

/**
 * Unpacks a protobuf Any.
 *
 * - With one schema: returns the message if the Any holds that type, else undefined.
 * - With a list of schemas or a Registry: returns the message of whichever type it holds, or
 *   undefined if the type is unknown (e.g. a JSON OCI Any).
 * An empty or missing Any gives undefined. Bytes that do not decode as the named type throw
 * InvalidArgument.
 */
export function unpackAny<Desc extends DescMessage>(any: Any | undefined, schema: Desc): MessageShape<Desc> | undefined;
export function unpackAny(any: Any | undefined, registry: Registry | readonly DescMessage[]): Message | undefined;
export function unpackAny(
  any: Any | undefined,
  from: DescMessage | Registry | readonly DescMessage[],
): Message | undefined {
  if (!any || any.typeUrl === "") return undefined;
  const name = typeNameOf(any.typeUrl);
  let desc: DescMessage | undefined;
  if (isDescList(from)) desc = from.find((d) => d.typeName === name);
  else if (from.kind === "message") desc = from.typeName === name ? from : undefined;
  else desc = from.getMessage(name);
  if (!desc) return undefined;
  try {
    return fromBinary(desc, any.value);
  } catch (err) {
    throw invalidArgument(`malformed Any payload for ${any.typeUrl}`, err);
  }
}

function isDescList(v: DescMessage | Registry | readonly DescMessage[]): v is readonly DescMessage[] {
  return Array.isArray(v);
}

/**
 * Packs a JSON-encodable value as containerd does for OCI runtime-spec types: the type URL is
 * used as given (it is not a protobuf name) and the value is the UTF-8 JSON text.
 * Field names must already follow the OCI JSON spelling (`noNewPrivileges`, `consoleSize`...).
 */
export function packJsonAny(typeUrl: string, obj: unknown): Any {
  if (typeUrl === "") throw invalidArgument("packJsonAny: empty type URL");
  const json = JSON.stringify(obj);
  if (json === undefined) throw invalidArgument(`packJsonAny: value for ${typeUrl} is not JSON-encodable`);
  return create(AnySchema, { typeUrl, value: new TextEncoder().encode(json) });
}

/**
 * Parses the JSON value of an Any produced by `packJsonAny` (or by containerd). If
 * `expectedTypeUrl` is given, the Any must carry exactly that URL. The result is not validated
 * beyond being JSON; callers check the shape they need.
 */
export function unpackJsonAny<T = unknown>(any: Any | undefined, expectedTypeUrl?: string): T {
  if (!any || any.typeUrl === "") throw invalidArgument("unpackJsonAny: empty Any");
  if (expectedTypeUrl !== undefined && any.typeUrl !== expectedTypeUrl) {
    throw invalidArgument(`unpackJsonAny: type URL ${any.typeUrl}, want ${expectedTypeUrl}`);
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(any.value)) as T;
  } catch (err) {
    throw invalidArgument(`malformed JSON payload for ${any.typeUrl}`, err);
  }
}
