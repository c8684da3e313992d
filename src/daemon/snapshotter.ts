/** Picks the snapshotter: overlayfs when configured and mountable here, else the native copy one. */
import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";
import { OverlaySnapshotter, overlaySupported } from "../snapshots/overlay.js";
import { NativeSnapshotter } from "../snapshots/native.js";

export async function openSnapshotter(cfg: Config, log: Logger): Promise<Snapshotter> {
  const dir = path.join(cfg.root, "snapshots");
  await mkdir(dir, { recursive: true, mode: 0o711 });
  if (cfg.snapshotter === "overlayfs") {
    if (await overlaySupported(dir)) return new OverlaySnapshotter(cfg.root);
    log.warn({ dir }, "overlayfs cannot be mounted here; using the native (copying) snapshotter");
  }
  return new NativeSnapshotter(cfg.root);
}
