/** Domain types of the tasks service (record #1). No protobuf types cross this boundary. */

export interface ExitStatus {
  exitStatus: number;
  /** RFC 3339 with nanoseconds, as the shim reported it (or when skiff decided it). */
  exitedAt: string;
  /** Why skiff had to decide the exit itself (e.g. "shim died"); undefined for a real exit. */
  reason?: string;
}

export type TaskStatus = "created" | "running" | "paused" | "stopped" | "unknown" | "deleted";

export interface TaskInfo {
  id: string;
  shimId: string;
  pid: number;
  status: TaskStatus;
  bundle: string;
  exit?: ExitStatus;
}

export interface TaskStdio {
  /** FIFO paths, `file:///path` or `binary:///path?args` URIs, or "" for /dev/null. */
  stdin?: string;
  stdout?: string;
  stderr?: string;
  terminal?: boolean;
}

export interface ExecRequest extends TaskStdio {
  taskId: string;
  execId: string;
  /** OCI runtime-spec Process object. */
  process: Record<string, unknown>;
}

/** Exit code skiff reports when the real one cannot be known (the shim died with the task's record). */
export const UNKNOWN_EXIT_STATUS = 255;

/**
 * The shim opens every non-empty stream and picks its I/O mode from stdout's URI scheme, so a
 * stream left empty beside a set one must become a sink of the same form.
 */
export function normalizeStdio(stdio: TaskStdio): Required<TaskStdio> {
  const given = stdio.stdout || stdio.stderr || "";
  const sink = !given ? "" : given.startsWith("file://") ? "file:///dev/null" : "/dev/null";
  return {
    stdin: stdio.stdin ?? "",
    stdout: stdio.stdout || sink,
    stderr: stdio.stderr || sink,
    terminal: stdio.terminal ?? false,
  };
}
