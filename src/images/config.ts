/**
 * OCI / Docker image configs (`application/vnd.oci.image.config.v1+json`,
 * `application/vnd.docker.container.image.v1+json`): the subset a runtime needs, as typed fields.
 *
 * Both formats share the JSON layout (`config.Entrypoint`, `rootfs.diff_ids`, …). Absent fields
 * become empty values; a field of the wrong type or malformed JSON is InvalidArgument, never a
 * silent default, because an image with a bogus config must not run with a guessed command.
 */
import { type Digest, parseDigest } from "../content/digest.js";
import { invalidArgument } from "../errors.js";

export interface ImageConfig {
  os: string;
  architecture: string;
  /** "" when absent. */
  variant: string;
  entrypoint: string[];
  cmd: string[];
  /** `KEY=value` entries, in image order. */
  env: string[];
  /** "" = the runtime default (root). */
  user: string;
  /** "" = "/". */
  workingDir: string;
  /** Container paths declared as volumes, sorted. */
  volumes: string[];
  /** "" when absent (the runtime then uses SIGTERM). */
  stopSignal: string;
  labels: Record<string, string>;
  /** `port/proto` keys, sorted. */
  exposedPorts: string[];
  /** Uncompressed layer digests, bottom layer first. */
  diffIds: Digest[];
  /** RFC 3339 creation time, "" when absent. */
  created: string;
}

/** Parses the config blob (bytes or text). InvalidArgument on bad JSON or mistyped fields. */
export function parseImageConfig(blob: Uint8Array | string): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof blob === "string" ? blob : Buffer.from(blob).toString("utf8"));
  } catch (err) {
    throw invalidArgument(`image config: invalid JSON: ${(err as Error).message}`, err);
  }
  const top = object(doc, "image config");
  const cfg = top.config === undefined || top.config === null ? {} : object(top.config, "image config: config");
  const rootfs = object(top.rootfs ?? {}, "image config: rootfs");
  if (rootfs.type !== undefined && rootfs.type !== "layers") {
    throw invalidArgument(`image config: rootfs.type ${JSON.stringify(rootfs.type)}, want "layers"`);
  }
  const diffIds = strings(rootfs.diff_ids, "rootfs.diff_ids").map((d) => {
    try {
      return parseDigest(d);
    } catch (err) {
      throw invalidArgument(`image config: rootfs.diff_ids: ${(err as Error).message}`, err);
    }
  });
  return {
    os: str(top.os, "os"),
    architecture: str(top.architecture, "architecture"),
    variant: str(top.variant, "variant"),
    entrypoint: strings(cfg.Entrypoint, "config.Entrypoint"),
    cmd: strings(cfg.Cmd, "config.Cmd"),
    env: strings(cfg.Env, "config.Env"),
    user: str(cfg.User, "config.User"),
    workingDir: str(cfg.WorkingDir, "config.WorkingDir"),
    volumes: keys(cfg.Volumes, "config.Volumes"),
    stopSignal: str(cfg.StopSignal, "config.StopSignal"),
    labels: labels(cfg.Labels),
    exposedPorts: keys(cfg.ExposedPorts, "config.ExposedPorts"),
    diffIds,
    created: str(top.created, "created"),
  };
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidArgument(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function str(v: unknown, field: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalidArgument(`image config: ${field} is not a string`);
  return v;
}

/** Docker writes `null` for an absent list; both mean empty. */
function strings(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw invalidArgument(`image config: ${field} is not a list of strings`);
  }
  return [...(v as string[])];
}

/** `{ "key": {} }` sets (Volumes, ExposedPorts) → sorted keys. */
function keys(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  return Object.keys(object(v, `image config: ${field}`)).sort();
}

function labels(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  const o = object(v, "image config: config.Labels");
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) {
    if (typeof val !== "string") throw invalidArgument(`image config: label ${JSON.stringify(k)} is not a string`);
    out[k] = val;
  }
  return out;
}
