/**
 * CRI RemoveImage by name, id or digest reference. Like containerd, every name of the resolved
 * image goes (removing one tag of a multi-tagged image removes them all). Idempotent: an unknown
 * image is success. Then blobs and layer snapshots no image needs any more are collected, best
 * effort: a failure (a snapshot still in use by a container, say) is logged, not returned, since
 * the image is already gone and the next collection will retry.
 */
import { create } from "@bufbuild/protobuf";
import { type RemoveImageRequest, type RemoveImageResponse, RemoveImageResponseSchema } from "../gen/runtime/v1/api_pb.js";
import { isNotFound } from "../errors.js";
import { requireImageRef } from "./image-convert.js";
import type { ImageDeps } from "./image-service.js";

export function removeImageHandler(deps: Pick<ImageDeps, "images" | "collectGarbage" | "log">) {
  return async (req: RemoveImageRequest): Promise<RemoveImageResponse> => {
    const ref = requireImageRef(req.image, "RemoveImage");
    const img = deps.images.find(ref);
    if (!img) return create(RemoveImageResponseSchema, {});
    for (const r of deps.images.list({ configDigest: img.configDigest })) {
      try {
        deps.images.remove(r.name);
      } catch (err) {
        // A concurrent RemoveImage got there first.
        if (!isNotFound(err)) throw err;
      }
    }
    try {
      await deps.collectGarbage();
    } catch (err) {
      deps.log.warn({ image: ref, id: img.configDigest, err: (err as Error).message }, "garbage collection after image removal failed");
    }
    return create(RemoveImageResponseSchema, {});
  };
}
