/**
 * Dropping the daemon's ttrpc connection to a shim (as if the socket broke) while the shim lives.
 *
 * Only possible for an in-process daemon: the daemon's end of a unix socket cannot be closed from
 * outside (`ss -K` destroys TCP/UDP sockets only; there is no sock_diag destroy for AF_UNIX), and
 * the debug API has no such call. So this reaches into the Daemon's shim manager and destroys the
 * client socket of the shim's handle, which is what a broken connection looks like to skiff.
 */
import type { Daemon } from "../../src/daemon/daemon.js";
import { unavailable } from "../../src/errors.js";

/**
 * Destroys the connection to shim `shimId` (one shim per pod: the pod sandbox id). Returns false
 * when the daemon holds no live connection to it.
 */
export function dropShimConnection(d: Daemon, shimId: string): boolean {
  const h = d.shims.peek(shimId);
  if (!h || h.ttrpc.isClosed) return false;
  h.ttrpc.destroy(unavailable(`fault injection: ttrpc connection to shim ${shimId} dropped`));
  return true;
}
