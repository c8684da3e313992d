/**
 * The seam between the streaming server (HTTP, tokens, SPDY and WebSocket framing, the Kubernetes
 * remote-command and port-forward protocols) and the runtime that executes the requests (shim
 * execs, container stdio, relays into a pod's network namespace).
 *
 * The server never touches shims or namespaces; the backend never sees a socket protocol. Each
 * side is tested on its own and together in test/integration.
 */
import type { Duplex, Readable, Writable } from "node:stream";

/** A terminal size change sent by the client (resize stream / channel 4). */
export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * The client's side of a remote command, as the protocol handler hands it to the backend.
 * Absent streams were not asked for. With `tty`, stderr is absent (a terminal merges them).
 * The backend ends stdout/stderr when the process's output ends; the server closes the
 * connection after `exec`/`attach` settles.
 */
export interface CommandIo {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty: boolean;
  /** Terminal size changes, in order; empty unless `tty`. Iteration ends with the connection. */
  resizes?: AsyncIterable<TerminalSize>;
}

/** The outcome of a remote command: its exit code (an exec) or why the attach ended. */
export interface CommandResult {
  /** Exit code of the process; undefined for an attach that ended because the client left. */
  exitCode?: number;
}

/**
 * What the streaming server needs from the runtime. Every method ends promptly once `signal`
 * aborts (the client disconnected or the idle timeout fired) and then leaves nothing behind:
 * an exec process is killed and its record deleted; an attach detaches without stopping the
 * container; a relay process is stopped.
 *
 * Errors are SkiffErrors (NotFound for a container or pod that is gone, FailedPrecondition for one
 * not running); the server reports them on the error stream / channel.
 */
export interface StreamingBackend {
  exec(containerId: string, cmd: string[], io: CommandIo, signal: AbortSignal): Promise<CommandResult>;
  attach(containerId: string, io: CommandIo, signal: AbortSignal): Promise<CommandResult>;
  /**
   * Connects one client connection to `port` on 127.0.0.1 inside the pod's network namespace and
   * pipes both ways until either side ends. Resolves when both directions are done.
   */
  portForward(podId: string, port: number, conn: Duplex, signal: AbortSignal): Promise<void>;
}

/** A request waiting for its client, as the Exec/Attach/PortForward RPCs register it. */
export type StreamingRequest =
  | { kind: "exec"; containerId: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
  | { kind: "attach"; containerId: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
  | { kind: "portforward"; podId: string; ports: number[] };

/** What the CRI RPCs use: register a request, get the single-use URL the client connects to. */
export interface StreamingUrls {
  /** Stores the request under a fresh random single-use token; returns the URL to return. */
  register(req: StreamingRequest): string;
}
