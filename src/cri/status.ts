/**
 * CRI Status: the readiness conditions kubelet requires. The runtime is ready once the server
 * answers; the network is ready once a CNI config is loaded.
 */
import { create } from "@bufbuild/protobuf";
import { type StatusRequest, type StatusResponse, StatusResponseSchema } from "../gen/runtime/v1/api_pb.js";

export const RUNTIME_READY = "RuntimeReady";
export const NETWORK_READY = "NetworkReady";

export type NetworkReadiness = () => Promise<{ ready: boolean; message: string }>;

/** Without a readiness probe the network is reported not ready (no CNI wired). */
export function statusHandler(network?: NetworkReadiness) {
  return async (_req: StatusRequest): Promise<StatusResponse> => {
    const net = network ? await network() : { ready: false, message: "CNI is not configured yet" };
    return create(StatusResponseSchema, {
      status: {
        conditions: [
          { type: RUNTIME_READY, status: true },
          net.ready
            ? { type: NETWORK_READY, status: true }
            : { type: NETWORK_READY, status: false, reason: "NetworkPluginNotReady", message: net.message },
        ],
      },
      info: {},
    });
  };
}

export const status = statusHandler();
