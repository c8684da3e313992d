/**
 * A CNI plugin of the tests' own, appended to a conflist's chain, that fails ADD or hangs DEL as
 * a control file says. It runs last on ADD (after bridge and host-local did their work, so a
 * failure must be undone by a DEL of the chain) and first on DEL (the chain runs in reverse), so
 * a hung DEL holds the whole network teardown.
 *
 * Files in `dir`: the plugin `<type>` (a node script), `<type>.json` (control), `<type>.log`
 * (one JSON line per call), `<type>.pids/<pid>` (one file per running call; removed on exit).
 */
import { mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { isAlive } from "../../src/util/proc.js";

export const FAULT_PLUGIN_TYPE = "skiff-test-faults";

export interface CniFaults {
  /** ADD answers a CNI error (code 999) and exits 1. */
  failAdd?: boolean;
  /** The first `hangDels` DELs of each container id sleep `hangDelMs` before succeeding. */
  hangDels?: number;
  hangDelMs?: number;
}

export interface CniCall {
  cmd: string;
  container: string;
  pid: number;
  /** What the plugin did: "ok", "failed", "hung". */
  action: string;
}

export interface FaultyCniPlugin {
  readonly type: string;
  readonly binDir: string;
  set(faults: CniFaults): Promise<void>;
  calls(): Promise<CniCall[]>;
  /** Pids of plugin calls still running (a hung DEL the runtime did not kill shows up here). */
  running(): Promise<number[]>;
}

/**
 * Writes the plugin into `binDir` (created if needed) and appends it to the chain of the one
 * `.conflist` in `confDir`. The caller puts `binDir` first in the runtime's plugin dirs.
 */
export async function installFaultyCni(binDir: string, confDir: string): Promise<FaultyCniPlugin> {
  await mkdir(binDir, { recursive: true });
  const type = FAULT_PLUGIN_TYPE;
  const file = path.join(binDir, type);
  const control = path.join(binDir, `${type}.json`);
  const log = path.join(binDir, `${type}.log`);
  const pids = path.join(binDir, `${type}.pids`);
  await mkdir(pids, { recursive: true });
  await writeFile(file, pluginScript(control, log, pids), { mode: 0o755 });
  const lists = (await readdir(confDir)).filter((f) => f.endsWith(".conflist"));
  if (lists.length !== 1) throw new Error(`expected one .conflist in ${confDir}, found ${lists.length}`);
  const confFile = path.join(confDir, lists[0]!);
  const conf = JSON.parse(await readFile(confFile, "utf8")) as { plugins: { type: string }[] };
  conf.plugins.push({ type });
  await writeFile(confFile, JSON.stringify(conf, null, 2));
  const plugin: FaultyCniPlugin = {
    type,
    binDir,
    set: (f) => setCniFaults(binDir, f),
    async calls() {
      const text = await readFile(log, "utf8").catch(() => "");
      return text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as CniCall);
    },
    async running() {
      const out: number[] = [];
      for (const name of await readdir(pids).catch(() => [] as string[])) if (await isAlive(Number(name))) out.push(Number(name));
      return out;
    },
  };
  await plugin.set({});
  return plugin;
}

/** Replaces the faults of the plugin installed in `binDir` (atomically: rename over the file). */
export async function setCniFaults(binDir: string, f: CniFaults): Promise<void> {
  const control = path.join(binDir, `${FAULT_PLUGIN_TYPE}.json`);
  await writeFile(`${control}.tmp`, JSON.stringify(f));
  await rename(`${control}.tmp`, control);
}

/**
 * The plugin: ADD passes the previous result through (or fails), DEL succeeds (maybe after a
 * hang), CHECK succeeds, VERSION lists the spec versions the default conflist uses.
 */
function pluginScript(control: string, log: string, pids: string): string {
  const j = JSON.stringify;
  return `#!${process.execPath}
const fs = require("node:fs");
const pidFile = ${j(pids)} + "/" + process.pid;
fs.writeFileSync(pidFile, "");
process.on("exit", () => { try { fs.unlinkSync(pidFile); } catch {} });
let input = "";
process.stdin.on("data", (d) => (input += d)).on("end", () => {
  const conf = JSON.parse(input || "{}");
  let f = {};
  try { f = JSON.parse(fs.readFileSync(${j(control)}, "utf8")); } catch {}
  const cmd = process.env.CNI_COMMAND || "";
  const container = process.env.CNI_CONTAINERID || "";
  const note = (action) => fs.appendFileSync(${j(log)}, JSON.stringify({ cmd, container, pid: process.pid, action }) + "\\n");
  if (cmd === "ADD") {
    if (f.failAdd) {
      note("failed");
      process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 999, msg: "injected ADD failure" }));
      process.exit(1);
    }
    note("ok");
    process.stdout.write(JSON.stringify(conf.prevResult || { cniVersion: conf.cniVersion }));
  } else if (cmd === "DEL") {
    let before = 0;
    try {
      for (const l of fs.readFileSync(${j(log)}, "utf8").split("\\n")) {
        if (l && JSON.parse(l).cmd === "DEL" && JSON.parse(l).container === container) before++;
      }
    } catch {}
    if (before < (f.hangDels || 0)) {
      note("hung");
      setTimeout(() => {}, f.hangDelMs || 600000);
      return;
    }
    note("ok");
  } else if (cmd === "VERSION") {
    process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion || "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] }));
  } else {
    note("ok");
  }
});
`;
}
