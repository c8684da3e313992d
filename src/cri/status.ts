/**
 * CRI Status: the readiness conditions kubelet requires. The runtime is ready once the server
 * answers; the network is ready once a CNI config is loaded. The runtime handlers (RuntimeClass)
 * and, when verbose, debug data (JSON values) are added when the caller supplies them.
 */
import { create } from "@bufbuild/protobuf";
import { type RuntimeHandler, type StatusRequest, type StatusResponse, StatusResponseSchema } from "../gen/runtime/v1/api_pb.js";

export const RUNTIME_READY = "RuntimeReady";
export const NETWORK_READY = "NetworkReady";

export type NetworkReadiness = () => Promise<{ ready: boolean; message: string }>;

export interface StatusExtras {
  /** `runtime_handlers` of the response (the default handler is the one named ""). */
  handlers?: () => RuntimeHandler[];
  /** The `info` map of a verbose call; each value a JSON document. */
  verboseInfo?: () => Record<string, string>;
}

/** Without a readiness probe the network is reported not ready (no CNI wired). */
export function statusHandler(network?: NetworkReadiness, extras: StatusExtras = {}) {
  return async (req: StatusRequest): Promise<StatusResponse> => {
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
      info: req.verbose && extras.verboseInfo ? extras.verboseInfo() : {},
      runtimeHandlers: extras.handlers?.() ?? [],
    });
  };
}

export const status = statusHandler();
