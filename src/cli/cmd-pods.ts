/** Pod sandbox verbs: `pods`, `runp`, `inspectp`, `stopp`, `rmp` (crictl's names and flags). */
import type { Command } from "commander";
import { PodSandboxConfigSchema, PodSandboxSchema, PodSandboxState, PodSandboxStatusSchema, type PodSandbox } from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import type { CliContext } from "./context.js";
import { infoJson, loadMessage, messageJson } from "./cri-files.js";
import { ago, parseOutputFormat, renderData, shortId, table } from "./format.js";

/** kubelet gives RunPodSandbox 4 minutes (it may pull the pause image and run CNI). */
const RUNP_MIN_TIMEOUT_MS = 4 * 60 * 1000;

export const POD_STATE_NAMES: Record<PodSandboxState, string> = {
  [PodSandboxState.SANDBOX_READY]: "Ready",
  [PodSandboxState.SANDBOX_NOTREADY]: "NotReady",
};

function parsePodState(s: string): PodSandboxState {
  const k = s.toLowerCase().replace(/^sandbox_/, "").replace(/[_-]/g, "");
  if (k === "ready") return PodSandboxState.SANDBOX_READY;
  if (k === "notready") return PodSandboxState.SANDBOX_NOTREADY;
  throw invalidArgument(`state ${JSON.stringify(s)}: use ready or notready`);
}

/** `k=v` flags → a label selector. */
export function parseLabels(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list ?? []) {
    const i = l.indexOf("=");
    if (i <= 0) throw invalidArgument(`label ${JSON.stringify(l)}: use key=value`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function podRows(items: PodSandbox[], noTrunc = false): string {
  const rows = [...items]
    .sort((a, b) => Number(b.createdAt - a.createdAt))
    .map((p) => [
      noTrunc ? p.id : shortId(p.id),
      ago(p.createdAt),
      POD_STATE_NAMES[p.state] ?? String(p.state),
      p.metadata?.name ?? "",
      p.metadata?.namespace ?? "",
      String(p.metadata?.attempt ?? 0),
      p.runtimeHandler || "(default)",
    ]);
  return table(["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"], rows);
}

export function registerPodVerbs(program: Command, ctx: CliContext): void {
  program
    .command("pods")
    .description("list pod sandboxes")
    .option("--id <id>", "only the pod with this id (or id prefix)")
    .option("--name <regexp>", "only pods whose name matches")
    .option("--namespace <regexp>", "only pods whose namespace matches")
    .option("-s, --state <state>", "only pods in this state (ready, notready)")
    .option("--label <key=value>", "only pods with this label (repeatable)", collect)
    .option("-q, --quiet", "only ids")
    .option("--no-trunc", "full ids")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .action(
      ctx.action("pods", async (o: { id?: string; name?: string; namespace?: string; state?: string; label?: string[]; quiet?: boolean; trunc: boolean; output: string }) => {
        const format = parseOutputFormat(o.output);
        const filter = {
          ...(o.state ? { state: { state: parsePodState(o.state) } } : {}),
          labelSelector: parseLabels(o.label),
        };
        const c = await ctx.client();
        let items = (await c.runtime.listPodSandbox({ filter }, c.call())).items;
        if (o.id) items = items.filter((p) => p.id.startsWith(o.id!));
        if (o.name) items = items.filter((p) => new RegExp(o.name!).test(p.metadata?.name ?? ""));
        if (o.namespace) items = items.filter((p) => new RegExp(o.namespace!).test(p.metadata?.namespace ?? ""));
        if (o.quiet) ctx.io.out(items.map((p) => `${p.id}\n`).join(""));
        else if (format === "table") ctx.io.out(podRows(items, !o.trunc));
        else ctx.io.out(renderData(format, { items: items.map((p) => messageJson(PodSandboxSchema, p)) }));
      }),
    );

  program
    .command("runp <pod-config>")
    .description("run a pod sandbox from a PodSandboxConfig file (JSON or YAML); prints its id")
    .option("-r, --runtime <handler>", "runtime handler")
    .action(
      ctx.action("runp", async (file: string, o: { runtime?: string }) => {
        const config = await loadMessage(PodSandboxConfigSchema, file);
        const c = await ctx.client();
        const timeout = Math.max(RUNP_MIN_TIMEOUT_MS - c.settings.timeoutMs, 0);
        const res = await c.runtime.runPodSandbox({ config, runtimeHandler: o.runtime ?? "" }, c.call(timeout));
        ctx.io.out(`${res.podSandboxId}\n`);
      }),
    );

  program
    .command("inspectp <pod-id...>")
    .description("status of pod sandboxes (verbose)")
    .option("-o, --output <format>", "json or yaml", "json")
    .action(
      ctx.action("inspectp", async (ids: string[], o: { output: string }) => {
        const format = parseOutputFormat(o.output, ["json", "yaml"]) as "json" | "yaml";
        const c = await ctx.client();
        for (const id of await ctx.podIds(ids)) {
          const res = await c.runtime.podSandboxStatus({ podSandboxId: id, verbose: true }, c.call());
          if (!res.status) throw invalidArgument(`pod sandbox ${id}: the runtime returned no status`);
          ctx.io.out(renderData(format, { status: messageJson(PodSandboxStatusSchema, res.status), info: infoJson(res.info) }));
        }
      }),
    );

  program
    .command("stopp <pod-id...>")
    .description("stop pod sandboxes (their containers are stopped too)")
    .action(
      ctx.action("stopp", async (ids: string[]) => {
        const c = await ctx.client();
        for (const id of await ctx.podIds(ids)) {
          await c.runtime.stopPodSandbox({ podSandboxId: id }, c.call());
          ctx.io.out(`Stopped sandbox ${id}\n`);
        }
      }),
    );

  program
    .command("rmp <pod-id...>")
    .description("remove pod sandboxes (and their containers)")
    .option("-f, --force", "stop a ready pod first")
    .action(
      ctx.action("rmp", async (ids: string[], o: { force?: boolean }) => {
        const c = await ctx.client();
        for (const id of await ctx.podIds(ids)) {
          if (o.force) await c.runtime.stopPodSandbox({ podSandboxId: id }, c.call());
          else {
            const st = await c.runtime.podSandboxStatus({ podSandboxId: id }, c.call()).catch(() => undefined);
            if (st?.status?.state === PodSandboxState.SANDBOX_READY) {
              throw invalidArgument(`pod sandbox ${id} is ready: stop it first (stopp) or use rmp -f`);
            }
          }
          await c.runtime.removePodSandbox({ podSandboxId: id }, c.call());
          ctx.io.out(`Removed sandbox ${id}\n`);
        }
      }),
    );
}
