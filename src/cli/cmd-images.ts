/** Image verbs: `images`, `pull`, `rmi`, `import` (crictl's names; import is skiff's own). */
import type { Command } from "commander";
import * as path from "node:path";
import { ImageSchema, type PodSandboxConfig } from "../gen/runtime/v1/api_pb.js";
import { invalidArgument, notFound } from "../errors.js";
import { DebugClient } from "../daemon/debug-client.js";
import type { CliContext } from "./context.js";
import type { CriClient } from "./client.js";
import { messageJson } from "./cri-files.js";
import { humanSize, parseOutputFormat, renderData, shortId, splitRepoTag, table } from "./format.js";
import { PullProgress, type Ingest } from "./pull-progress.js";
import type { Image } from "../gen/runtime/v1/api_pb.js";

export function imageRows(images: Image[], noTrunc = false): string {
  const rows: string[][] = [];
  for (const img of images) {
    const id = noTrunc ? img.id : shortId(img.id);
    const size = humanSize(img.size);
    if (img.repoTags.length === 0) rows.push(["<none>", "<none>", id, size]);
    for (const t of img.repoTags) rows.push([...splitRepoTag(t), id, size]);
  }
  rows.sort((a, b) => (a[0]! + a[1]!).localeCompare(b[0]! + b[1]!));
  return table(["IMAGE", "TAG", "IMAGE ID", "SIZE"], rows);
}

/** `user:pass` → CRI AuthConfig. */
export function parseCreds(creds: string | undefined): { username: string; password: string } | undefined {
  if (creds === undefined) return undefined;
  const i = creds.indexOf(":");
  if (i <= 0) throw invalidArgument("--creds: use USERNAME:PASSWORD");
  return { username: creds.slice(0, i), password: creds.slice(i + 1) };
}

/** Pulls `image` unless the runtime already has it (what `run` and `create --with-pull` do). */
export async function ensureImage(c: CriClient, image: string, sandboxConfig?: PodSandboxConfig): Promise<void> {
  if (image === "") throw invalidArgument("the container config names no image (image.image)");
  const st = await c.image.imageStatus({ image: { image } }, c.call());
  if (st.image) return;
  // PullImage has no deadline in CRI: a large image may take long.
  await c.image.pullImage({ image: { image }, ...(sandboxConfig ? { sandboxConfig } : {}) }, {});
}

async function debugClient(ctx: CliContext): Promise<DebugClient | undefined> {
  return DebugClient.connect(ctx.debugSocket(), { timeoutMs: 1000 }).catch(() => undefined);
}

export function registerImageVerbs(program: Command, ctx: CliContext): void {
  program
    .command("images [ref]")
    .alias("image")
    .description("list images (or the one named)")
    .option("-q, --quiet", "only image ids")
    .option("--no-trunc", "full image ids")
    .option("-o, --output <format>", "table, json or yaml", "table")
    .action(
      ctx.action("images", async (ref: string | undefined, o: { quiet?: boolean; trunc: boolean; output: string }) => {
        const format = parseOutputFormat(o.output);
        const c = await ctx.client();
        let images: Image[];
        if (ref) {
          const st = await c.image.imageStatus({ image: { image: ref } }, c.call());
          images = st.image ? [st.image] : [];
        } else images = (await c.image.listImages({}, c.call())).images;
        if (o.quiet) return ctx.io.out([...new Set(images.map((i) => i.id))].map((id) => `${id}\n`).join(""));
        if (format !== "table") return ctx.io.out(renderData(format, { images: images.map((i) => messageJson(ImageSchema, i)) }));
        ctx.io.out(imageRows(images, !o.trunc));
      }),
    );

  program
    .command("pull <ref>")
    .description("pull an image (progress per blob from skiffd's debug API when reachable)")
    .option("--creds <user:pass>", "registry credentials")
    .option("--auth <base64>", "registry credentials as base64 user:pass")
    .action(
      ctx.action("pull", async (ref: string, o: { creds?: string; auth?: string }) => {
        const c = await ctx.client();
        const auth: { username?: string; password?: string; auth?: string } = { ...parseCreds(o.creds), ...(o.auth ? { auth: o.auth } : {}) };
        const dbg = await debugClient(ctx);
        const progress = new PullProgress(ctx.io, ref, dbg ? () => dbg.call<Ingest[]>("Ingests") : undefined);
        progress.start();
        let ok = false;
        try {
          const res = await c.image.pullImage({ image: { image: ref }, ...(Object.keys(auth).length ? { auth } : {}) }, {});
          ok = true;
          progress.stop(true);
          ctx.io.out(`Image is up to date for ${res.imageRef}\n`);
        } finally {
          if (!ok) progress.stop(false);
          dbg?.close();
        }
      }),
    );

  program
    .command("rmi <ref...>")
    .description("remove images (every name of each)")
    .action(
      ctx.action("rmi", async (refs: string[]) => {
        const c = await ctx.client();
        for (const ref of refs) {
          const st = await c.image.imageStatus({ image: { image: ref } }, c.call());
          if (!st.image) throw notFound(`no such image ${JSON.stringify(ref)}`);
          await c.image.removeImage({ image: { image: st.image.id } }, c.call());
          for (const t of st.image.repoTags.length ? st.image.repoTags : [st.image.id]) ctx.io.out(`Deleted: ${t}\n`);
        }
      }),
    );

  program
    .command("import <archive>")
    .description("import an OCI layout or `docker save` tar (through skiffd's debug API; the path must be readable by skiffd)")
    .option("--name <ref>", "name the archive's single image")
    .action(
      ctx.action("import", async (archive: string, o: { name?: string }) => {
        const dbg = await DebugClient.connect(ctx.debugSocket());
        try {
          const out = await dbg.call<{ name: string; id: string }[]>(
            "Import",
            { path: path.resolve(archive), ...(o.name ? { name: o.name } : {}) },
            { timeoutMs: 30 * 60 * 1000 },
          );
          for (const i of out) ctx.io.out(`Imported ${i.name} (${shortId(i.id)})\n`);
        } finally {
          dbg.close();
        }
      }),
    );
}
