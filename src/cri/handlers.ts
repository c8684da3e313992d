/**
 * Runtime handlers (Kubernetes RuntimeClass): the names a RunPodSandbox may ask for, each mapped
 * by the config to a shim and an OCI runtime binary (`[runtimes.NAME]`). A pod's containers run
 * with the pod's handler (the pod's shim runs them all).
 *
 * Status reports them in `runtime_handlers`, as containerd does: the default handler once under
 * the empty name (what kubelet uses for pods without a RuntimeClass) and every handler under its
 * own name, each with the features skiff supports for it.
 */
import { create } from "@bufbuild/protobuf";
import { RuntimeHandlerSchema, type RuntimeHandler } from "../gen/runtime/v1/api_pb.js";
import type { Config, RuntimeHandlerConfig } from "../config.js";

export interface HandlerFeatures {
  /** Recursive read-only mounts: not offered yet (skiff's spec generation does not ask for them). */
  recursiveReadOnlyMounts: boolean;
  /** User namespaces: not offered yet (RunPodSandbox refuses userns options). */
  userNamespaces: boolean;
}

export interface HandlerInfo extends RuntimeHandlerConfig {
  name: string;
  isDefault: boolean;
  features: HandlerFeatures;
}

const FEATURES: HandlerFeatures = { recursiveReadOnlyMounts: false, userNamespaces: false };

/** Every configured handler, by name, the default first. */
export function runtimeHandlers(cfg: Config): HandlerInfo[] {
  return Object.entries(cfg.runtimes)
    .map(([name, rc]) => ({ name, ...rc, isDefault: name === cfg.defaultRuntime, features: { ...FEATURES } }))
    .sort((a, b) => Number(b.isDefault) - Number(a.isDefault) || a.name.localeCompare(b.name));
}

/** `StatusResponse.runtime_handlers`: the default under "" and then every handler by name. */
export function runtimeHandlersToProto(cfg: Config): RuntimeHandler[] {
  const all = runtimeHandlers(cfg);
  const def = all.find((h) => h.isDefault);
  const entry = (name: string, f: HandlerFeatures) =>
    create(RuntimeHandlerSchema, { name, features: { recursiveReadOnlyMounts: f.recursiveReadOnlyMounts, userNamespaces: f.userNamespaces } });
  return [...(def ? [entry("", def.features)] : []), ...all.map((h) => entry(h.name, h.features))];
}
