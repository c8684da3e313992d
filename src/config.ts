/**
 * skiffd configuration: one TOML file, every key optional, every default here.
 * The README documents each key; keep the two in step.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { parse as parseToml } from "smol-toml";
import { invalidArgument } from "./errors.js";
import type { RegistryHostConfig } from "./registry/hosts.js";
import { defaultDoctorConfig, doctorFromObject, type DoctorConfig } from "./doctor/config.js";

export interface RuntimeHandlerConfig {
  /** Shim binary (runtime v2 `start` / `delete` protocol). */
  shim: string;
  /** OCI runtime binary passed to the shim as runc Options.binary_name ("" = the shim's default, runc). */
  binaryName: string;
  /** runc root passed as Options.root ("" = the shim's default /run/containerd/runc). */
  runcRoot: string;
}

export interface Config {
  /** CRI gRPC socket; the shims' event socket is `${socket}.ttrpc`. */
  socket: string;
  /** Debug/task API socket used by the `skiff task` CLI. */
  debugSocket: string;
  /** Durable state: meta.db, content, snapshots. */
  root: string;
  /** Volatile state: bundles, netns, streaming sockets. */
  state: string;
  /** containerd namespace the shims run in (runc state lives under /run/containerd/runc/<namespace>). */
  namespace: string;
  /** Handler name → shim settings. "runc" always exists. */
  runtimes: Record<string, RuntimeHandlerConfig>;
  defaultRuntime: string;
  timeouts: {
    /** Bound on one ttrpc call to a shim during teardown (the work is retried after it). */
    shimCallMs: number;
    /** How long `start` of a shim may take. */
    shimStartMs: number;
    /** How long to wait for a shim process to exit after Shutdown before retrying. */
    shimExitMs: number;
  };
  teardown: { initialBackoffMs: number; maxBackoffMs: number };
  logLevel: string;
  /** "overlayfs" (falls back to "native" where overlay cannot mount) or "native". */
  snapshotter: "overlayfs" | "native";
  /** Build the built-in pause and busybox images at start-up when missing. */
  builtinImages: boolean;
  /** The static pause program the built-in pause image is made from (built by `make build`). */
  pauseBinary: string;
  /** The helper that runs commands for the daemon (built by `make build`); "" = Node's spawn. */
  spawnerBinary: string;
  registry: {
    /** A blob download receiving no bytes for this long fails the pull (DeadlineExceeded). */
    stallTimeoutMs: number;
    /** Parallel layer downloads per pull. */
    concurrency: number;
    /** Per registry name or mirror host settings (`[registry.hosts."HOST"]`), in file order. */
    hosts: RegistryHostConfig[];
  };
  cri: {
    /** Image of every pod's pause container (pulled if missing; the built-in one by default). */
    sandboxImage: string;
    /** Cap on ExecSync output per stream; what is beyond is dropped. */
    execSyncMaxOutputBytes: number;
    /** Cgroup driver reported by RuntimeConfig: "cgroupfs" (what skiff's cgroup paths are) or "systemd". */
    cgroupDriver: "cgroupfs" | "systemd";
    /** Events a GetContainerEvents subscriber may leave unread before it is dropped. */
    containerEventsQueue: number;
  };
  streaming: {
    /** Address the exec/attach/port-forward server listens on (its URLs name it). */
    address: string;
    /** TCP port; 0 picks a free one at start-up. */
    port: number;
    /** How long a URL returned by Exec/Attach/PortForward stays valid before its first use. */
    tokenTtlMs: number;
    /** A stream with no traffic for this long is closed (its exec process is killed). */
    idleTimeoutMs: number;
    /** Concurrent streaming connections; more are refused. */
    maxStreams: number;
    /** PEM certificate and key for HTTPS; both "" serves plain HTTP. */
    tlsCert: string;
    tlsKey: string;
    /** The helper that relays a port-forward connection inside a pod's network namespace. */
    portRelayBinary: string;
  };
  /** `[doctor]`: the periodic drift check (see src/doctor/config.ts). */
  doctor: DoctorConfig;
  cni: {
    /** Where the network conflist is read; a default one is installed when it holds none. */
    confDir: string;
    /** Plugin binary directories, in lookup order. */
    binDirs: string[];
    /** Subnet of the default conflist (only used when skiff installs it). */
    defaultSubnet: string;
    /** Bridge device of the default conflist. */
    defaultBridge: string;
    /** Bound on one plugin run. */
    pluginTimeoutMs: number;
  };
}

