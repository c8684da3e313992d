/**
 * `skiff task …`: the low-level debug API of skiffd (tasks run straight from a rootfs directory or
 * an image, below the CRI layer). Errors propagate to the caller, which prints them.
 */
import type { Command } from "commander";
import * as path from "node:path";
import { DebugClient } from "../daemon/debug-client.js";

export function registerTaskVerbs(program: Command, debugSocket: () => string): void {
  async function withClient<T>(fn: (c: DebugClient) => Promise<T>): Promise<T> {
    const c = await DebugClient.connect(debugSocket());
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }
  const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));

  const task = program.command("task").description("low-level tasks (containers run straight from a rootfs dir)");
  task
    .command("run")
    .description("create and start a task from an image or a rootfs directory; waits for it unless --detach")
    .requiredOption("--id <id>", "task id")
    .option("--rootfs <dir>", "root filesystem directory")
    .option("--image <ref>", "image (e.g. docker.io/library/busybox:latest); its Cmd is replaced by the args")
    .option("--group <group>", "shim group (tasks of one group share a shim)")
    .option("--runtime <name>", "runtime handler")
    .option("--stdout <file>", "append the task's stdout to this file")
    .option("--stderr <file>", "append the task's stderr to this file")
    .option("-d, --detach", "return once started")
    .argument("[args...]", "command and arguments (required with --rootfs)")
    .action(async (args: string[], o: Record<string, string | boolean | undefined>) => {
      const file = (p: unknown) => (typeof p === "string" ? `file://${path.resolve(p)}` : "");
      await withClient(async (c) => {
        const info = await c.call("Run", {
          id: o.id,
          rootfs: typeof o.rootfs === "string" ? path.resolve(o.rootfs) : undefined,
          image: o.image,
          args,
          group: o.group,
          runtime: o.runtime,
          stdout: file(o.stdout),
          stderr: file(o.stderr),
        });
        if (o.detach) {
          print(info);
          return;
        }
        const exit = await c.call<{ exitStatus: number }>("Wait", { id: o.id }, { timeoutMs: 2 ** 31 - 1 });
        await c.call("Delete", { id: o.id });
        process.exitCode = exit.exitStatus;
      });
    });
  task.command("ls").description("list tasks and shims").action(() => withClient(async (c) => print(await c.call("List"))));
  task.command("info <id>").action((id: string) => withClient(async (c) => print(await c.call("Info", { id }))));
  task
    .command("state <id>")
    .description("the task's state as its shim reports it")
    .action((id: string) => withClient(async (c) => print(await c.call("State", { id }))));
  task.command("start <id>").action((id: string) => withClient(async (c) => print(await c.call("Start", { id }))));
  task
    .command("kill <id>")
    .option("-s, --signal <n>", "signal number", "15")
    .option("-a, --all", "signal every process of the task")
    .action((id: string, o: { signal: string; all?: boolean }) =>
      withClient(async (c) => print(await c.call("Kill", { id, signal: Number(o.signal), all: !!o.all }))),
    );
  task
    .command("wait <id>")
    .action((id: string) => withClient(async (c) => print(await c.call("Wait", { id }, { timeoutMs: 2 ** 31 - 1 }))));
  task
    .command("delete <id>")
    .alias("rm")
    .option("-f, --force", "kill a running task first")
    .option("--timeout <ms>", "how long to wait for the teardown (it goes on in skiffd after that)", "10000")
    .action((id: string, o: { force?: boolean; timeout: string }) =>
      withClient(async (c) => print(await c.call("Delete", { id, force: !!o.force }, { timeoutMs: Number(o.timeout) }))),
    );
}
