/** `attach` and `port-forward`: crictl's streaming verbs, through skiffd's streaming server. */
import type { Command } from "commander";
import type { CliContext } from "./context.js";
import { attachStreaming, streamingUrl, type StreamIo } from "./exec-stream.js";
import { parsePortMapping, PortForwarder } from "./port-forward.js";

/** The terminal of this process, for `-t` (size now and on change). */
export function terminalIo(ctx: CliContext): StreamIo {
  const out = process.stdout;
  const terminal = out.isTTY
    ? { size: () => ({ columns: out.columns, rows: out.rows }), onResize: (fn: () => void) => (out.on("resize", fn), () => void out.off("resize", fn)) }
    : undefined;
  return { ...ctx.io, stdin: process.stdin, ...(terminal ? { terminal } : {}) };
}

export function registerStreamVerbs(program: Command, ctx: CliContext): void {
  program
    .command("attach")
    .description("attach to a running container's output (and stdin with -i); Ctrl-C detaches, the container goes on")
    .option("-i, --stdin", "pass stdin to the container (it must have been created with stdin)")
    .option("-t, --tty", "the container has a terminal (created with tty)")
    .argument("<container-id>")
    .action(
      ctx.action("attach", async (id: string, o: { stdin?: boolean; tty?: boolean }) => {
        const c = await ctx.client();
        const [full] = await ctx.containerIds([id]);
        process.exitCode = await attachStreaming(c, terminalIo(ctx), full!, { stdin: !!o.stdin, tty: !!o.tty });
      }),
    );

  program
    .command("port-forward")
    .description("forward local ports to ports in a pod: [LOCAL:]REMOTE (a lone port maps to itself; ':80' picks a free local port)")
    .argument("<pod-id>")
    .argument("<ports...>")
    .action(
      ctx.action("port-forward", async (id: string, ports: string[]) => {
        const mappings = ports.map(parsePortMapping);
        const c = await ctx.client();
        const [pod] = await ctx.podIds([id]);
        const fwd = new PortForwarder({
          url: (remote) => streamingUrl("port-forward", () => c.runtime.portForward({ podSandboxId: pod!, port: [remote] }, c.call())),
          onError: (msg) => ctx.io.err(`skiff: port-forward: ${msg}\n`),
        });
        // Checked once up front, so a pod that is gone or not ready is an error, not a listener.
        await streamingUrl("port-forward", () => c.runtime.portForward({ podSandboxId: pod!, port: mappings.map((m) => m.remote) }, c.call()));
        for (const m of await fwd.listen(mappings)) ctx.io.out(`Forwarding from 127.0.0.1:${m.local} -> ${m.remote}\n`);
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        await fwd.close();
      }),
    );
}
