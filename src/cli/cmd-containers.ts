/** Container verbs: `ps`, `create`, `start`, `stop`, `rm`, `inspect` (crictl's names and flags). */
import type { Command } from "commander";
import { ContainerConfigSchema, ContainerSchema, ContainerState, ContainerStatusSchema, PodSandboxConfigSchema, type Container } from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import { CONTAINER_STATE_NAMES, intFlag, parseContainerState, type CliContext } from "./context.js";
import { infoJson, loadMessage, messageJson } from "./cri-files.js";
import { ago, parseOutputFormat, renderData, shortId, table } from "./format.js";
import { parseLabels } from "./cmd-pods.js";
import { ensureImage } from "./cmd-images.js";
import type { CriClient } from "./client.js";

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The image column: the name the container was created with, else the short image id. */
function imageColumn(c: Container): string {
  const name = c.image?.image ?? "";
  return name && !name.startsWith("sha256:") ? name : shortId(c.imageRef || name);
}

export function containerRows(items: Container[], podNames: Map<string, string>, noTrunc = false): string {
  const rows = [...items]
    .sort((a, b) => Number(b.createdAt - a.createdAt))
    .map((c) => [
      noTrunc ? c.id : shortId(c.id),
      imageColumn(c),
      ago(c.createdAt),
      CONTAINER_STATE_NAMES[c.state] ?? String(c.state),
      c.metadata?.name ?? "",
      String(c.metadata?.attempt ?? 0),
      noTrunc ? c.podSandboxId : shortId(c.podSandboxId),
      podNames.get(c.podSandboxId) ?? "",
    ]);
  return table(["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"], rows);
}

/** Creates a container in `podId`, pulling its image first when asked to; returns its id. */
export async function createContainer(ctx: CliContext, podId: string, ctrFile: string, podFile: string, pull: boolean): Promise<string> {
  const config = await loadMessage(ContainerConfigSchema, ctrFile);
  const sandboxConfig = await loadMessage(PodSandboxConfigSchema, podFile);
  const c = await ctx.client();
  if (pull) await ensureImage(c, config.image?.image ?? "", sandboxConfig);
  const [id] = await ctx.podIds([podId]);
  const res = await c.runtime.createContainer({ podSandboxId: id!, config, sandboxConfig }, c.call());
  return res.containerId;
}

/** Stops (grace `timeoutSec`) and removes one container; NotFound counts as done (CRI is idempotent). */
export async function stopAndRemove(c: CriClient, id: string, timeoutSec: number): Promise<void> {
  await c.runtime.stopContainer({ containerId: id, timeout: BigInt(timeoutSec) }, c.call(timeoutSec * 1000));
  await c.runtime.removeContainer({ containerId: id }, c.call());
}

