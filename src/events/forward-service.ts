/**
 * ttrpc transport handler for `containerd.services.events.ttrpc.v1.Events/Forward`, the call a
 * shim makes on `TTRPC_ADDRESS` to publish a task event. No logic beyond decode → publish.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EmptySchema, timestampDate } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors.js";
import { ForwardRequestSchema } from "../gen/containerd/services/ttrpc/events/v1/events_pb.js";
import type { Envelope as EnvelopeProto } from "../gen/containerd/services/ttrpc/events/v1/events_pb.js";
import type { Envelope, EventExchange } from "./exchange.js";

export const EVENTS_SERVICE = "containerd.services.events.ttrpc.v1.Events";
export const FORWARD_METHOD = "Forward";

/** What a ttrpc handler receives besides the payload (a subset of the ttrpc server's context). */
export interface ForwardContext {
  service: string;
  method: string;
  metadata: Map<string, string[]>;
  signal: AbortSignal;
}

/**
 * The part of `TtrpcServer` (src/ttrpc) this module needs, stated structurally so the events
 * package does not depend on the server's construction.
 */
export interface TtrpcRegistrar {
  register(service: string, method: string, handler: (payload: Uint8Array, ctx: ForwardContext) => Promise<Uint8Array>): void;
}

const EMPTY = toBinary(EmptySchema, create(EmptySchema));

/** Registers Events/Forward on `server`; each forwarded envelope is published on `exchange`. */
export function registerEventsService(server: TtrpcRegistrar, exchange: EventExchange): void {
  server.register(EVENTS_SERVICE, FORWARD_METHOD, async (payload) => {
    exchange.publish(decodeForwardRequest(payload));
    return EMPTY;
  });
}

/**
 * Decodes a ForwardRequest into an exchange envelope. Throws InvalidArgument for malformed bytes,
 * a missing envelope or event, or an invalid topic / namespace (checked again by `publish`).
 * A missing timestamp is replaced by the receive time.
 */
export function decodeForwardRequest(payload: Uint8Array): Envelope {
  let req;
  try {
    req = fromBinary(ForwardRequestSchema, payload);
  } catch (err) {
    throw invalidArgument("Events.Forward: malformed ForwardRequest", err);
  }
  return toEnvelope(req.envelope);
}

function toEnvelope(env: EnvelopeProto | undefined): Envelope {
  if (!env) throw invalidArgument("Events.Forward: envelope required");
  if (!env.event) throw invalidArgument(`Events.Forward: event ${env.topic}: payload required`);
  if (!env.topic.startsWith("/")) throw invalidArgument(`Events.Forward: invalid topic ${JSON.stringify(env.topic)}`);
  if (env.namespace === "") throw invalidArgument(`Events.Forward: event ${env.topic}: namespace required`);
  return {
    timestamp: env.timestamp ? timestampDate(env.timestamp) : new Date(),
    namespace: env.namespace,
    topic: env.topic,
    event: env.event,
  };
}
