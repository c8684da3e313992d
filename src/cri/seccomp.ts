/**
 * Seccomp for CRI pods and containers, as containerd's CRI plugin chooses it: the request names
 * RuntimeDefault (skiff's own allow-list, seccomp-default.ts), Unconfined, or a Localhost JSON
 * profile on the host; privileged containers get none. An absent choice means unconfined (the
 * kubelet sends RuntimeDefault when the pod asks for it).
 *
 * Invariant: a Localhost profile is read and validated before anything of the pod or container
 * is made; a missing file or a malformed profile is InvalidArgument naming the path.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import { defaultSeccompProfile, type SeccompProfile } from "./seccomp-default.js";

/** The seccomp choice of a request, before any file is read. */
export type SeccompRequest = { kind: "unconfined" } | { kind: "runtime-default" } | { kind: "localhost"; path: string };

/** A request with its Localhost profile loaded (and validated). */
export type ResolvedSeccomp = { kind: "unconfined" } | { kind: "runtime-default" } | { kind: "localhost"; path: string; profile: SeccompProfile };

export const UNCONFINED = { kind: "unconfined" } as const satisfies SeccompRequest & ResolvedSeccomp;

const ACTIONS = new Set([
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
]);
const OPS = new Set(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]);

function localhost(ref: string, what: string): SeccompRequest {
  if (!ref) throw invalidArgument(`${what}: seccomp Localhost profile has an empty localhost_ref`);
  if (!path.isAbsolute(ref)) throw invalidArgument(`${what}: seccomp profile path "${ref.slice(0, 256)}" is not absolute`);
  return { kind: "localhost", path: path.normalize(ref) };
}

/**
 * The seccomp choice from CRI's `seccomp` SecurityProfile (which wins when present) or the
 * deprecated `seccomp_profile_path` ("", "unconfined", "runtime/default", "docker/default",
 * "localhost/<absolute path>"). Unknown legacy values are InvalidArgument.
 */
