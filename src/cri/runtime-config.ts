/**
 * Runtime-wide configuration RPCs: RuntimeConfig (the cgroup driver kubelet must match),
 * UpdateRuntimeConfig (the node's pod CIDR from kubelet), and Status with the runtime handlers
 * and verbose debug data. GetContainerEvents rides along (events-rpc.ts) so the runtime wires all
 * of these with one spread.
 *
 * The pod CIDR is kept in memory, as containerd keeps it: kubelet sends it again after every
 * restart of either side. skiff's CNI config is a fixed conflist (installed or the operator's),
 * so the CIDR is validated, stored and reported (Status verbose `config`); it does not rewrite the
 * network config the way containerd's optional conf template does.
 */
import { isIP } from "node:net";
import { create } from "@bufbuild/protobuf";
import {
  CgroupDriver,
  RuntimeConfigResponseSchema,
  UpdateRuntimeConfigResponseSchema,
  type UpdateRuntimeConfigRequest,
} from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { RuntimeServiceImpl } from "./server.js";
import { statusHandler, type NetworkReadiness } from "./status.js";
import { runtimeHandlers, runtimeHandlersToProto } from "./handlers.js";
import { eventsRpcs } from "./events-rpc.js";
import type { ContainerEvents } from "./container-events.js";

/** What UpdateRuntimeConfig last set. One per runtime; event-loop use only. */
export class RuntimeNetworkState {
  /** The node's pod CIDRs, in kubelet's order (IPv4 and/or IPv6); empty until kubelet sends them. */
  podCidrs: string[] = [];
}

/**
 * Parses kubelet's pod CIDR field: one CIDR or a comma-separated dual-stack pair. "" means
 * "not set" (kubelet sends it before the node has a CIDR); anything malformed is InvalidArgument.
 */
export function parsePodCidrs(raw: string): string[] {
  const trimmed = raw.trim();
  if (!trimmed) return [];
  const shown = raw.length > 128 ? `${raw.slice(0, 128)}…` : raw;
  const out = trimmed.split(",").map((s) => s.trim());
  for (const cidr of out) {
    const slash = cidr.indexOf("/");
    const addr = slash < 0 ? "" : cidr.slice(0, slash);
    const bits = slash < 0 ? "" : cidr.slice(slash + 1);
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (!family || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
      throw invalidArgument(`UpdateRuntimeConfig: pod_cidr "${shown}": "${cidr.slice(0, 64)}" is not a CIDR`);
    }
  }
  if (out.length > 2) throw invalidArgument(`UpdateRuntimeConfig: pod_cidr "${shown}" has more than two CIDRs`);
  return out;
}

export interface RuntimeConfigDeps {
  cfg: Config;
  log: Logger;
  network: NetworkReadiness;
  events: ContainerEvents;
  state?: RuntimeNetworkState;
}

/**
 * RuntimeConfig, UpdateRuntimeConfig, Status (replacing the plain one: spread it after the
 * pod and container handlers) and GetContainerEvents.
 */
export function runtimeConfigRpcs(deps: RuntimeConfigDeps): Partial<RuntimeServiceImpl> {
  const { cfg, log } = deps;
  const state = deps.state ?? new RuntimeNetworkState();
  return {
    ...eventsRpcs(deps.events),
    runtimeConfig() {
      const driver = cfg.cri.cgroupDriver === "systemd" ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS;
      return create(RuntimeConfigResponseSchema, { linux: { cgroupDriver: driver } });
    },
    updateRuntimeConfig(req: UpdateRuntimeConfigRequest) {
      const cidrs = parsePodCidrs(req.runtimeConfig?.networkConfig?.podCidr ?? "");
      // An empty CIDR leaves the stored one (kubelet sends "" before the node has one).
      if (cidrs.length && cidrs.join(",") !== state.podCidrs.join(",")) {
        state.podCidrs = cidrs;
        log.info({ podCidrs: cidrs }, "pod CIDR updated");
      }
      return create(UpdateRuntimeConfigResponseSchema, {});
    },
    status: statusHandler(deps.network, {
      handlers: () => runtimeHandlersToProto(cfg),
      verboseInfo: () => ({
        runtimeHandlers: JSON.stringify(runtimeHandlers(cfg)),
        config: JSON.stringify({
          defaultRuntime: cfg.defaultRuntime,
          cgroupDriver: cfg.cri.cgroupDriver,
          sandboxImage: cfg.cri.sandboxImage,
          cniConfDir: cfg.cni.confDir,
          podCidrs: state.podCidrs,
        }),
      }),
    }),
  };
}
