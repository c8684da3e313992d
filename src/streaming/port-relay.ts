/**
 * Port-forward relay: one client connection piped to a TCP port on the loopback of a pod's
 * network namespace.
 *
 * Node cannot setns(2) (a namespace belongs to a thread, and libuv's threads are shared), so for
 * a pod with its own namespace a small helper (native/portrelay.c) joins it, connects, and
 * copies its stdin/stdout to the socket: one helper process per connection, SIGKILLed when the
 * client leaves. A host-network pod's port is on the host's loopback: Node connects directly.
 *
 * Both directions end independently: the client's EOF half-closes the connection to the port,
 * and the port's side ending ends the client's stream. Resolves once both are done.
 */
import { spawn } from "node:child_process";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { unavailable } from "../errors.js";
import { abortError } from "../util/signal.js";

export interface RelayTarget {
  /** What the errors name, e.g. `pod sandbox "…"`. */
  what: string;
  /** The pod's network namespace file; null for host networking. */
  netnsPath: string | null;
  port: number;
  /** The helper binary (config streaming.port_relay_binary). */
  relayBinary: string;
}

/** Exit code of the helper when nothing listens on the port. */
const RELAY_CONNECT_FAILED = 4;

export function relayPort(t: RelayTarget, conn: Duplex, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal, `port-forward to ${t.what}`));
  return t.netnsPath === null ? relayDirect(t, conn, signal) : relayInNetns(t, t.netnsPath, conn, signal);
}

function relayDirect(t: RelayTarget, conn: Duplex, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port: t.port });
    let connected = false;
    const onAbort = () => {
      sock.destroy();
      reject(abortError(signal, `port-forward to ${t.what}`));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const finish = (err?: Error) => {
      signal.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    };
    sock.once("connect", () => {
      connected = true;
      conn.pipe(sock);
      sock.pipe(conn);
    });
    conn.once("error", () => sock.destroy());
    conn.once("close", () => {
      // The client went away entirely: nothing more can be delivered in either direction.
      if (!sock.writableEnded) sock.destroy();
    });
    sock.once("error", (err) => {
      if (!connected) finish(unavailable(`port-forward to ${t.what}: connect to port ${t.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, err));
    });
    sock.once("close", () => finish());
  });
}

function relayInNetns(t: RelayTarget, netnsPath: string, conn: Duplex, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(t.relayBinary, [netnsPath, String(t.port)], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    let settled = false;
    const onAbort = () => child.kill("SIGKILL");
    signal.addEventListener("abort", onAbort, { once: true });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    // The helper exiting closes its stdin under us (EPIPE): that ends the client's direction.
    child.stdin.on("error", () => {});
    conn.pipe(child.stdin);
    child.stdout.pipe(conn);
    let outputDone = false;
    let clientGone = false;
    child.stdout.once("end", () => (outputDone = true));
    // A connection that closes after the port's side ended is the normal end (the helper is
    // exiting); one that closes before has nobody left to deliver to.
    const onClientGone = () => {
      if (outputDone || child.exitCode !== null || child.signalCode !== null) return;
      clientGone = true;
      child.kill("SIGKILL");
    };
    conn.once("error", onClientGone);
    conn.once("close", onClientGone);
    child.once("error", (err) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      reject(unavailable(`port-forward to ${t.what}: cannot start ${t.relayBinary}: ${err.message}`, err));
    });
    // "close": the process exited and its stdout/stderr were read to the end.
    child.once("close", (code) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      conn.off("error", onClientGone);
      conn.off("close", onClientGone);
      conn.unpipe(child.stdin);
      if (signal.aborted) return reject(abortError(signal, `port-forward to ${t.what}`));
      if (code === 0 || clientGone) return resolve();
      const reason = stderr.trim() || `relay exited with ${code ?? "a signal"}`;
      if (code === RELAY_CONNECT_FAILED) return reject(unavailable(`port-forward to ${t.what}: ${reason}`));
      reject(unavailable(`port-forward to ${t.what} failed: ${reason}`));
    });
  });
}
