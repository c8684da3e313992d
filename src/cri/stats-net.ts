/**
 * Network counters of a pod, from /proc/<pause pid>/net/dev: the kernel shows that file for the
 * network namespace of the process reading through that pid, so no setns and no process spawn
 * is needed. The CNI-configured interface (eth0) is the default one, as in containerd.
 */
import { readFile } from "node:fs/promises";

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxErrors: bigint;
  txBytes: bigint;
  txErrors: bigint;
}

export const DEFAULT_INTERFACE = "eth0";

/**
 * Parses net/dev: two header lines, then "name: rx_bytes rx_packets rx_errs rx_drop rx_fifo
 * rx_frame rx_compressed rx_multicast tx_bytes tx_packets tx_errs …". Loopback is left out (it
 * is traffic inside the pod, not the pod's).
 */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (!name || name === "lo" || f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    out.push({ name, rxBytes: BigInt(f[0]!), rxErrors: BigInt(f[2]!), txBytes: BigInt(f[8]!), txErrors: BigInt(f[10]!) });
  }
  return out;
}

/** The interfaces of `pid`'s network namespace; undefined when the process is gone. */
export async function readNetDev(pid: number): Promise<InterfaceCounters[] | undefined> {
  try {
    return parseNetDev(await readFile(`/proc/${pid}/net/dev`, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH" || code === "EINVAL") return undefined;
    throw err;
  }
}
