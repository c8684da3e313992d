/**
 * Typed unary calls on top of `TtrpcClient.call`, using @bufbuild/protobuf schemas (generated
 * code lives in src/gen; this helper only needs the schema objects).
 */
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type Message,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { internal } from "../errors.js";
import type { CallOptions, TtrpcClient } from "./client.js";

/**
 * Encodes `input` (a message or its init shape) with `inSchema`, calls `service/method`, and
 * decodes the reply with `outSchema`. Call errors pass through unchanged; a reply that does not
 * parse as `outSchema` rejects with Internal.
 *
 * Two typings of the same function: generic over schemas (what inference picks, and what
 * wrappers generic over `DescMessage` need), or over message types for explicit type arguments
 * such as `unaryCall<StateRequest, StateResponse>(...)`.
 */
export function unaryCall<I extends DescMessage, O extends DescMessage>(
  client: TtrpcClient,
  service: string,
  method: string,
  inSchema: I,
  input: MessageShape<I> | MessageInitShape<I>,
  outSchema: O,
  opts?: CallOptions,
): Promise<MessageShape<O>>;
export function unaryCall<I extends Message, O extends Message>(
  client: TtrpcClient,
  service: string,
  method: string,
  inSchema: GenMessage<I>,
  input: I | MessageInitShape<GenMessage<I>>,
  outSchema: GenMessage<O>,
  opts?: CallOptions,
): Promise<O>;
export async function unaryCall(
  client: TtrpcClient,
  service: string,
  method: string,
  inSchema: DescMessage,
  input: MessageInitShape<DescMessage>,
  outSchema: DescMessage,
  opts?: CallOptions,
): Promise<Message> {
  const payload = toBinary(inSchema, create(inSchema, input));
  const reply = await client.call(service, method, payload, opts);
  try {
    return fromBinary(outSchema, reply);
  } catch (err) {
    throw internal(`ttrpc: ${service}/${method}: cannot decode ${outSchema.typeName}: ${(err as Error).message}`, err);
  }
}
