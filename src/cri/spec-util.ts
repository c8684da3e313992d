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
