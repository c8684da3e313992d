/**
 * The fault tools from the command line, for reproducing a reliability scenario by hand against
 * a running skiffd (or containerd). Root only. Run with `node --import tsx test/faults/cli.ts`:
 *
 *   umount2-delay PID [--delay-ms 15000] [--when 1] [--log FILE]   (until Ctrl-C, then detaches)
 *   runc-wrapper install DIR          prints the script to set as [runtimes.X] binary_name
 *   runc-wrapper set DIR [--delay-s N] [--once] [--fail] [--create-hold-s N]
 *                                     (--once: first delete per id only; --create-hold-s: runc
 *                                      create holds its caller N s after making the container)
 *   kill-shims NAMESPACE [--count N] [--seed S] [--max-gap-ms M]
 *   kill-daemon PID [--after-ms N | --random-max-ms N] [--seed S]
 *   cni-plugin install BIN_DIR CONF_DIR
 *   cni-plugin set BIN_DIR [--fail-add] [--hang-dels N] [--hang-del-ms M]
 *   small-fs mount DIR [--size-mib 16] | fill DIR | free DIR | unmount DIR
 *
 * A dropped ttrpc connection has no command: it needs the daemon in-process (see ttrpc-drop.ts).
 */
import { parseArgs } from "node:util";
import { runChecked } from "../../src/util/exec.js";
import { delayUmount2 } from "./strace.js";
import { installRuncWrapper, setRuncFaults } from "./runc-wrapper.js";
import { killAfter, killShims } from "./kill.js";
import { makeRng } from "./random.js";
import { installFaultyCni, setCniFaults } from "./cni-plugin.js";
import { fillDir, freeDir, mountSmallFs } from "./full-disk.js";

const USAGE = "usage: cli.ts umount2-delay|runc-wrapper|kill-shims|kill-daemon|cni-plugin|small-fs ... (see the file's header)";

function num(v: string | boolean | undefined, name: string, dflt?: number): number {
  if (v === undefined || typeof v === "boolean") {
    if (dflt === undefined) throw new Error(`--${name} is required`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

function arg(list: string[], i: number, what: string): string {
  const v = list[i];
  if (!v) throw new Error(`missing ${what}\n${USAGE}`);
  return v;
}

export async function main(argv: string[]): Promise<void> {
  const { values: o, positionals: p } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "delay-ms": { type: "string" },
      when: { type: "string" },
      log: { type: "string" },
      "delay-s": { type: "string" },
      "create-hold-s": { type: "string" },
      fail: { type: "boolean" },
      once: { type: "boolean" },
      count: { type: "string" },
      seed: { type: "string" },
      "max-gap-ms": { type: "string" },
      "after-ms": { type: "string" },
      "random-max-ms": { type: "string" },
      "fail-add": { type: "boolean" },
      "hang-dels": { type: "string" },
      "hang-del-ms": { type: "string" },
      "size-mib": { type: "string" },
    },
  });
  const seed = o.seed === undefined ? undefined : num(o.seed, "seed");
  switch (p[0]) {
    case "umount2-delay": {
      const pid = num(arg(p, 1, "PID"), "pid");
      const h = await delayUmount2(pid, { delayMs: num(o["delay-ms"], "delay-ms", 15_000), when: o.when, log: o.log });
      console.log(`strace ${h.pid} attached to ${pid}; Ctrl-C detaches`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await h.detach();
      if (o.log) console.log(`${await h.delayed()} umount2 call(s) delayed`);
      return;
    }
    case "runc-wrapper": {
      const dir = arg(p, 2, "DIR");
      if (p[1] === "install") console.log((await installRuncWrapper(dir)).binary);
      else if (p[1] === "set") await setRuncFaults(dir, { deleteDelayS: num(o["delay-s"], "delay-s", 0), deleteDelayOnce: !!o.once, deleteFail: !!o.fail, createHoldS: num(o["create-hold-s"], "create-hold-s", 0) });
      else throw new Error(USAGE);
      return;
    }
    case "kill-shims": {
      const rng = makeRng(seed);
      const killed = await killShims(arg(p, 1, "NAMESPACE"), {
        count: o.count === undefined ? undefined : num(o.count, "count"),
        rng,
        maxGapMs: num(o["max-gap-ms"], "max-gap-ms", 0),
      });
      console.log(`seed ${rng.seed}: killed ${killed.map((s) => `${s.pid} (${s.id})`).join(", ") || "nothing"}`);
      return;
    }
    case "kill-daemon": {
      const pid = num(arg(p, 1, "PID"), "pid");
      const rng = makeRng(seed);
      const at = o["random-max-ms"] !== undefined ? rng.int(0, num(o["random-max-ms"], "random-max-ms")) : num(o["after-ms"], "after-ms", 0);
      const fired = await killAfter(pid, at).done;
      console.log(fired ? `seed ${rng.seed}: killed ${pid} after ${at} ms` : `${pid} was already gone`);
      return;
    }
    case "cni-plugin": {
      const binDir = arg(p, 2, "BIN_DIR");
      if (p[1] === "install") console.log((await installFaultyCni(binDir, arg(p, 3, "CONF_DIR"))).type);
      else if (p[1] === "set")
        await setCniFaults(binDir, {
          failAdd: !!o["fail-add"],
          hangDels: num(o["hang-dels"], "hang-dels", 0),
          hangDelMs: num(o["hang-del-ms"], "hang-del-ms", 600_000),
        });
      else throw new Error(USAGE);
      return;
    }
    case "small-fs": {
      const dir = arg(p, 2, "DIR");
      if (p[1] === "mount") await mountSmallFs(dir, num(o["size-mib"], "size-mib", 16) * 1024 * 1024);
      else if (p[1] === "fill") console.log(`${await fillDir(dir)} bytes written`);
      else if (p[1] === "free") await freeDir(dir);
      else if (p[1] === "unmount") await runChecked("umount", [dir]);
      else throw new Error(USAGE);
      return;
    }
    default:
      throw new Error(USAGE);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error((err as Error).message);
    process.exitCode = 1;
  });
}