/** The package root, from both dist/ (built) and src/ (tsx). */
const PACKAGE_ROOT = path.resolve(import.meta.dirname, "..");

export function defaultConfig(): Config {
  return {
    socket: "/run/skiff/skiff.sock",
    debugSocket: "/run/skiff/debug.sock",
    root: "/var/lib/skiff",
    state: "/run/skiff",
    namespace: "skiff",
    runtimes: { runc: { shim: "containerd-shim-runc-v2", binaryName: "", runcRoot: "" }, ...crunHandler() },
    defaultRuntime: "runc",
    timeouts: { shimCallMs: 10_000, shimStartMs: 10_000, shimExitMs: 5_000 },
    teardown: { initialBackoffMs: 1_000, maxBackoffMs: 300_000 },
    logLevel: "info",
    snapshotter: "overlayfs",
    builtinImages: true,
    pauseBinary: path.join(PACKAGE_ROOT, "dist", "native", "pause"),
    spawnerBinary: path.join(PACKAGE_ROOT, "dist", "native", "skiff-spawner"),
    registry: { stallTimeoutMs: 60_000, concurrency: 3, hosts: [] },
    // Both streams together must fit kubelet's 16 MiB message: 8 MiB each, less room for framing.
    cri: {
      sandboxImage: "registry.k8s.io/pause:3.9",
      execSyncMaxOutputBytes: 8 * 1024 * 1024 - 64 * 1024,
      cgroupDriver: "cgroupfs",
      containerEventsQueue: 1000,
    },
    streaming: {
      address: "127.0.0.1",
      port: 0,
      tokenTtlMs: 60_000,
      idleTimeoutMs: 4 * 60 * 60 * 1000,
      maxStreams: 100,
      tlsCert: "",
      tlsKey: "",
      portRelayBinary: path.join(PACKAGE_ROOT, "dist", "native", "skiff-portrelay"),
    },
    doctor: defaultDoctorConfig(),
    cni: {
      confDir: "/etc/cni/net.d",
      binDirs: ["/usr/lib/cni", "/opt/cni/bin"],
      defaultSubnet: "10.88.0.0/16",
      defaultBridge: "cni0",
      pluginTimeoutMs: 30_000,
    },
  };
}

/** Debian's crun, if installed. */
const CRUN_BINARY = "/usr/bin/crun";

/**
 * The `crun` handler of the default config, present only where crun is installed and can run
 * containers (checked once, when the defaults are built). The runc shim runs it through
 * Options.binary_name; its state has a root of its own, so `runc list` never meets crun's state
 * files (or the reverse). crun refuses hybrid cgroup hosts whose unified (v2) hierarchy has
 * controllers ("cgroups in hybrid mode not supported"); there it is left out.
 */
function crunHandler(): Record<string, RuntimeHandlerConfig> {
  if (!existsSync(CRUN_BINARY) || hybridWithV2Controllers()) return {};
  return { crun: { shim: "containerd-shim-runc-v2", binaryName: CRUN_BINARY, runcRoot: "/run/containerd/crun" } };
}

