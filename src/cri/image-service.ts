/**
 * The CRI ImageService: one handler per RPC (image-list, image-status, image-pull, image-remove,
 * image-fs-info), built here from the few core operations they need. Handlers return responses
 * or throw SkiffErrors; `instrumentService` does logging, metrics and status codes.
 */
import type { ImageService } from "../images/service.js";
import type { ImageRecord } from "../metadata/images.js";
import type { Credentials } from "../registry/hosts.js";
import { imageFsInfoHandler } from "./image-fs-info.js";
import { listImagesHandler } from "./image-list.js";
import { pullImageHandler } from "./image-pull.js";
import { removeImageHandler } from "./image-remove.js";
import { imageStatusHandler } from "./image-status.js";
import type { ImageServiceImpl } from "./server.js";

/** What the image RPCs need from the daemon. All members must be safe to call concurrently. */
export interface ImageDeps {
  /** The core image store (names → image records), disk usage of the image filesystem. */
  images: Pick<ImageService, "list" | "find" | "remove" | "tag" | "usage">;
  /**
   * Pulls `ref` and records it (unnormalized refs allowed). `auth`, when given, replaces the
   * configured credentials of the upstream registry for this pull only. Honours `signal`.
   */
  pull(ref: string, opts: { signal?: AbortSignal; auth?: Credentials }): Promise<ImageRecord>;
  /** Frees blobs and snapshots no image needs; may fail (e.g. a snapshot in use). */
  collectGarbage(): Promise<unknown>;
  log: { warn(obj: object, msg: string): void };
}

export function imageServiceImpl(deps: ImageDeps) {
  return {
    listImages: listImagesHandler(deps),
    imageStatus: imageStatusHandler(deps),
    pullImage: pullImageHandler(deps),
    removeImage: removeImageHandler(deps),
    imageFsInfo: imageFsInfoHandler(deps),
  } satisfies Partial<ImageServiceImpl>;
}
