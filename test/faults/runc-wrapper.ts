/**
 * A runc wrapper for a runtime handler's `binary_name` (the shim runs it instead of runc): it
 * delays or fails `runc delete` as a control file says, and passes everything else through.
 * The held-pipe variant of the seed scenario: a delete that takes longer than its caller waits.
 *
 * Layout in `dir`: `runc` (the script), `runc-faults` (control, shell assignments the script
 * reads on every delete), `runc-deletes.log` (one line per delete: time, action, argv). The
 * control file is read per call, so a test changes the fault while containers run.
 */
import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { runChecked } from "../../src/util/exec.js";

export interface RuncFaults {
  /** Seconds every `runc delete` sleeps before running (0: none). */
  deleteDelayS?: number;
  /** Delay only the first delete of each container id (a one-off stall, like strace `when=1`). */
  deleteDelayOnce?: boolean;
  /** Fail every `runc delete` with exit status 1 (after the delay), leaving the container. */
  deleteFail?: boolean;
  /**
   * Seconds every `runc create` holds its caller after the container was made (0: none): a
   * daemon killed meanwhile cuts the shim's Create after runc made the container.
   */
  createHoldS?: number;
}

export interface RuncWrapper {
  /** The script to configure as `binary_name`. */
  readonly binary: string;
  readonly control: string;
  readonly log: string;
  /** Replaces the faults (atomically: a delete in progress reads the old or the new file). */
  set(faults: RuncFaults): Promise<void>;
  /** The deletes seen so far, with what the wrapper did to each. */
  deletes(): Promise<{ action: "pass" | "delayed" | "failed"; args: string }[]>;
  /** How many `runc create` calls have been held so far (logged once the container was made). */
  heldCreates(): Promise<number>;
}

/** Writes the wrapper into `dir` (which must exist) with no fault set. */
export async function installRuncWrapper(dir: string, opts: { runc?: string } = {}): Promise<RuncWrapper> {
  const runc = opts.runc ?? (await runChecked("sh", ["-c", "command -v runc"])).stdout.toString().trim();
  if (!runc) throw new Error("runc not found on PATH");
  const binary = path.join(dir, "runc");
  const control = path.join(dir, "runc-faults");
  const log = path.join(dir, "runc-deletes.log");
  // The shim passes global flags first (--root, --log, --log-format), then the command: any
  // argument equal to "delete" is the command (ids are never that word).
  const script = `#!/bin/sh
# runc wrapper of skiff's fault tests: delays or fails "runc delete", or holds "runc create"
# after it made the container, as ${control} says.
for a in "$@"; do
  if [ "$a" = create ]; then
    CREATE_HOLD_S=0
    [ -r ${q(control)} ] && . ${q(control)}
    [ "$CREATE_HOLD_S" = 0 ] && break
    ${q(runc)} "$@" || exit $?
    echo "$(date +%s.%N) held-create $*" >> ${q(log)}
    sleep "$CREATE_HOLD_S"
    exit 0
  fi
  if [ "$a" = delete ]; then
    DELETE_DELAY_S=0 DELETE_FAIL=0 DELETE_ONCE=0
    [ -r ${q(control)} ] && . ${q(control)}
    # The container id is the last argument.
    for id in "$@"; do :; done
    if [ "$DELETE_ONCE" = 1 ] && grep -q " delayed .* $id\$" ${q(log)}; then DELETE_DELAY_S=0; fi
    action=pass
    [ "$DELETE_DELAY_S" != 0 ] && action=delayed
    [ "$DELETE_FAIL" = 1 ] && action=failed
    # Logged before the delay: a caller may kill us while we sleep (containerd does, on timeout).
    echo "$(date +%s.%N) $action $*" >> ${q(log)}
    [ "$DELETE_DELAY_S" != 0 ] && sleep "$DELETE_DELAY_S"
    if [ "$DELETE_FAIL" = 1 ]; then
      echo "injected failure of runc delete" >&2
      exit 1
    fi
    break
  fi
done
exec ${q(runc)} "$@"
`;
  await writeFile(binary, script);
  await chmod(binary, 0o755);
  await writeFile(log, "");
  const w: RuncWrapper = {
    binary,
    control,
    log,
    set: (f: RuncFaults) => setRuncFaults(dir, f),
    async heldCreates() {
      const text = await readFile(log, "utf8").catch(() => "");
      return text.split("\n").filter((l) => l.includes(" held-create ")).length;
    },
    async deletes() {
      const text = await readFile(log, "utf8").catch(() => "");
      return text
        .split("\n")
        .filter((l) => l && !l.includes(" held-create "))
        .map((l) => {
          const [, action = "pass", ...args] = l.split(" ");
          return { action: action as "pass" | "delayed" | "failed", args: args.join(" ") };
        });
    },
  };
  await w.set({});
  return w;
}

/** Replaces the faults of the wrapper installed in `dir` (atomically: rename over the file). */
export async function setRuncFaults(dir: string, f: RuncFaults): Promise<void> {
  const delay = f.deleteDelayS ?? 0;
  if (!Number.isFinite(delay) || delay < 0) throw new Error(`runc wrapper: bad delete delay ${delay}`);
  const control = path.join(dir, "runc-faults");
  const hold = f.createHoldS ?? 0;
  if (!Number.isFinite(hold) || hold < 0) throw new Error(`runc wrapper: bad create hold ${hold}`);
  await writeFile(
    `${control}.tmp`,
    `DELETE_DELAY_S=${delay}\nDELETE_FAIL=${f.deleteFail ? 1 : 0}\nDELETE_ONCE=${f.deleteDelayOnce ? 1 : 0}\nCREATE_HOLD_S=${hold}\n`,
  );
  await rename(`${control}.tmp`, control);
}

/** Single-quotes a path for sh. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