function hybridWithV2Controllers(): boolean {
  try {
    return readFileSync("/sys/fs/cgroup/unified/cgroup.controllers", "utf8").trim() !== "";
  } catch {
    return false;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function pick<T>(src: Obj, key: string, kind: "string" | "number", fallback: T, where: string): T {
  const v = src[key];
  if (v === undefined) return fallback;
  if (typeof v !== kind) throw invalidArgument(`config: ${where}${key} must be a ${kind}`);
  return v as T;
}

/** Merges a parsed TOML document over the defaults; unknown keys are an error (typos must not pass silently). */
export function configFromObject(doc: Obj, base: Config = defaultConfig()): Config {
  const known = new Set([
    "socket",
    "debug_socket",
    "root",
    "state",
    "namespace",
    "runtimes",
    "default_runtime",
    "timeouts",
    "teardown",
    "log_level",
    "snapshotter",
    "builtin_images",
    "pause_binary",
    "spawner_binary",
    "registry",
    "cri",
    "cni",
    "streaming",
    "doctor",
  ]);
  for (const k of Object.keys(doc)) if (!known.has(k)) throw invalidArgument(`config: unknown key "${k}"`);
  const cfg: Config = structuredClone(base);
  cfg.socket = pick(doc, "socket", "string", cfg.socket, "");
  cfg.debugSocket = pick(doc, "debug_socket", "string", cfg.debugSocket, "");
  cfg.root = pick(doc, "root", "string", cfg.root, "");
  cfg.state = pick(doc, "state", "string", cfg.state, "");
  cfg.namespace = pick(doc, "namespace", "string", cfg.namespace, "");
  cfg.defaultRuntime = pick(doc, "default_runtime", "string", cfg.defaultRuntime, "");
  cfg.logLevel = pick(doc, "log_level", "string", cfg.logLevel, "");
  cfg.snapshotter = pick(doc, "snapshotter", "string", cfg.snapshotter, "");
  cfg.pauseBinary = pick(doc, "pause_binary", "string", cfg.pauseBinary, "");
  cfg.spawnerBinary = pick(doc, "spawner_binary", "string", cfg.spawnerBinary, "");
  if (doc.builtin_images !== undefined) {
    if (typeof doc.builtin_images !== "boolean") throw invalidArgument("config: builtin_images must be a boolean");
    cfg.builtinImages = doc.builtin_images;
  }
  if (doc.runtimes !== undefined) {
    if (!isObj(doc.runtimes)) throw invalidArgument("config: runtimes must be a table");
    for (const [name, raw] of Object.entries(doc.runtimes)) {
      if (!isObj(raw)) throw invalidArgument(`config: runtimes.${name} must be a table`);
      const prev = cfg.runtimes[name] ?? { shim: "containerd-shim-runc-v2", binaryName: "", runcRoot: "" };
      cfg.runtimes[name] = {
        shim: pick(raw, "shim", "string", prev.shim, `runtimes.${name}.`),
        binaryName: pick(raw, "binary_name", "string", prev.binaryName, `runtimes.${name}.`),
        runcRoot: pick(raw, "runc_root", "string", prev.runcRoot, `runtimes.${name}.`),
      };
    }
  }
  if (doc.timeouts !== undefined) {
    if (!isObj(doc.timeouts)) throw invalidArgument("config: timeouts must be a table");
    const t = doc.timeouts;
    cfg.timeouts.shimCallMs = pick(t, "shim_call_ms", "number", cfg.timeouts.shimCallMs, "timeouts.");
    cfg.timeouts.shimStartMs = pick(t, "shim_start_ms", "number", cfg.timeouts.shimStartMs, "timeouts.");
    cfg.timeouts.shimExitMs = pick(t, "shim_exit_ms", "number", cfg.timeouts.shimExitMs, "timeouts.");
  }
  if (doc.teardown !== undefined) {
    if (!isObj(doc.teardown)) throw invalidArgument("config: teardown must be a table");
    const t = doc.teardown;
    cfg.teardown.initialBackoffMs = pick(t, "initial_backoff_ms", "number", cfg.teardown.initialBackoffMs, "teardown.");
    cfg.teardown.maxBackoffMs = pick(t, "max_backoff_ms", "number", cfg.teardown.maxBackoffMs, "teardown.");
  }
  if (doc.registry !== undefined) cfg.registry = registryFromObject(doc.registry, cfg.registry);
  if (doc.cri !== undefined) {
    if (!isObj(doc.cri)) throw invalidArgument("config: cri must be a table");
    checkKeys(doc.cri, ["sandbox_image", "exec_sync_max_output_bytes", "cgroup_driver", "container_events_queue"], "cri.");
    cfg.cri.cgroupDriver = pick(doc.cri, "cgroup_driver", "string", cfg.cri.cgroupDriver, "cri.");
    cfg.cri.containerEventsQueue = pick(doc.cri, "container_events_queue", "number", cfg.cri.containerEventsQueue, "cri.");
    cfg.cri.sandboxImage = pick(doc.cri, "sandbox_image", "string", cfg.cri.sandboxImage, "cri.");
    cfg.cri.execSyncMaxOutputBytes = pick(doc.cri, "exec_sync_max_output_bytes", "number", cfg.cri.execSyncMaxOutputBytes, "cri.");
  }
  if (doc.streaming !== undefined) cfg.streaming = streamingFromObject(doc.streaming, cfg.streaming);
  if (doc.doctor !== undefined) cfg.doctor = doctorFromObject(doc.doctor, cfg.doctor);
  if (doc.cni !== undefined) {
    if (!isObj(doc.cni)) throw invalidArgument("config: cni must be a table");
    const c = doc.cni;
    checkKeys(c, ["conf_dir", "bin_dirs", "default_subnet", "default_bridge", "plugin_timeout_ms"], "cni.");
    cfg.cni.confDir = pick(c, "conf_dir", "string", cfg.cni.confDir, "cni.");
    cfg.cni.defaultSubnet = pick(c, "default_subnet", "string", cfg.cni.defaultSubnet, "cni.");
    cfg.cni.defaultBridge = pick(c, "default_bridge", "string", cfg.cni.defaultBridge, "cni.");
    cfg.cni.pluginTimeoutMs = pick(c, "plugin_timeout_ms", "number", cfg.cni.pluginTimeoutMs, "cni.");
    if (c.bin_dirs !== undefined) {
      if (!Array.isArray(c.bin_dirs) || !c.bin_dirs.every((d) => typeof d === "string" && path.isAbsolute(d))) {
        throw invalidArgument("config: cni.bin_dirs must be a list of absolute paths");
      }
      cfg.cni.binDirs = c.bin_dirs as string[];
    }
  }
  validateConfig(cfg);
  return cfg;
}

function checkKeys(src: Obj, known: string[], where: string): void {
  for (const k of Object.keys(src)) if (!known.includes(k)) throw invalidArgument(`config: unknown key "${where}${k}"`);
}

/** `[streaming]`: the exec/attach/port-forward server. */
function streamingFromObject(raw: unknown, base: Config["streaming"]): Config["streaming"] {
  if (!isObj(raw)) throw invalidArgument("config: streaming must be a table");
  const w = "streaming.";
  checkKeys(raw, ["address", "port", "token_ttl_ms", "idle_timeout_ms", "max_streams", "tls_cert", "tls_key", "port_relay_binary"], w);
  return {
    address: pick(raw, "address", "string", base.address, w),
    port: pick(raw, "port", "number", base.port, w),
    tokenTtlMs: pick(raw, "token_ttl_ms", "number", base.tokenTtlMs, w),
    idleTimeoutMs: pick(raw, "idle_timeout_ms", "number", base.idleTimeoutMs, w),
    maxStreams: pick(raw, "max_streams", "number", base.maxStreams, w),
    tlsCert: pick(raw, "tls_cert", "string", base.tlsCert, w),
    tlsKey: pick(raw, "tls_key", "string", base.tlsKey, w),
    portRelayBinary: pick(raw, "port_relay_binary", "string", base.portRelayBinary, w),
  };
}

/** `[registry]` and its `[registry.hosts."HOST"]` tables; a host given again replaces the earlier entry. */
function registryFromObject(raw: unknown, base: Config["registry"]): Config["registry"] {
  if (!isObj(raw)) throw invalidArgument("config: registry must be a table");
  checkKeys(raw, ["stall_timeout_ms", "concurrency", "hosts"], "registry.");
  const out: Config["registry"] = {
    stallTimeoutMs: pick(raw, "stall_timeout_ms", "number", base.stallTimeoutMs, "registry."),
    concurrency: pick(raw, "concurrency", "number", base.concurrency, "registry."),
    hosts: [...base.hosts],
  };
  if (raw.hosts === undefined) return out;
  if (!isObj(raw.hosts)) throw invalidArgument("config: registry.hosts must be a table of tables");
  for (const [host, h] of Object.entries(raw.hosts)) {
    const where = `registry.hosts."${host}".`;
    if (!isObj(h)) throw invalidArgument(`config: registry.hosts."${host}" must be a table`);
    checkKeys(h, ["insecure", "mirrors", "ca_file", "username", "password"], where);
    const entry: RegistryHostConfig = { host };
    if (h.insecure !== undefined) {
      if (typeof h.insecure !== "boolean") throw invalidArgument(`config: ${where}insecure must be a boolean`);
      entry.insecure = h.insecure;
    }
    if (h.mirrors !== undefined) {
      if (!Array.isArray(h.mirrors) || !h.mirrors.every((m) => typeof m === "string" && m !== "")) {
        throw invalidArgument(`config: ${where}mirrors must be a list of host[:port] strings`);
      }
      entry.mirrors = h.mirrors as string[];
    }
    const caFile = pick<string | undefined>(h, "ca_file", "string", undefined, where);
    if (caFile !== undefined) {
      if (!path.isAbsolute(caFile)) throw invalidArgument(`config: ${where}ca_file must be an absolute path`);
      entry.caFile = caFile;
    }
    const username = pick<string | undefined>(h, "username", "string", undefined, where);
    const password = pick<string | undefined>(h, "password", "string", undefined, where);
    if ((username === undefined) !== (password === undefined)) {
      throw invalidArgument(`config: ${where}username and password go together`);
    }
    if (username !== undefined) entry.auth = { username, password: password! };
    out.hosts = [...out.hosts.filter((e) => e.host !== host), entry];
  }
  return out;
}

export function validateConfig(cfg: Config): void {
  for (const key of ["socket", "debugSocket", "root", "state"] as const) {
    if (!path.isAbsolute(cfg[key])) throw invalidArgument(`config: ${key} must be an absolute path, got "${cfg[key]}"`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(cfg.namespace)) {
    throw invalidArgument(`config: namespace "${cfg.namespace}" is not a valid name`);
  }
  if (cfg.snapshotter !== "overlayfs" && cfg.snapshotter !== "native") {
    throw invalidArgument(`config: snapshotter must be "overlayfs" or "native", got "${String(cfg.snapshotter)}"`);
  }
  if (!cfg.runtimes[cfg.defaultRuntime]) {
    throw invalidArgument(`config: default_runtime "${cfg.defaultRuntime}" has no [runtimes.${cfg.defaultRuntime}] entry`);
  }
  for (const [k, v] of Object.entries(cfg.timeouts)) {
    if (!(v > 0)) throw invalidArgument(`config: timeouts.${k} must be positive`);
  }
  if (!(cfg.registry.stallTimeoutMs > 0)) throw invalidArgument("config: registry.stall_timeout_ms must be positive");
  if (!Number.isInteger(cfg.registry.concurrency) || cfg.registry.concurrency < 1) {
    throw invalidArgument("config: registry.concurrency must be a positive integer");
  }
  if (!path.isAbsolute(cfg.cni.confDir)) throw invalidArgument("config: cni.conf_dir must be an absolute path");
  if (!(cfg.cni.pluginTimeoutMs > 0)) throw invalidArgument("config: cni.plugin_timeout_ms must be positive");
  if (!cfg.cri.sandboxImage) throw invalidArgument("config: cri.sandbox_image must not be empty");
  if (!Number.isInteger(cfg.cri.execSyncMaxOutputBytes) || cfg.cri.execSyncMaxOutputBytes < 1) {
    throw invalidArgument("config: cri.exec_sync_max_output_bytes must be a positive integer");
  }
  if (cfg.cri.cgroupDriver !== "cgroupfs" && cfg.cri.cgroupDriver !== "systemd") {
    throw invalidArgument(`config: cri.cgroup_driver must be "cgroupfs" or "systemd", got "${String(cfg.cri.cgroupDriver)}"`);
  }
  if (!Number.isInteger(cfg.cri.containerEventsQueue) || cfg.cri.containerEventsQueue < 1) {
    throw invalidArgument("config: cri.container_events_queue must be a positive integer");
  }
  validateStreaming(cfg.streaming);
  if (!(cfg.teardown.initialBackoffMs > 0) || cfg.teardown.maxBackoffMs < cfg.teardown.initialBackoffMs) {
    throw invalidArgument("config: teardown backoff must satisfy 0 < initial_backoff_ms <= max_backoff_ms");
  }
}

function validateStreaming(s: Config["streaming"]): void {
  if (!s.address) throw invalidArgument("config: streaming.address must not be empty");
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) throw invalidArgument("config: streaming.port must be an integer in 0..65535");
  if (!(s.tokenTtlMs > 0)) throw invalidArgument("config: streaming.token_ttl_ms must be positive");
  if (!(s.idleTimeoutMs > 0)) throw invalidArgument("config: streaming.idle_timeout_ms must be positive");
  if (!Number.isInteger(s.maxStreams) || s.maxStreams < 1) throw invalidArgument("config: streaming.max_streams must be a positive integer");
  if (!s.tlsCert !== !s.tlsKey) throw invalidArgument("config: streaming.tls_cert and streaming.tls_key go together");
}

/** Loads a TOML file; a missing file with `optional` yields the defaults. */
export async function loadConfig(file: string | undefined, opts: { optional?: boolean } = {}): Promise<Config> {
  if (!file) return defaultConfig();
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if (opts.optional && (err as NodeJS.ErrnoException).code === "ENOENT") return defaultConfig();
    throw invalidArgument(`config: cannot read ${file}: ${(err as Error).message}`, err);
  }
  let doc: Obj;
  try {
    doc = parseToml(text) as Obj;
  } catch (err) {
    throw invalidArgument(`config: ${file} is not valid TOML: ${(err as Error).message}`, err);
  }
  return configFromObject(doc);
}
