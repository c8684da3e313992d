/** Unix socket files of servers that may have died without removing them. */
import { lstat, unlink } from "node:fs/promises";
import * as net from "node:net";
import { failedPrecondition, unavailable } from "../errors.js";

/**
 * Removes a socket file left behind by a dead server, so a restarted daemon can listen again.
 * Refuses to touch a file that is not a socket, or a socket something still listens on (two
 * daemons on one path must fail loudly, not steal each other's socket). `what` names the server.
 */
export async function removeStaleSocket(path: string, what: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw unavailable(`${what}: stat ${path}: ${(err as Error).message}`, err);
  }
  if (!st.isSocket()) throw failedPrecondition(`${what}: ${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const conn = net.connect(path);
    conn.once("connect", () => {
      conn.destroy();
      resolve(true);
    });
    conn.once("error", () => resolve(false));
  });
  if (live) throw unavailable(`${what}: ${path} is in use by another server`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}
