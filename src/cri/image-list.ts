/**
 * CRI ListImages: one entry per image id. `filter.image.image` keeps only the image that name or
 * id resolves to (as ImageStatus would find it); an unknown one gives an empty list.
 */
import { create } from "@bufbuild/protobuf";
import { type ListImagesRequest, type ListImagesResponse, ListImagesResponseSchema } from "../gen/runtime/v1/api_pb.js";
import { groupById, toCriImage } from "./image-convert.js";
import type { ImageDeps } from "./image-service.js";

export function listImagesHandler(deps: Pick<ImageDeps, "images">) {
  return (req: ListImagesRequest): ListImagesResponse => {
    const want = req.filter?.image?.image ?? "";
    let records;
    if (want === "") {
      records = deps.images.list();
    } else {
      const hit = deps.images.find(want);
      records = hit ? deps.images.list({ configDigest: hit.configDigest }) : [];
    }
    return create(ListImagesResponseSchema, { images: groupById(records).map(toCriImage) });
  };
}
