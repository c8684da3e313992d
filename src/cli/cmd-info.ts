/** Runtime-wide verbs: `stats`, `events`, `info`, `version`. */
import type { Command } from "commander";
import {
  ContainerEventResponseSchema,
  ContainerEventType,
  ContainerState,
  ContainerStatsSchema,
  RuntimeStatusSchema,
  type ContainerStats,
} from "../gen/runtime/v1/api_pb.js";
import { failedPrecondition } from "../errors.js";
import type { CliContext } from "./context.js";
import { isUnimplementedError } from "./client.js";
import { infoJson, messageJson } from "./cri-files.js";
import { humanSize, parseOutputFormat, renderData, shortId, table } from "./format.js";

/** An Unimplemented answer becomes a message that says which RPC the daemon lacks. */
function notYet(rpc: string, err: unknown): unknown {
  return isUnimplementedError(err) ? failedPrecondition(`this skiffd does not implement ${rpc} yet (the CRI call answered Unimplemented)`, err) : err;
}

/** CPU % between two samples of the same container (cumulative core-nanoseconds over wall time). */
export function cpuPercent(a: ContainerStats | undefined, b: ContainerStats): string {
  const ua = a?.cpu?.usageCoreNanoSeconds?.value;
  const ub = b.cpu?.usageCoreNanoSeconds?.value;
  const ta = a?.cpu?.timestamp;
  const tb = b.cpu?.timestamp;
  if (ua === undefined || ub === undefined || !ta || !tb || tb <= ta) {
    const nano = b.cpu?.usageNanoCores?.value;
    return nano !== undefined ? `${(Number(nano) / 1e7).toFixed(2)}` : "-";
  }
  return `${((Number(ub - ua) / Number(tb - ta)) * 100).toFixed(2)}`;
}

export function statsRows(before: Map<string, ContainerStats>, now: ContainerStats[], noTrunc = false): string {
  const rows = now.map((s) => {
    const id = s.attributes?.id ?? "";
    const mem = s.memory?.workingSetBytes?.value;
    const disk = s.writableLayer?.usedBytes?.value;
    const inodes = s.writableLayer?.inodesUsed?.value;
    return [
      noTrunc ? id : shortId(id),
      s.attributes?.metadata?.name ?? "",
      cpuPercent(before.get(id), s),
      mem !== undefined ? humanSize(mem) : "-",
      disk !== undefined ? humanSize(disk) : "-",
      inodes !== undefined ? String(inodes) : "-",
    ];
  });
  return table(["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"], rows);
}

const EVENT_NAMES: Record<ContainerEventType, string> = {
  [ContainerEventType.CONTAINER_CREATED_EVENT]: "created",
  [ContainerEventType.CONTAINER_STARTED_EVENT]: "started",
  [ContainerEventType.CONTAINER_STOPPED_EVENT]: "stopped",
  [ContainerEventType.CONTAINER_DELETED_EVENT]: "deleted",
};

export function registerInfoVerbs(program: Command, ctx: CliContext): void {
  program
    .command("stats [container-id]")
    .description("resource usage of running containers (-a: all); CPU % is measured over --seconds")
    .option("-a, --all", "containers in every state")
    .option("--seconds <n>", "sampling interval for CPU %", "1")
    .option("--no-trunc", "full ids")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .action(
      ctx.action("stats", async (id: string | undefined, o: { all?: boolean; seconds: string; trunc: boolean; output: string }) => {
        const format = parseOutputFormat(o.output);
        const c = await ctx.client();
        const list = async () => {
          try {
            if (id) {
              const [full] = await ctx.containerIds([id]);
              const r = await c.runtime.containerStats({ containerId: full! }, c.call());
              return r.stats ? [r.stats] : [];
            }
            const r = await c.runtime.listContainerStats({}, c.call());
            if (o.all) return r.stats;
            const running = await c.runtime.listContainers({ filter: { state: { state: ContainerState.CONTAINER_RUNNING } } }, c.call());
            const ids = new Set(running.containers.map((x) => x.id));
            return r.stats.filter((s) => ids.has(s.attributes?.id ?? ""));
          } catch (err) {
            throw notYet(id ? "ContainerStats" : "ListContainerStats", err);
          }
        };
        const first = await list();
        if (format !== "table") return ctx.io.out(renderData(format, { stats: first.map((s) => messageJson(ContainerStatsSchema, s)) }));
        const secs = Number(o.seconds);
        if (secs > 0) await new Promise((r) => setTimeout(r, secs * 1000));
        const second = secs > 0 ? await list() : first;
        ctx.io.out(statsRows(new Map(first.map((s) => [s.attributes?.id ?? "", s])), second, !o.trunc));
      }),
    );

  program
    .command("events")
    .description("stream container events (GetContainerEvents) until interrupted")
    .option("-o, --output <format>", "table (one line per event) or json (one object per line)", "table")
    .action(
      ctx.action("events", async (o: { output: string }) => {
        const format = parseOutputFormat(o.output, ["table", "json"]);
        const c = await ctx.client();
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once("SIGINT", stop);
        try {
          for await (const ev of c.runtime.getContainerEvents({}, { signal: ac.signal })) {
            if (format === "json") ctx.io.out(`${JSON.stringify(messageJson(ContainerEventResponseSchema, ev))}\n`);
            else {
              const when = new Date(Number(ev.createdAt / 1_000_000n)).toISOString();
              const pod = ev.podSandboxStatus?.metadata?.name ?? shortId(ev.podSandboxStatus?.id ?? "");
              ctx.io.out(`${when} ${EVENT_NAMES[ev.containerEventType] ?? ev.containerEventType} container ${ev.containerId} pod ${pod}\n`);
            }
          }
        } catch (err) {
          if (!ac.signal.aborted) throw notYet("GetContainerEvents", err);
        } finally {
          process.off("SIGINT", stop);
        }
      }),
    );

  program
    .command("info")
    .description("runtime status and configuration (Status, verbose)")
    .option("-o, --output <format>", "json or yaml", "json")
    .action(
      ctx.action("info", async (o: { output: string }) => {
        const format = parseOutputFormat(o.output, ["json", "yaml"]) as "json" | "yaml";
        const c = await ctx.client();
        const res = await c.runtime.status({ verbose: true }, c.call());
        const status = res.status ? messageJson(RuntimeStatusSchema, res.status) : {};
        ctx.io.out(renderData(format, { status, ...infoJson(res.info) }));
      }),
    );

  program
    .command("version")
    .description("runtime name and versions")
    .action(
      ctx.action("version", async () => {
        const c = await ctx.client();
        const v = await c.runtime.version({ version: "v1" }, c.call());
        ctx.io.out(`Version:  ${v.version}\nRuntimeName:  ${v.runtimeName}\nRuntimeVersion:  ${v.runtimeVersion}\nRuntimeApiVersion:  ${v.runtimeApiVersion}\n`);
      }),
    );
}
