/**
 * The low-level debug API behind `skiff task ...`: ttrpc on the debug socket, JSON payloads.
 * A thin transport: decode, call a service, encode. No logic lives here.
 */
import type { TtrpcServer, CallContext } from "../ttrpc/index.js";
import type { Daemon } from "./daemon.js";
import { invalidArgument, unavailable } from "../errors.js";
import type { ImageRecord } from "../metadata/images.js";
import { bindRootfs, defaultSpec } from "../oci/spec.js";
import { SANDBOX_ID_ANNOTATION } from "../runtime/shim-manager.js";
import { prepareImageRootfs, specFromImage, SNAPSHOT_LABEL } from "../containers/from-image.js";

export const DEBUG_SERVICE = "skiff.debug.v1.Tasks";

export interface RunRequest {
  id: string;
  /** Host directory used as the rootfs (bind-mounted by the shim); or give `image`. */
  rootfs?: string;
  /** Image reference: the rootfs is a fresh snapshot of it, the process defaults from its config. */
  image?: string;
  /** The command; with an image it replaces the image's Cmd (optional then). */
  args?: string[];
  env?: string[];
  cwd?: string;
  /** Shim group: tasks with the same group share one shim. */
  group?: string;
  runtime?: string;
  stdout?: string;
  stderr?: string;
  /** Create only (default: create and start). */
  createOnly?: boolean;
}

/** What `Images` lists and `Pull` answers. */
export interface ImageSummary {
  name: string;
  /** The image manifest's digest. */
  digest: string;
  /** The config digest (image id). */
  id: string;
  /** Bytes of manifest + config + layers as stored. */
  size: number;
}

type Json = Record<string, unknown>;

function str(req: Json, key: string): string {
  const v = req[key];
  if (typeof v !== "string" || v === "") throw invalidArgument(`${key} is required`);
  return v;
}

export function registerDebugService(server: Pick<TtrpcServer, "register">, d: Daemon): void {
  const method = (name: string, fn: (req: Json, ctx: CallContext) => Promise<unknown>) =>
    server.register(DEBUG_SERVICE, name, async (payload, ctx) => {
      let req: Json;
      try {
        req = payload.length ? (JSON.parse(Buffer.from(payload).toString("utf8")) as Json) : {};
      } catch {
        throw invalidArgument(`${name}: request is not JSON`);
      }
      const res = await fn(req, ctx);
      return Buffer.from(JSON.stringify(res ?? {}));
    });

  method("Run", async (raw, ctx) => {
    const r = raw as unknown as RunRequest;
    const id = str(raw, "id");
    if (!r.rootfs === !r.image) throw invalidArgument("give exactly one of rootfs and image");
    if (r.rootfs && (!Array.isArray(r.args) || r.args.length === 0)) throw invalidArgument("args must be a non-empty list");
    const annotations: Record<string, string> = r.group ? { [SANDBOX_ID_ANNOTATION]: r.group } : {};
    if (r.image) {
      const { image, mounts, key } = await prepareImageRootfs(d.images, d.snapshotter, r.image, id, { signal: ctx.signal });
      try {
        d.containers.create({
          id,
          spec: specFromImage(image, { args: r.args, env: r.env, cwd: r.cwd, annotations, hostname: id }),
          rootfs: mounts,
          runtime: r.runtime,
          sandboxId: r.group,
          labels: { [SNAPSHOT_LABEL]: key, "io.skiff.image": image.name },
        });
      } catch (err) {
        await d.snapshotter.remove(key).catch(() => {});
        throw err;
      }
    } else {
      d.containers.create({
        id,
        spec: defaultSpec({ args: r.args!, env: r.env, cwd: r.cwd, annotations, hostname: id }),
        rootfs: bindRootfs(r.rootfs!),
        runtime: r.runtime,
        sandboxId: r.group,
      });
    }
    try {
      await d.tasks.create(id, { stdout: r.stdout ?? "", stderr: r.stderr ?? "" }, { signal: ctx.signal });
    } catch (err) {
      await d.containers.delete(id);
      throw err;
    }
    if (!r.createOnly) await d.tasks.start(id, { signal: ctx.signal });
    return d.tasks.info(id);
  });
  const summary = (i: ImageRecord): ImageSummary => ({ name: i.name, digest: i.target.digest, id: i.configDigest, size: i.size });
  method("Images", async () => d.images.list().map(summary));
  method("RemoveImage", async (req) => {
    d.images.remove(str(req, "ref"));
    return d.collectGarbage();
  });
  method("Pull", async (req, ctx) => summary(await d.pullImage(str(req, "ref"), { signal: ctx.signal })));
  // Downloads in flight (one per blob a pull is fetching): what `skiff pull` shows as progress.
  method("Ingests", async () =>
    (await d.content.ingests()).map((i) => ({ ref: i.ref, offset: i.offset, size: i.expected?.size, digest: i.expected?.digest })),
  );
  method("Import", async (req, ctx) => {
    const name = typeof req.name === "string" && req.name !== "" ? req.name : undefined;
    return (await d.images.import(str(req, "path"), { name, signal: ctx.signal })).map(summary);
  });
  method("Start", async (req, ctx) => d.tasks.start(str(req, "id"), { signal: ctx.signal }));
  method("Kill", async (req, ctx) => {
    const sig = typeof req.signal === "number" ? req.signal : 15;
    await d.tasks.kill(str(req, "id"), sig, { all: req.all === true, signal: ctx.signal });
    return {};
  });
  method("Wait", async (req, ctx) => d.tasks.wait(str(req, "id"), { signal: ctx.signal }));
  method("Delete", async (req, ctx) => {
    const id = str(req, "id");
    const exit = await d.tasks.delete(id, { force: req.force === true, signal: ctx.signal });
    if (req.removeContainer !== false) await d.containers.delete(id);
    return exit;
  });
  method("Info", async (req) => d.tasks.info(str(req, "id")));
  method("State", async (req, ctx) => d.tasks.state(str(req, "id"), { signal: ctx.signal }));
  method("List", async () => ({
    tasks: d.tasks.list(),
    shims: d.meta.shims.list().map((s) => ({ id: s.id, pid: s.pid, address: s.address, state: s.state, runtime: s.runtime })),
    teardowns: d.meta.teardowns.list(),
  }));
  // The drift check runs in the daemon, which owns the metadata; see src/doctor/.
  method("Doctor", async (req, ctx) => {
    if (req.repair !== undefined && typeof req.repair !== "boolean") throw invalidArgument("Doctor: repair must be a boolean");
    if (!d.doctor) throw unavailable("Doctor: the drift check is not running");
    return d.doctor.check({ repair: req.repair === true, signal: ctx.signal });
  });
  method("Metrics", async () => ({ doctor: d.doctor?.metrics() }));
}
