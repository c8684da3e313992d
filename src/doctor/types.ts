/**
 * Domain types of the drift check ("doctor"): what lives on the host, what skiff's records say,
 * and the findings where the two disagree. Plain JSON-serializable data: the debug API sends
 * reports as they are, and unit tests build host/record fixtures by hand.
 */

/** A live `containerd-shim-runc-v2` daemon process of skiff's namespace. */
export interface HostShim {
  pid: number;
  /** The `-id` argument: the shim's group (sandbox id, or task id when ungrouped). */
  group: string;
  /** Working directory: the home or bundle it was started in; "" when unreadable. */
  cwd: string;
}

/** A container in a runc root of skiff's namespace (`<runc root>/<namespace>/<id>/state.json`). */
export interface HostRuncContainer {
  /** The runc `--root` the container lives in. */
  root: string;
  id: string;
  /** Init pid from state.json (0 when unreadable). */
  pid: number;
}

export interface HostMount {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** A directory skiff makes per object, named by the object's id. */
export interface HostDir {
  id: string;
  path: string;
  /** Age of the directory (now − mtime) when it was listed, ms. */
  ageMs: number;
}

/** Everything on the host that skiff could leave behind, as seen at one moment. */
export interface HostState {
  shims: HostShim[];
  runc: HostRuncContainer[];
  /** Mounts at or below the daemon's root and state dirs (those dirs themselves excluded). */
  mounts: HostMount[];
  /** Named network namespaces carrying this daemon's prefix. */
  netns: string[];
  bundles: HostDir[];
  podDirs: HostDir[];
  shimHomes: HostDir[];
}

export interface TaskFacts {
  id: string;
  shimId: string;
  bundle: string;
  /** Not yet torn down (no tombstone). */
  live: boolean;
  /** A teardown of this task is queued or running: the daemon is already on it. */
  teardownPending: boolean;
}

/** Teardown work the daemon keeps retrying. */
export interface TeardownFacts {
  taskId: string;
  phase: string;
  /** Failed attempts of the current phase. */
  attempts: number;
  lastError: string | null;
}

export interface ShimFacts {
  id: string;
  pid: number | null;
  state: "starting" | "running" | "shutting_down" | "stopped";
}

export interface PodFacts {
  id: string;
  state: "creating" | "ready" | "notready" | "removing";
  /** The pod's netns name; null for host-network pods. */
  netns: string | null;
  /** The pod's directory (hostname, resolv.conf; anything mounted there belongs to the pod). */
  dir: string;
}

export interface ContainerFacts {
  id: string;
  state: "created" | "running" | "exited" | "unknown";
}

/** What skiff's metadata says, reduced to what the drift check compares. */
export interface RecordState {
  tasks: TaskFacts[];
  shims: ShimFacts[];
  pods: PodFacts[];
  containers: ContainerFacts[];
  teardowns: TeardownFacts[];
}

/** One disagreement between the host and the records. `object` names the thing in the report. */
export type Finding =
  | { kind: "orphan-shim"; object: string; message: string; pid: number; group: string; cwd: string }
  | { kind: "orphan-runc-container"; object: string; message: string; root: string; id: string }
  | { kind: "orphan-mount"; object: string; message: string; mountPoint: string }
  | { kind: "orphan-netns"; object: string; message: string; name: string }
  | { kind: "missing-netns"; object: string; message: string; podId: string; name: string }
  | { kind: "orphan-bundle"; object: string; message: string; id: string; path: string }
  | { kind: "orphan-pod-dir"; object: string; message: string; id: string; path: string }
  | { kind: "orphan-shim-home"; object: string; message: string; id: string; path: string }
  | { kind: "task-without-shim"; object: string; message: string; taskId: string; shimId: string }
  | { kind: "container-without-task"; object: string; message: string; id: string }
  | { kind: "pod-without-task"; object: string; message: string; id: string }
  | { kind: "stuck-teardown"; object: string; message: string; taskId: string };

export type FindingKind = Finding["kind"];

/** Every kind, in the order repairs run (processes before the files they hold open). */
export const FINDING_KINDS: readonly FindingKind[] = [
  "orphan-runc-container",
  "orphan-shim",
  "task-without-shim",
  "container-without-task",
  "pod-without-task",
  "stuck-teardown",
  "orphan-mount",
  "orphan-netns",
  "missing-netns",
  "orphan-bundle",
  "orphan-pod-dir",
  "orphan-shim-home",
];

/** Identity of a finding across two checks (same kind, same object). */
export const findingKey = (f: Finding): string => `${f.kind} ${f.object}`;

export type RepairOutcome =
  /** Fixed now. */
  | "repaired"
  /** Handed to the daemon's own teardown, which goes on (with retries) after this call. */
  | "queued"
  /** Not a drift any more at the recheck (a record appeared, or it went away by itself). */
  | "skipped"
  /** Nothing safe to do automatically (e.g. a missing netns of a ready pod). */
  | "manual"
  | "failed";

export interface RepairResult {
  kind: FindingKind;
  object: string;
  outcome: RepairOutcome;
  /** What was done, or why not. */
  message: string;
}

export interface DoctorReport {
  /** RFC 3339 time the check started. */
  checkedAt: string;
  findings: Finding[];
  /** One entry per finding when repair was asked, else empty. */
  repairs: RepairResult[];
  /** True when nothing was found, or every finding was repaired, queued, or gone at the recheck. */
  clean: boolean;
}