export function registerContainerVerbs(program: Command, ctx: CliContext): void {
  program
    .command("ps")
    .description("list containers (running ones unless -a or --state)")
    .option("-a, --all", "all containers, whatever their state")
    .option("-p, --pod <pod-id>", "only containers of this pod (id or id prefix)")
    .option("--name <regexp>", "only containers whose name matches")
    .option("-s, --state <state>", "only containers in this state (created, running, exited, unknown)")
    .option("--id <id>", "only the container with this id (or id prefix)")
    .option("--label <key=value>", "only containers with this label (repeatable)", collect)
    .option("-q, --quiet", "only ids")
    .option("--no-trunc", "full ids")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .action(
      ctx.action(
        "ps",
        async (o: { all?: boolean; pod?: string; name?: string; state?: string; id?: string; label?: string[]; quiet?: boolean; trunc: boolean; output: string }) => {
          const format = parseOutputFormat(o.output);
          const state = o.state ? parseContainerState(o.state) : o.all ? undefined : ContainerState.CONTAINER_RUNNING;
          const c = await ctx.client();
          const podSandboxId = o.pod ? (await ctx.podIds([o.pod]))[0]! : "";
          const filter = { podSandboxId, labelSelector: parseLabels(o.label), ...(state !== undefined ? { state: { state } } : {}) };
          let items = (await c.runtime.listContainers({ filter }, c.call())).containers;
          if (o.id) items = items.filter((x) => x.id.startsWith(o.id!));
          if (o.name) items = items.filter((x) => new RegExp(o.name!).test(x.metadata?.name ?? ""));
          if (o.quiet) return ctx.io.out(items.map((x) => `${x.id}\n`).join(""));
          if (format !== "table") return ctx.io.out(renderData(format, { containers: items.map((x) => messageJson(ContainerSchema, x)) }));
          const pods = (await c.runtime.listPodSandbox({}, c.call())).items;
          ctx.io.out(containerRows(items, new Map(pods.map((p) => [p.id, p.metadata?.name ?? ""])), !o.trunc));
        },
      ),
    );

  program
    .command("create <pod-id> <container-config> <pod-config>")
    .description("create a container in a pod from a ContainerConfig and the pod's PodSandboxConfig file; prints its id")
    .option("--with-pull", "pull the image first when it is missing")
    .action(
      ctx.action("create", async (podId: string, ctrFile: string, podFile: string, o: { withPull?: boolean }) => {
        const pull = !!o.withPull || (await ctx.settings()).pullImageOnCreate;
        ctx.io.out(`${await createContainer(ctx, podId, ctrFile, podFile, pull)}\n`);
      }),
    );

  program
    .command("start <container-id...>")
    .description("start created containers")
    .action(
      ctx.action("start", async (ids: string[]) => {
        const c = await ctx.client();
        for (const id of await ctx.containerIds(ids)) {
          await c.runtime.startContainer({ containerId: id }, c.call());
          ctx.io.out(`${id}\n`);
        }
      }),
    );

  program
    .command("stop <container-id...>")
    .description("stop running containers (the stop signal, then SIGKILL after the timeout)")
    .option("-t, --timeout <seconds>", "grace period before SIGKILL", "0")
    .action(
      ctx.action("stop", async (ids: string[], o: { timeout: string }) => {
        const grace = intFlag(o.timeout, "--timeout")!;
        const c = await ctx.client();
        for (const id of await ctx.containerIds(ids)) {
          await c.runtime.stopContainer({ containerId: id, timeout: BigInt(grace) }, c.call(grace * 1000));
          ctx.io.out(`${id}\n`);
        }
      }),
    );

  program
    .command("rm <container-id...>")
    .description("remove containers")
    .option("-f, --force", "stop a running container first")
    .action(
      ctx.action("rm", async (ids: string[], o: { force?: boolean }) => {
        const c = await ctx.client();
        for (const id of await ctx.containerIds(ids)) {
          if (o.force) await stopAndRemove(c, id, 0);
          else {
            const st = await c.runtime.containerStatus({ containerId: id }, c.call()).catch(() => undefined);
            if (st?.status?.state === ContainerState.CONTAINER_RUNNING) {
              throw invalidArgument(`container ${id} is running: stop it first or use rm -f`);
            }
            await c.runtime.removeContainer({ containerId: id }, c.call());
          }
          ctx.io.out(`${id}\n`);
        }
      }),
    );

  program
    .command("inspect <container-id...>")
    .description("status of containers (verbose)")
    .option("-o, --output <format>", "json or yaml", "json")
    .action(
      ctx.action("inspect", async (ids: string[], o: { output: string }) => {
        const format = parseOutputFormat(o.output, ["json", "yaml"]) as "json" | "yaml";
        const c = await ctx.client();
        for (const id of await ctx.containerIds(ids)) {
          const res = await c.runtime.containerStatus({ containerId: id, verbose: true }, c.call());
          if (!res.status) throw invalidArgument(`container ${id}: the runtime returned no status`);
          ctx.io.out(renderData(format, { status: messageJson(ContainerStatusSchema, res.status), info: infoJson(res.info) }));
        }
      }),
    );
}
