/**
 * Where the CLI connects and how long it waits, resolved as crictl does: a flag wins, then the
 * environment (`CONTAINER_RUNTIME_ENDPOINT`, `IMAGE_SERVICE_ENDPOINT`), then the config file
 * (crictl.yaml keys), then the built-in default (skiffd's default socket).
 */
import { readFile } from "node:fs/promises";
import { defaultConfig } from "../config.js";
import { invalidArgument } from "../errors.js";
import { parseYaml } from "./yaml.js";

export const DEFAULT_CLI_CONFIG = "/etc/skiff/skiff-cli.yaml";
/** Per-call deadline when neither flag nor config sets one (kubelet's CRI request timeout). */
export const DEFAULT_TIMEOUT_MS = 2 * 60 * 1000;

export interface CliSettings {
  /** Unix socket path of the runtime service. */
  runtimeSocket: string;
  /** Unix socket path of the image service (the runtime's unless set apart). */
  imageSocket: string;
  /** Deadline of one unary call, in milliseconds. */
  timeoutMs: number;
  debug: boolean;
  /** `run` and `create` pull a missing image first (crictl's `pull-image-on-create`). */
  pullImageOnCreate: boolean;
}

/** What the config file may hold (crictl's keys; unknown keys are an error naming the file). */
export interface CliConfigFile {
  runtimeEndpoint?: string;
  imageEndpoint?: string;
  timeoutMs?: number;
  debug?: boolean;
  pullImageOnCreate?: boolean;
}

/**
 * `unix:///run/x.sock`, `unix:/run/x.sock` or a bare absolute path → the socket path.
 * Other schemes (tcp, npipe) are InvalidArgument: skiffd serves only on a unix socket.
 */
export function parseEndpoint(endpoint: string): string {
  const e = endpoint.trim();
  let p: string;
  if (e.startsWith("unix://")) p = e.slice("unix://".length);
  else if (e.startsWith("unix:")) p = e.slice("unix:".length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e)) throw invalidArgument(`endpoint ${JSON.stringify(endpoint)}: only unix:// endpoints are supported`);
  else p = e;
  if (!p.startsWith("/")) throw invalidArgument(`endpoint ${JSON.stringify(endpoint)}: the socket path must be absolute`);
  return p;
}

/** A duration as crictl takes it (`10s`, `2m`, `500ms`, or bare seconds) → milliseconds. */
export function parseTimeout(v: string | number, what = "timeout"): number {
  if (typeof v === "number") {
    if (!(v > 0)) throw invalidArgument(`${what}: must be positive, got ${v}`);
    return v * 1000;
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m || !(Number(m[1]) > 0)) throw invalidArgument(`${what}: ${JSON.stringify(v)} is not a duration like 10s, 2m or 500ms`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * unit);
}

/** Parses the config file's text; `file` names it in errors. */
export function parseCliConfig(text: string, file: string): CliConfigFile {
  const doc = parseYaml(text, file);
  if (doc === null) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw invalidArgument(`${file}: expected "key: value" lines`);
  const out: CliConfigFile = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const bad = (want: string) => invalidArgument(`${file}: ${k} must be ${want}, got ${JSON.stringify(v)}`);
    switch (k) {
      case "runtime-endpoint":
      case "image-endpoint":
        if (typeof v !== "string") throw bad("a string");
        if (v !== "") out[k === "runtime-endpoint" ? "runtimeEndpoint" : "imageEndpoint"] = v;
        break;
      case "timeout":
        if (typeof v !== "string" && typeof v !== "number") throw bad("a duration");
        out.timeoutMs = parseTimeout(v, `${file}: timeout`);
        break;
      case "debug":
      case "pull-image-on-create":
        if (typeof v !== "boolean") throw bad("true or false");
        out[k === "debug" ? "debug" : "pullImageOnCreate"] = v;
        break;
      case "disable-pull-on-run":
        if (typeof v !== "boolean") throw bad("true or false");
        break; // accepted for crictl.yaml compatibility: `skiff run` pulls only with --with-pull
      default:
        throw invalidArgument(`${file}: unknown key ${JSON.stringify(k)} (known: runtime-endpoint, image-endpoint, timeout, debug, pull-image-on-create)`);
    }
  }
  return out;
}

export interface SettingsInput {
  flags: { runtimeEndpoint?: string; imageEndpoint?: string; timeout?: string; debug?: boolean; config?: string };
  env: NodeJS.ProcessEnv;
  /** Reads the config file; resolves undefined when it does not exist. */
  readFile?: (file: string) => Promise<string | undefined>;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw invalidArgument(`config ${file}: ${(err as Error).message}`, err);
  }
}

/**
 * Resolves the settings. A config file named with `--config` (or `SKIFF_CLI_CONFIG`) must
 * exist; the default one is optional.
 */
export async function resolveSettings(input: SettingsInput): Promise<CliSettings> {
  const { flags, env } = input;
  // SKIFF_CLI_CONFIG="" means "no config file" (scripts and tests that must not see the host's).
  const named = flags.config ?? env.SKIFF_CLI_CONFIG;
  const file = named ?? DEFAULT_CLI_CONFIG;
  const text = file === "" ? undefined : await (input.readFile ?? readIfExists)(file);
  if (file === "" && flags.config !== undefined) throw invalidArgument("--config: give a file name");
  if (text === undefined && named !== undefined && file !== "") throw invalidArgument(`config file ${file} does not exist`);
  const cfg = text === undefined ? {} : parseCliConfig(text, file);
  const runtimeEndpoint = flags.runtimeEndpoint ?? env.CONTAINER_RUNTIME_ENDPOINT ?? cfg.runtimeEndpoint ?? `unix://${defaultConfig().socket}`;
  const imageEndpoint = flags.imageEndpoint ?? env.IMAGE_SERVICE_ENDPOINT ?? cfg.imageEndpoint ?? runtimeEndpoint;
  return {
    runtimeSocket: parseEndpoint(runtimeEndpoint),
    imageSocket: parseEndpoint(imageEndpoint),
    timeoutMs: flags.timeout !== undefined ? parseTimeout(flags.timeout, "--timeout") : (cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    debug: flags.debug ?? cfg.debug ?? false,
    pullImageOnCreate: cfg.pullImageOnCreate ?? false,
  };
}
