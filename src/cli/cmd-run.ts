/** `run` (pod + container in one), `exec` (ExecSync) and `logs` (the CRI log file). */
import type { Command } from "commander";
import { ContainerState, PodSandboxConfigSchema, ContainerConfigSchema } from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import { intFlag, type CliContext } from "./context.js";
import type { CriClient } from "./client.js";
import { loadMessage } from "./cri-files.js";
import { ensureImage } from "./cmd-images.js";
import { stopAndRemove } from "./cmd-containers.js";
import { readLog, type LogSink } from "./log-reader.js";
import { execStreaming } from "./exec-stream.js";
import { terminalIo } from "./cmd-stream.js";

const RUNP_TIMEOUT_MS = 4 * 60 * 1000;

/** Polls until the container has exited; returns its exit code. */
async function waitExited(c: CriClient, id: string, signal?: AbortSignal): Promise<number> {
  for (;;) {
    const st = await c.runtime.containerStatus({ containerId: id }, c.call(0, signal));
    if (st.status?.state === ContainerState.CONTAINER_EXITED) return st.status.exitCode;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stops and removes a pod (and so its containers); used to undo a half-done `run`. */
async function removePod(c: CriClient, podId: string): Promise<void> {
  await c.runtime.stopPodSandbox({ podSandboxId: podId }, c.call());
  await c.runtime.removePodSandbox({ podSandboxId: podId }, c.call());
}

function sinkOf(ctx: CliContext): LogSink {
  return { write: (stream, text) => (stream === "stderr" ? ctx.io.err(text) : ctx.io.out(text)) };
}

export function registerRunVerbs(program: Command, ctx: CliContext): void {
  program
    .command("run <container-config> <pod-config>")
    .description("run a pod and a container in it (pulls a missing image); prints the container id")
    .option("-r, --runtime <handler>", "runtime handler of the pod")
    .option("--no-pull", "never pull the image")
    .option("--rm", "wait for the container to exit, print its output, then remove it and its pod; exits with its code")
    .action(
      ctx.action("run", async (ctrFile: string, podFile: string, o: { runtime?: string; pull: boolean; rm?: boolean }) => {
        const config = await loadMessage(ContainerConfigSchema, ctrFile);
        const sandboxConfig = await loadMessage(PodSandboxConfigSchema, podFile);
        const c = await ctx.client();
        if (o.pull) await ensureImage(c, config.image?.image ?? "", sandboxConfig);
        const runp = { config: sandboxConfig, runtimeHandler: o.runtime ?? "" };
        const podId = (await c.runtime.runPodSandbox(runp, c.call(Math.max(RUNP_TIMEOUT_MS - c.settings.timeoutMs, 0)))).podSandboxId;
        let ctrId: string | undefined;
        try {
          ctrId = (await c.runtime.createContainer({ podSandboxId: podId, config, sandboxConfig }, c.call())).containerId;
          await c.runtime.startContainer({ containerId: ctrId }, c.call());
        } catch (err) {
          // Nothing half-made stays behind: the pod (and a created container with it) goes.
          await removePod(c, podId).catch(() => {});
          throw err;
        }
        if (!o.rm) return ctx.io.out(`${ctrId}\n`);
        // Ctrl-C while waiting still removes what this run made.
        const ac = new AbortController();
        const onSig = () => ac.abort();
        process.once("SIGINT", onSig);
        try {
          const code = await waitExited(c, ctrId, ac.signal);
          const st = await c.runtime.containerStatus({ containerId: ctrId }, c.call());
          if (st.status?.logPath) await readLog(st.status.logPath, sinkOf(ctx)).catch(() => {});
          process.exitCode = code;
        } finally {
          process.off("SIGINT", onSig);
          await stopAndRemove(c, ctrId, 0).catch(() => {});
          await removePod(c, podId);
        }
      }),
    );

  program
    .command("exec")
    .description("run a command in a running container (ExecSync; -i/-t: streaming Exec); exits with its code")
    .option("-i, --interactive", "pass stdin to the command (streaming Exec)")
    .option("-t, --tty", "run the command in a terminal (streaming Exec)")
    .option("-s, --sync", "run synchronously (the default; accepted for crictl compatibility)")
    .option("--timeout <seconds>", "kill the command after this long (0: no limit)", "0")
    .argument("<container-id>")
    .argument("<command...>")
    .passThroughOptions()
    .action(
      ctx.action("exec", async (id: string, cmd: string[], o: { interactive?: boolean; tty?: boolean; timeout: string }) => {
        const secs = intFlag(o.timeout, "--timeout")!;
        const c = await ctx.client();
        const [full] = await ctx.containerIds([id]);
        if (o.interactive || o.tty) {
          process.exitCode = await execStreaming(c, terminalIo(ctx), full!, cmd, { stdin: !!o.interactive, tty: !!o.tty });
          return;
        }
        const call = secs > 0 ? c.call(secs * 1000) : {};
        const res = await c.runtime.execSync({ containerId: full!, cmd, timeout: BigInt(secs) }, call);
        if (res.stdout.length) ctx.io.out(Buffer.from(res.stdout).toString());
        if (res.stderr.length) ctx.io.err(Buffer.from(res.stderr).toString());
        process.exitCode = res.exitCode;
      }),
    );

  program
    .command("logs <container-id>")
    .description("print a container's log (from the CRI log file its status names)")
    .option("-f, --follow", "keep printing new output until the container exits")
    .option("--tail <n>", "only the last n lines")
    .option("-t, --timestamps", "prefix each line with its RFC3339Nano timestamp")
    .action(
      ctx.action("logs", async (id: string, o: { follow?: boolean; tail?: string; timestamps?: boolean }) => {
        const tail = intFlag(o.tail, "--tail");
        const c = await ctx.client();
        const [full] = await ctx.containerIds([id]);
        const st = await c.runtime.containerStatus({ containerId: full! }, c.call());
        const file = st.status?.logPath;
        if (!file) throw invalidArgument(`container ${full} has no log path (its config set no log_path)`);
        const ac = new AbortController();
        const onSig = () => ac.abort();
        process.once("SIGINT", onSig);
        try {
          await readLog(file, sinkOf(ctx), {
            ...(tail !== undefined ? { tail } : {}),
            timestamps: !!o.timestamps,
            follow: !!o.follow,
            signal: ac.signal,
            stillWriting: async () => {
              const s = await c.runtime.containerStatus({ containerId: full! }, c.call()).catch(() => undefined);
              return s?.status?.state === ContainerState.CONTAINER_RUNNING || s?.status?.state === ContainerState.CONTAINER_CREATED;
            },
          });
        } finally {
          process.off("SIGINT", onSig);
        }
      }),
    );
}
