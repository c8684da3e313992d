/** What the CRI layer needs from the core: its services, never their tables. */
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { MetadataStore, ImageRecord } from "../metadata/index.js";
import type { TasksService } from "../tasks/service.js";
import type { ContainersService } from "../containers/service.js";
import type { ImageService } from "../images/service.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";

export interface CriDeps {
  cfg: Config;
  log: Logger;
  /** For the CRI layer's own document tables only. */
  meta: MetadataStore;
  tasks: TasksService;
  containers: ContainersService;
  images: ImageService;
  snapshotter: Snapshotter;
  pullImage(ref: string, opts: { signal?: AbortSignal }): Promise<ImageRecord>;
}

/** Bound on cleanup steps that run after a caller gave up (never under the caller's signal). */
export const CLEANUP_TIMEOUT_MS = 30_000;
