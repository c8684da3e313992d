/**
 * CRI ImageFsInfo: one FilesystemUsage for the snapshots directory, the filesystem kubelet's image
 * GC watches (containerd reports its snapshotter's root the same way). Bytes are allocated blocks
 * and inodes are counted once per hard-linked file; the content store is not included.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { type ImageFsInfoRequest, type ImageFsInfoResponse, ImageFsInfoResponseSchema } from "../gen/runtime/v1/api_pb.js";
import type { ImageDeps } from "./image-service.js";

export function imageFsInfoHandler(deps: Pick<ImageDeps, "images">, now: () => number = Date.now) {
  return async (_req: ImageFsInfoRequest, ctx: HandlerContext): Promise<ImageFsInfoResponse> => {
    const { snapshots } = await deps.images.usage({ signal: ctx.signal });
    return create(ImageFsInfoResponseSchema, {
      imageFilesystems: [
        {
          timestamp: BigInt(now()) * 1_000_000n,
          fsId: { mountpoint: snapshots.dir },
          usedBytes: { value: BigInt(snapshots.size) },
          inodesUsed: { value: BigInt(snapshots.inodes) },
        },
      ],
    });
  };
}
