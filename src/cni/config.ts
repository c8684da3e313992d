/**
 * Loading and validating CNI network configuration, the way the CRI plugins do it: the config
 * dir is read in file-name order and the first valid `.conflist` / `.conf` / `.json` file wins;
 * invalid files are skipped (their errors are reported only if no file is valid).
 */
import { mkdir, readdir, readFile } from "node:fs/promises";
import { isIP } from "node:net";
import * as path from "node:path";
import { errnoCode, writeFileAtomic } from "../content/fs-atomic.js";
import { failedPrecondition, invalidArgument, SkiffError } from "../errors.js";
import type { CniConfList, CniPluginConf, LoadedConfList } from "./types.js";

export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
export const DEFAULT_CNI_VERSION = "1.0.0";
/** The file installDefaultConflist writes. */
export const DEFAULT_CONF_FILE = "10-skiff.conflist";

const CONF_EXTS = [".conflist", ".conf", ".json"];
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates one config file's text. A `.conf` (single plugin) is lifted into a list
 * of one. Throws InvalidArgument naming `file` and the offending field.
 */
export function parseConfList(file: string, text: string): CniConfList {
  const bad = (why: string) => invalidArgument(`cni config ${file}: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`cni config ${file}: invalid JSON: ${(err as Error).message}`, err);
  }
  if (!isObject(raw)) throw bad("not a JSON object");
  let list: Record<string, unknown>;
  if (raw.plugins === undefined && typeof raw.type === "string") {
    // A single-plugin .conf: network-level fields stay at the top, the rest is the plugin.
    const { cniVersion, name, disableCheck, ...plugin } = raw;
    list = { cniVersion, name, disableCheck, plugins: [plugin] };
  } else {
    list = raw;
  }
  const { cniVersion, name, plugins, disableCheck } = list;
  if (typeof cniVersion !== "string" || !/^\d+\.\d+\.\d+$/.test(cniVersion)) {
    throw bad(`"cniVersion" must be a version string like "1.0.0", got ${JSON.stringify(cniVersion)}`);
  }
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw bad(`"name" must match ${NAME_RE.source}, got ${JSON.stringify(name)}`);
  }
  if (disableCheck !== undefined && typeof disableCheck !== "boolean") throw bad(`"disableCheck" must be a boolean`);
  if (!Array.isArray(plugins) || plugins.length === 0) throw bad(`"plugins" must be a non-empty array`);
  const out: CniPluginConf[] = plugins.map((p: unknown, i) => {
    if (!isObject(p)) throw bad(`plugins[${i}] is not an object`);
    if (typeof p.type !== "string" || !TYPE_RE.test(p.type)) {
      throw bad(`plugins[${i}].type must be a plugin binary name, got ${JSON.stringify(p.type)}`);
    }
    if (p.capabilities !== undefined) {
      if (!isObject(p.capabilities) || Object.values(p.capabilities).some((v) => typeof v !== "boolean")) {
        throw bad(`plugins[${i}].capabilities must map names to booleans`);
      }
    }
    return p as CniPluginConf;
  });
  const conf: CniConfList = { cniVersion, name, plugins: out };
  if (disableCheck !== undefined) conf.disableCheck = disableCheck;
  return conf;
}

/**
 * The first valid config in `dir` (sorted by file name). Throws FailedPrecondition when the dir
 * is missing or holds no valid config ("network not ready"), listing each rejected file's error.
 */
export async function loadConfList(dir: string = DEFAULT_CONF_DIR): Promise<LoadedConfList> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") throw failedPrecondition(`cni: config dir ${dir} does not exist`, err);
    throw err;
  }
  const candidates = names.filter((n) => CONF_EXTS.includes(path.extname(n)) && !n.startsWith(".")).sort();
  const errors: SkiffError[] = [];
  for (const n of candidates) {
    const file = path.join(dir, n);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      errors.push(invalidArgument(`cni config ${file}: ${(err as Error).message}`, err));
      continue;
    }
    try {
      return { file, conf: parseConfList(file, text) };
    } catch (err) {
      if (err instanceof SkiffError) errors.push(err);
      else throw err;
    }
  }
  const why = errors.length > 0 ? `: ${errors.map((e) => e.message).join("; ")}` : "";
  throw failedPrecondition(`cni: no valid network config in ${dir}${why}`, errors[0]);
}

export interface DefaultConflistOptions {
  /** IPv4 or IPv6 CIDR the pods get addresses from, e.g. "10.88.0.0/16". */
  subnet: string;
  /** Network name (default "skiff"). */
  name?: string;
  /** Bridge device name (default "cni0"; at most 15 bytes). */
  bridge?: string;
  /** host-local's allocation store (default: the plugin's own, /var/lib/cni/networks). */
  dataDir?: string;
  cniVersion?: string;
}

/** bridge (gateway, masquerade, hairpin) + host-local IPAM, then portmap for hostPorts. */
export function defaultConflist(opts: DefaultConflistOptions): CniConfList {
  const [addr, prefix, ...rest] = opts.subnet.split("/");
  const family = isIP(addr ?? "");
  const bits = Number(prefix);
  if (rest.length > 0 || family === 0 || !/^\d+$/.test(prefix ?? "") || bits > (family === 4 ? 32 : 128)) {
    throw invalidArgument(`cni: invalid subnet ${JSON.stringify(opts.subnet)}`);
  }
  const bridge = opts.bridge ?? "cni0";
  if (bridge.length === 0 || Buffer.byteLength(bridge) > 15 || !TYPE_RE.test(bridge)) {
    throw invalidArgument(`cni: invalid bridge name ${JSON.stringify(bridge)}`);
  }
  const ipam: Record<string, unknown> = {
    type: "host-local",
    ranges: [[{ subnet: opts.subnet }]],
    routes: [{ dst: family === 4 ? "0.0.0.0/0" : "::/0" }],
  };
  if (opts.dataDir !== undefined) ipam.dataDir = opts.dataDir;
  const name = opts.name ?? "skiff";
  if (!NAME_RE.test(name)) throw invalidArgument(`cni: invalid network name ${JSON.stringify(name)}`);
  return {
    cniVersion: opts.cniVersion ?? DEFAULT_CNI_VERSION,
    name,
    plugins: [
      { type: "bridge", bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
}

/** The separate list that brings `lo` up in every pod (as the CRI plugins do). */
export function loopbackConflist(cniVersion = DEFAULT_CNI_VERSION): CniConfList {
  return { cniVersion, name: "cni-loopback", plugins: [{ type: "loopback" }] };
}

/**
 * Writes defaultConflist(opts) as `dir/10-skiff.conflist` (atomically, mode 0644) unless the dir
 * already holds a config file. Returns the written path, or undefined if nothing was written.
 */
export async function installDefaultConflist(dir: string, opts: DefaultConflistOptions): Promise<string | undefined> {
  const conf = defaultConflist(opts);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const names = await readdir(dir);
  if (names.some((n) => CONF_EXTS.includes(path.extname(n)) && !n.startsWith("."))) return undefined;
  const file = path.join(dir, DEFAULT_CONF_FILE);
  await writeFileAtomic(file, JSON.stringify(conf, null, 2) + "\n", 0o644);
  return file;
}
