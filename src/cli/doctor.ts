/**
 * `skiff doctor [--repair] [-o json]`: asks skiffd (which owns the metadata) to compare what
 * lives on the host with its records, prints the findings, and exits 1 when drift remains.
 */
import type { Command } from "commander";
import { DebugClient } from "../daemon/debug-client.js";
import { formatReport } from "../doctor/format.js";
import type { DoctorReport } from "../doctor/types.js";
import { invalidArgument } from "../errors.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check that no shim, runc container, mount, netns or directory outlives its record; --repair fixes drift")
    .option("--repair", "repair what is found (orphans are removed; live pods and containers are never touched)")
    .option("-o, --output <format>", "text or json", "text")
    .option("--timeout <ms>", "how long to wait for the check and its repairs", "120000")
    .action(async (o: { repair?: boolean; output: string; timeout: string }) => {
      if (o.output !== "text" && o.output !== "json") throw invalidArgument(`doctor: unknown output format "${o.output}" (use text or json)`);
      const socket = program.opts<{ debugSocket: string }>().debugSocket;
      const c = await DebugClient.connect(socket);
      let report: DoctorReport;
      try {
        report = await c.call<DoctorReport>("Doctor", { repair: !!o.repair }, { timeoutMs: Number(o.timeout) });
      } finally {
        c.close();
      }
      console.log(o.output === "json" ? JSON.stringify(report, null, 2) : formatReport(report));
      process.exitCode = report.clean ? 0 : 1;
    });
}
