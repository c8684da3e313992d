/**
 * CNI wire types (spec 1.0.0, with the fields of 0.3.x/0.4.0 results that are still common).
 * These mirror the JSON the plugins read on stdin and print on stdout; nothing here is protobuf.
 */

/** One plugin entry of a conflist; `type` names the binary, the rest is plugin-specific. */
export interface CniPluginConf {
  type: string;
  /** Capabilities the plugin accepts through `runtimeConfig` (e.g. `{ portMappings: true }`). */
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A network configuration list (`.conflist`), or a single `.conf` lifted into one. */
export interface CniConfList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: CniPluginConf[];
}

/** A loaded conflist together with the file it came from (for error messages). */
export interface LoadedConfList {
  file: string;
  conf: CniConfList;
}

/** CRI-style port mapping, passed to plugins with the `portMappings` capability. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** "tcp" (default), "udp" or "sctp". */
  protocol?: string;
  hostIP?: string;
}

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

export interface CniIPConfig {
  /** CIDR notation: the address and its prefix, e.g. "10.88.0.5/24". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
  /** 0.3.x results carry "4" or "6" here. */
  version?: string;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A plugin's ADD result. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: CniDNS;
  [key: string]: unknown;
}

/** A plugin's error, printed on stdout with a non-zero exit. */
export interface CniErrorResult {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

/** Spec well-known error codes (1–99 reserved for the spec). */
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
} as const;
