/** One line naming the machine a benchmark ran on, for the README table's heading. */
import * as os from "node:os";

export function machine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.replace(/\s+/g, " ").trim() ?? "unknown CPU";
  const gib = Math.round(os.totalmem() / 2 ** 30);
  return `${cpus.length} × ${model}, ${gib} GiB, Linux ${os.release()}, Node ${process.version}`;
}
