/**
 * CRI PullImage: pulls with the request's AuthConfig (if any) and answers the image id, as
 * containerd does. The pull has no deadline of its own: it runs until done or until the call is
 * cancelled (kubelet's own deadline arrives as the call's signal). A malformed reference is
 * InvalidArgument and an image the registry does not have is NotFound, both naming the reference
 * (raised by the pull itself); authentication failures are FailedPrecondition "unauthorized: …".
 *
 * Like containerd's CRI, a pull by tag also records `repo@<manifest digest>`, so the image shows
 * that repo digest and answers to it. (For a multi-platform index that is the chosen platform's
 * manifest; containerd names the index. Both pull the same image here.)
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { type PullImageRequest, type PullImageResponse, PullImageResponseSchema } from "../gen/runtime/v1/api_pb.js";
import { parseReference } from "../images/reference.js";
import { credentialsOf, requireImageRef } from "./image-convert.js";
import type { ImageDeps } from "./image-service.js";

export function pullImageHandler(deps: Pick<ImageDeps, "pull" | "images">) {
  return async (req: PullImageRequest, ctx: HandlerContext): Promise<PullImageResponse> => {
    const ref = requireImageRef(req.image, "PullImage");
    const auth = credentialsOf(req.auth, ref);
    const img = await deps.pull(ref, { signal: ctx.signal, ...(auth ? { auth } : {}) });
    const name = parseReference(img.name);
    if (name.digest === undefined) deps.images.tag(img.name, `${name.repository}@${img.target.digest}`);
    return create(PullImageResponseSchema, { imageRef: img.configDigest });
  };
}