export function seccompRequest(
  profile: { type: "RuntimeDefault" | "Unconfined" | "Localhost"; localhostRef: string } | undefined,
  legacyPath: string,
  what: string,
): SeccompRequest {
  if (profile) {
    switch (profile.type) {
      case "RuntimeDefault":
        return { kind: "runtime-default" };
      case "Unconfined":
        return UNCONFINED;
      case "Localhost":
        return localhost(profile.localhostRef, what);
      default: {
        const never: never = profile.type;
        throw invalidArgument(`${what}: unknown seccomp profile type ${String(never)}`);
      }
    }
  }
  if (legacyPath === "" || legacyPath === "unconfined") return UNCONFINED;
  if (legacyPath === "runtime/default" || legacyPath === "docker/default") return { kind: "runtime-default" };
  if (legacyPath.startsWith("localhost/")) return localhost(legacyPath.slice("localhost/".length), what);
  throw invalidArgument(`${what}: unsupported seccomp profile "${legacyPath.slice(0, 256)}"`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

const isUint = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/**
 * Checks a profile in the OCI runtime spec's `linux.seccomp` shape (what containerd reads from a
 * Localhost file) and keeps only that shape's fields. `why` says what is wrong, for the caller's
 * message; runc would otherwise refuse the spec at start with an opaque error.
 */
export function parseSeccompProfile(v: unknown): SeccompProfile {
  const bad = (why: string): never => {
    throw new TypeError(why);
  };
  if (!isObject(v)) bad("the profile is not a JSON object");
  const o = v as Record<string, unknown>;
  if (typeof o.defaultAction !== "string" || !ACTIONS.has(o.defaultAction)) bad(`defaultAction ${JSON.stringify(o.defaultAction)} is not a seccomp action`);
  const out: SeccompProfile = { defaultAction: o.defaultAction as string, syscalls: [] };
  if (o.defaultErrnoRet !== undefined) out.defaultErrnoRet = isUint(o.defaultErrnoRet) ? o.defaultErrnoRet : bad("defaultErrnoRet is not a number");
  if (o.architectures !== undefined) out.architectures = isStringArray(o.architectures) ? o.architectures : bad("architectures is not a list of strings");
  if (o.flags !== undefined) out.flags = isStringArray(o.flags) ? o.flags : bad("flags is not a list of strings");
  if (o.listenerPath !== undefined) out.listenerPath = typeof o.listenerPath === "string" ? o.listenerPath : bad("listenerPath is not a string");
  if (o.listenerMetadata !== undefined) out.listenerMetadata = typeof o.listenerMetadata === "string" ? o.listenerMetadata : bad("listenerMetadata is not a string");
  if (o.syscalls !== undefined && o.syscalls !== null) {
    if (!Array.isArray(o.syscalls)) bad("syscalls is not a list");
    (o.syscalls as unknown[]).forEach((s, i) => {
      if (!isObject(s)) bad(`syscalls[${i}] is not an object`);
      const r = s as Record<string, unknown>;
      if (!isStringArray(r.names) || r.names.length === 0) bad(`syscalls[${i}].names is not a non-empty list of strings`);
      if (typeof r.action !== "string" || !ACTIONS.has(r.action)) bad(`syscalls[${i}].action ${JSON.stringify(r.action)} is not a seccomp action`);
      const rule: SeccompProfile["syscalls"][number] = { names: r.names as string[], action: r.action as string };
      if (r.errnoRet !== undefined) rule.errnoRet = isUint(r.errnoRet) ? r.errnoRet : bad(`syscalls[${i}].errnoRet is not a number`);
      if (r.args !== undefined && r.args !== null) {
        if (!Array.isArray(r.args)) bad(`syscalls[${i}].args is not a list`);
        rule.args = (r.args as unknown[]).map((a, j) => {
          const at = `syscalls[${i}].args[${j}]`;
          if (!isObject(a)) return bad(`${at} is not an object`);
          if (!isUint(a.index) || a.index > 5) bad(`${at}.index is not 0 to 5`);
          if (!isUint(a.value)) bad(`${at}.value is not a number`);
          if (a.valueTwo !== undefined && !isUint(a.valueTwo)) bad(`${at}.valueTwo is not a number`);
          if (typeof a.op !== "string" || !OPS.has(a.op)) bad(`${at}.op ${JSON.stringify(a.op)} is not a comparison`);
          return { index: a.index as number, value: a.value as number, valueTwo: (a.valueTwo as number | undefined) ?? 0, op: a.op as string };
        });
      }
      out.syscalls.push(rule);
    });
  }
  return out;
}

/** Reads a Localhost profile; InvalidArgument naming the path when it is missing or malformed. */
export async function loadSeccomp(req: SeccompRequest, what: string, signal?: AbortSignal): Promise<ResolvedSeccomp> {
  if (req.kind !== "localhost") return req;
  let text: string;
  try {
    text = await readFile(req.path, { encoding: "utf8", ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw invalidArgument(`${what}: cannot read seccomp profile "${req.path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
  let profile: SeccompProfile;
  try {
    profile = parseSeccompProfile(JSON.parse(text));
  } catch (err) {
    throw invalidArgument(`${what}: seccomp profile "${req.path}" is invalid: ${(err as Error).message}`, err);
  }
  return { kind: "localhost", path: req.path, profile };
}

/**
 * The spec's `linux.seccomp` for a resolved choice, or undefined for none. RuntimeDefault is
 * computed from the process's final bounding set (capability-conditional syscalls, as
 * containerd's default profile does) and this host's architecture.
 */
export function seccompForSpec(s: ResolvedSeccomp, privileged: boolean, boundingCaps: string[]): SeccompProfile | undefined {
  if (privileged) return undefined;
  switch (s.kind) {
    case "unconfined":
      return undefined;
    case "runtime-default":
      return defaultSeccompProfile(boundingCaps, process.arch);
    case "localhost":
      return s.profile;
    default: {
      const never: never = s;
      throw invalidArgument(`unknown seccomp choice ${JSON.stringify(never)}`);
    }
  }
}
