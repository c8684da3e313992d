/**
 * GetContainerEvents: a server stream of container and pod sandbox lifecycle events, one
 * subscription of the broadcaster per call. The stream lasts until the client cancels (the call's
 * signal), the daemon shuts down (the stream ends OK), or the subscriber is dropped for not
 * reading (ResourceExhausted; see container-events.ts).
 *
 * A dropped subscriber's handler is usually stuck in a write the client does not drain (HTTP/2
 * flow control), where no status can be sent: the call is reset with ENHANCE_YOUR_CALM, which
 * gRPC clients report as RESOURCE_EXHAUSTED, and the handler ends with the drop error.
 */
import { constants as h2 } from "node:http2";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ContainerEventResponseSchema,
  ContainerEventType as PbContainerEventType,
  type ContainerEventResponse,
  type GetEventsRequest,
} from "../gen/runtime/v1/api_pb.js";
import { canceled } from "../errors.js";
import { containerStatusToProto, podStatusToProto } from "./convert.js";
import type { ContainerEvent, ContainerEventType, ContainerEvents } from "./container-events.js";
import { RESET_CALL, type RuntimeServiceImpl } from "./server.js";

const EVENT_TYPE: Record<ContainerEventType, PbContainerEventType> = {
  created: PbContainerEventType.CONTAINER_CREATED_EVENT,
  started: PbContainerEventType.CONTAINER_STARTED_EVENT,
  stopped: PbContainerEventType.CONTAINER_STOPPED_EVENT,
  deleted: PbContainerEventType.CONTAINER_DELETED_EVENT,
};

export function containerEventToProto(ev: ContainerEvent): ContainerEventResponse {
  return create(ContainerEventResponseSchema, {
    containerId: ev.containerId,
    containerEventType: EVENT_TYPE[ev.type],
    createdAt: ev.createdAtNs,
    ...(ev.pod ? { podSandboxStatus: podStatusToProto(ev.pod) } : {}),
    containersStatuses: ev.containers.map(containerStatusToProto),
  });
}

/** The events handler over the broadcaster (which the container service owns). */
export function eventsRpcs(events: ContainerEvents): Pick<RuntimeServiceImpl, "getContainerEvents"> {
  return {
    async *getContainerEvents(_req: GetEventsRequest, ctx: HandlerContext) {
      const sub = events.subscribe();
      let dropped: Error | undefined;
      const reset = ctx.values.get(RESET_CALL);
      sub.onDrop((err) => {
        dropped = err;
        reset?.(h2.NGHTTP2_ENHANCE_YOUR_CALM);
      });
      try {
        for (;;) {
          let ev: ContainerEvent | undefined;
          try {
            // Rejects with ResourceExhausted when this subscriber was dropped for not reading.
            ev = await sub.next(ctx.signal);
          } catch (err) {
            // Dropped (the reset also aborts the signal), else the client went away or the
            // deadline passed: Canceled, not an internal fault.
            if (dropped) throw dropped;
            if (ctx.signal.aborted) throw canceled("GetContainerEvents: the subscriber went away", err);
            throw err;
          }
          if (!ev) return;
          try {
            yield containerEventToProto(ev);
          } catch (err) {
            // The write failed because the stream was reset for the drop: report the drop.
            if (dropped) throw dropped;
            throw err;
          }
        }
      } finally {
        sub.close();
      }
    },
  };
}
