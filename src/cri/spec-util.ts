/** Small OCI spec edits shared by the pod and container spec builders. */
import { constants } from "node:os";
import { invalidArgument } from "../errors.js";

export type Spec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Sets (path given), drops (null) or keeps a fresh (undefined) namespace of `type`. */
export function setNamespace(spec: Spec, type: string, how: { path: string } | null | "new"): void {
  const list = (spec.linux.namespaces as { type: string; path?: string }[]).filter((n) => n.type !== type);
  if (how === "new") list.push({ type });
  else if (how !== null) list.push({ type, path: how.path });
  spec.linux.namespaces = list;
}

/** Linux's PATH_MAX: execve(2) refuses a longer file name (ENAMETOOLONG). */
export const MAX_EXECUTABLE_BYTES = 4095;

/**
 * Refuses an executable name no exec could run. Besides being the right answer, it keeps a huge
 * name out of runc, whose error repeats it twice into a pipe the shim only drains after runc
 * returns: past ~32 KiB that deadlocks until the shim call times out.
 */
export function checkExecutable(argv0: string, what: string): void {
  const n = Buffer.byteLength(argv0);
  if (n > MAX_EXECUTABLE_BYTES) throw invalidArgument(`${what}: the executable "${argv0.slice(0, 64)}…" is ${n} bytes long, more than a path may be (${MAX_EXECUTABLE_BYTES})`);
}

/** A signal name ("SIGTERM", "TERM") or number as a number; InvalidArgument when unknown. */
export function signalNumber(s: string, what: string): number {
  if (s === "") return constants.signals.SIGTERM;
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.toUpperCase().startsWith("SIG") ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (n === undefined) throw invalidArgument(`${what}: unknown stop signal "${s}"`);
  return n;
}

/** cgroups path of a pod's member: under the pod's cgroup parent when one is given. */
export function cgroupsPath(parent: string, id: string): string | undefined {
  if (!parent) return undefined;
  if (!parent.startsWith("/")) throw invalidArgument(`cgroup_parent "${parent}" must be an absolute cgroupfs path`);
  return `${parent.replace(/\/+$/, "")}/${id}`;
}
