#!/usr/bin/env node
/** skiff — command-line client. `skiff task ...` drives the low-level debug API of skiffd. */
import { Command } from "commander";
import * as path from "node:path";
import { DebugClient } from "../daemon/debug-client.js";
import { defaultConfig } from "../config.js";
import { SkiffError } from "../errors.js";

const program = new Command().name("skiff").description("skiff container runtime client");
program.option("--debug-socket <path>", "skiffd debug socket", defaultConfig().debugSocket);

async function withClient<T>(fn: (c: DebugClient) => Promise<T>): Promise<T> {
  const c = await DebugClient.connect(program.opts<{ debugSocket: string }>().debugSocket);
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
program
  .command("images")
  .description("list images (name, digest, id, size)")
  .action(() => withClient(async (c) => print(await c.call("Images"))));
program
  .command("rmi <ref>")
  .description("remove an image name; frees what no other image or container uses")
  .action((ref: string) => withClient(async (c) => print(await c.call("RemoveImage", { ref }))));
program
  .command("pull <ref>")
  .description("pull an image from its registry (settings from skiffd's [registry] config); prints name, digest, id, size")
  .option("--timeout <ms>", "give up after this long (the pull is canceled in skiffd)", String(30 * 60 * 1000))
  .action((ref: string, o: { timeout: string }) =>
    withClient(async (c) => {
      console.error(`pulling ${ref} ...`);
      print(await c.call("Pull", { ref }, { timeoutMs: Number(o.timeout) }));
    }),
  );
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

try {
  await program.parseAsync();
} catch (err) {
  const msg = err instanceof SkiffError ? `${err.message} (${err.code})` : (err as Error).message;
  console.error(`skiff: ${msg}`);
  process.exitCode = process.exitCode || 1;
}
