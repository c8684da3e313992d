/**
 * CRI ImageStatus by name, short name, id or digest reference. A missing image is an answer, not
 * an error: the response has no `image` (kubelet then pulls). `verbose` adds an "info" entry: JSON
 * with the image config and manifest digest (containerd puts its OCI image spec there).
 */
import { create } from "@bufbuild/protobuf";
import { type ImageStatusRequest, type ImageStatusResponse, ImageStatusResponseSchema } from "../gen/runtime/v1/api_pb.js";
import { requireImageRef, toCriImage } from "./image-convert.js";
import type { ImageDeps } from "./image-service.js";

export function imageStatusHandler(deps: Pick<ImageDeps, "images">) {
  return (req: ImageStatusRequest): ImageStatusResponse => {
    const ref = requireImageRef(req.image, "ImageStatus");
    const img = deps.images.find(ref);
    if (!img) return create(ImageStatusResponseSchema, {});
    const image = toCriImage(deps.images.list({ configDigest: img.configDigest }));
    const info: Record<string, string> = {};
    if (req.verbose) {
      info.info = JSON.stringify({ id: img.configDigest, manifestDigest: img.target.digest, imageSpec: { config: img.config } });
    }
    return create(ImageStatusResponseSchema, { image, info });
  };
}
