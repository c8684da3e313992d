/**
 * The CRI ImageService: ListImages, ImageStatus (a missing image is an unset `image`, not an
 * error), PullImage (AuthConfig honoured), RemoveImage (idempotent; all names of the image go,
 * as in containerd) and ImageFsInfo. Images are grouped by id (the config digest): one CRI image
 * per id with every name that points at it.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ImageFsInfoResponseSchema,
  ImageSchema,
  ImageStatusResponseSchema,
  ListImagesResponseSchema,
  PullImageResponseSchema,
  type AuthConfig,
  type Image,
} from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import type { ImageRecord } from "../metadata/index.js";
import type { ImageService } from "../images/service.js";
import type { Credentials } from "../registry/hosts.js";
import type { ImageServiceImpl } from "./server.js";

export interface ImageDeps {
  images: ImageService;
  pull(ref: string, opts: { signal?: AbortSignal; auth?: Credentials }): Promise<ImageRecord>;
  /** Frees blobs and snapshots no image needs (best effort after a removal). */
  collectGarbage(): Promise<unknown>;
  log: { warn(obj: object, msg: string): void };
}

/** The CRI view of every record sharing `records[0]`'s id. */
export function toCriImage(records: ImageRecord[]): Image {
  const first = records[0]!;
  const names = records.map((r) => r.name).sort();
  const user = first.config.user.split(":")[0] ?? "";
  return create(ImageSchema, {
    id: first.configDigest,
    repoTags: names.filter((n) => !n.includes("@")),
    repoDigests: names.filter((n) => n.includes("@")),
    size: BigInt(first.size),
    ...(/^\d+$/.test(user) ? { uid: { value: BigInt(user) } } : { username: user }),
    pinned: false,
  });
}

function groupById(records: ImageRecord[]): ImageRecord[][] {
  const byId = new Map<string, ImageRecord[]>();
  for (const r of records) {
    const g = byId.get(r.configDigest);
    if (g) g.push(r);
    else byId.set(r.configDigest, [r]);
  }
  return [...byId.values()];
}

/** username/password, or `auth` (base64 "user:pass"); tokens are refused rather than ignored. */
export function credentialsOf(a: AuthConfig | undefined, ref: string): Credentials | undefined {
  if (!a) return undefined;
  if (a.identityToken || a.registryToken) throw invalidArgument(`pull "${ref}": identity and registry tokens are not supported yet (use username/password)`);
  if (a.username || a.password) return { username: a.username, password: a.password };
  if (a.auth) {
    const text = Buffer.from(a.auth, "base64").toString("utf8");
    const i = text.indexOf(":");
    if (i < 0) throw invalidArgument(`pull "${ref}": auth is not base64 of "user:password"`);
    return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  return undefined;
}

export function imageServiceImpl(d: ImageDeps): Partial<ImageServiceImpl> {
  const same = (img: ImageRecord) => d.images.list().filter((r) => r.configDigest === img.configDigest);
  return {
    listImages(req) {
      const want = req.filter?.image?.image;
      let records = d.images.list();
      if (want) {
        const hit = d.images.find(want);
        records = hit ? records.filter((r) => r.configDigest === hit.configDigest) : [];
      }
      return create(ListImagesResponseSchema, { images: groupById(records).map(toCriImage) });
    },
    imageStatus(req) {
      const ref = req.image?.image ?? "";
      if (!ref) throw invalidArgument("ImageStatus: image is empty");
      const img = d.images.find(ref);
      if (!img) return create(ImageStatusResponseSchema, {});
      const info: Record<string, string> = req.verbose
        ? { info: JSON.stringify({ imageSpec: { config: img.config }, manifestDigest: img.target.digest }) }
        : {};
      return create(ImageStatusResponseSchema, { image: toCriImage(same(img)), info });
    },
    async pullImage(req, ctx: HandlerContext) {
      const ref = req.image?.image ?? "";
      if (!ref) throw invalidArgument("PullImage: image is empty");
      const auth = credentialsOf(req.auth, ref);
      const img = await d.pull(ref, { signal: ctx.signal, ...(auth ? { auth } : {}) });
      return create(PullImageResponseSchema, { imageRef: img.configDigest });
    },
    async removeImage(req) {
      const ref = req.image?.image ?? "";
      if (!ref) throw invalidArgument("RemoveImage: image is empty");
      const img = d.images.find(ref);
      if (!img) return {};
      for (const r of same(img)) d.images.remove(r.name);
      await d.collectGarbage().catch((err: unknown) => d.log.warn({ image: ref, err: (err as Error).message }, "image gc after removal failed"));
      return {};
    },
    async imageFsInfo() {
      const u = await d.images.usage();
      return create(ImageFsInfoResponseSchema, {
        imageFilesystems: [
          {
            timestamp: BigInt(Date.now()) * 1_000_000n,
            fsId: { mountpoint: u.snapshots.dir },
            usedBytes: { value: BigInt(u.snapshots.size + u.content.size) },
            inodesUsed: { value: BigInt(u.snapshots.inodes + u.content.inodes) },
          },
        ],
      });
    },
  };
}
