/**
 * A minimal OCI runtime spec (config.json) for integration tests: the runtime's own default spec
 * (src/oci/spec.ts), shaped like `runc spec`'s output: new pid/ipc/uts/mount/network namespaces, the usual /proc /dev /sys mounts, masked and
 * read-only paths, all devices denied. Differences from `runc spec`, all deliberate:
 * - ociVersion "1.0.2" (runc 1.1 writes "1.0.2-dev");
 * - no terminal unless asked, so tests can capture stdout;
 * - containerd's default capability set (what a CRI container gets) instead of runc's three;
 * - a writable root, so tests can write anywhere in the rootfs;
 * - never an `oomScoreAdj`: root on these hosts lacks CAP_SYS_RESOURCE, and a negative value
 *   makes runc init fail.
 */

import { defaultSpec, DEFAULT_PATH_ENV, mergeEnv } from "../oci/spec.js";

export interface MinimalSpecOptions {
  /** process.args; args[0] is looked up in PATH. Required, non-empty. */
  args: string[];
  /** Extra `NAME=value` entries; one with the name of a default (PATH, TERM) replaces it. */
  env?: string[];
  /** process.cwd, default "/". */
  cwd?: string;
  /** Allocate a console (then a console socket is needed to run it). Default false. */
  terminal?: boolean;
  annotations?: Record<string, string>;
  /** Default "skiff-test". */
  hostname?: string;
}

/** The subset of the OCI runtime spec this module writes. */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  annotations?: Record<string, string>;
  linux: {
    resources: { devices: { allow: boolean; access: string }[] };
    namespaces: { type: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

/** containerd's defaultUnixCaps, as the runtime itself uses them. */
export { DEFAULT_CAPABILITIES } from "../oci/spec.js";

/** Returns a fresh spec object each call; callers may modify it before writing config.json. */
export function minimalSpec(opts: MinimalSpecOptions): OciSpec {
  if (opts.args.length === 0) throw new TypeError("minimalSpec: args must not be empty");
  const terminal = opts.terminal ?? false;
  return defaultSpec({
    args: [...opts.args],
    env: mergeEnv(terminal ? [DEFAULT_PATH_ENV, "TERM=xterm"] : [DEFAULT_PATH_ENV], opts.env ?? []),
    cwd: opts.cwd ?? "/",
    terminal,
    hostname: opts.hostname ?? "skiff-test",
    ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}),
  }) as unknown as OciSpec;
}
