/**
 * CRI Status: the readiness conditions kubelet requires. The runtime is ready once the server
 * answers; networking is reported not ready because skiff has no CNI set-up yet.
 */
import { create } from "@bufbuild/protobuf";
import { type StatusRequest, type StatusResponse, StatusResponseSchema } from "../gen/runtime/v1/api_pb.js";

export const RUNTIME_READY = "RuntimeReady";
export const NETWORK_READY = "NetworkReady";

export function status(_req: StatusRequest): StatusResponse {
  return create(StatusResponseSchema, {
    status: {
      conditions: [
        { type: RUNTIME_READY, status: true },
        { type: NETWORK_READY, status: false, reason: "NetworkPluginNotReady", message: "CNI is not configured yet" },
      ],
    },
    // Nothing useful to report yet, verbose or not.
    info: {},
  });
}
