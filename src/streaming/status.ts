/**
 * The outcome of a remote command as Kubernetes reports it on the error stream/channel.
 *
 * v4 (and v5) clients read a JSON `metav1.Status`; older clients read plain text, and nothing at
 * all on success. The field order matches what Go's encoding/json emits for metav1.Status, so the
 * bytes equal kubelet's.
 */
import type { CommandResult } from "./types.js";

export interface StatusCause {
  reason?: string;
  message?: string;
}

/** The subset of metav1.Status this server produces. */
export interface Status {
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { causes: StatusCause[] };
  code?: number;
}

export const NonZeroExitCodeReason = "NonZeroExitCode";
export const ExitCodeCauseType = "ExitCode";

/** Builds the Status for a settled command: `err` when the backend threw, else `result`. */
export function commandStatus(result: CommandResult | undefined, err: unknown, what: string): Status {
  if (err !== undefined) {
    const msg = err instanceof Error ? err.message : String(err);
    // kubelet reports every runtime failure as an InternalError (HTTP 500); the message keeps our
    // error text, so "not found" / "not running" stay readable to the user.
    const inner = `error executing command in container: ${msg}`;
    return {
      metadata: {},
      status: "Failure",
      message: `Internal error occurred: ${inner}`,
      reason: "InternalError",
      details: { causes: [{ message: inner }] },
      code: 500,
    };
  }
  const exitCode = result?.exitCode;
  if (exitCode === undefined || exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command ${what}, exit code ${exitCode}`,
    reason: NonZeroExitCodeReason,
    details: { causes: [{ reason: ExitCodeCauseType, message: String(exitCode) }] },
  };
}

/** JSON for v4+ clients. */
export function encodeStatusJson(s: Status): Buffer {
  return Buffer.from(JSON.stringify(s));
}

/** Plain text for pre-v4 clients: nothing on success, the message otherwise. */
export function encodeStatusText(s: Status): Buffer {
  return s.status === "Success" ? Buffer.alloc(0) : Buffer.from(s.message ?? "error");
}

/** Formats a command like Go's %v of a string slice, used inside the exit-code message. */
export function formatCommand(cmd: string[]): string {
  return `[${cmd.join(" ")}]`;
}
