/**
 * Skiff's built-in images (pause, busybox) as one OCI archive that `ctr images import` accepts,
 * for feeding a peer containerd the same images skiff runs. Built in a throwaway content store and
 * metadata database under `dir/build` (removed afterwards); the archive stays in `dir`.
 */
import { mkdir, rm } from "node:fs/promises";
import * as path from "node:path";
import { ContentStore } from "../../src/content/store.js";
import { defaultConfig } from "../../src/config.js";
import { buildBuiltinImages, BUSYBOX_IMAGE, PAUSE_IMAGE } from "../../src/images/builtin.js";
import { ImageService } from "../../src/images/service.js";
import { MetadataStore } from "../../src/metadata/index.js";

export { BUSYBOX_IMAGE, PAUSE_IMAGE };

/** Builds both built-in images and returns the path of `dir/builtin-images.tar` holding them. */
export async function builtinImageArchive(dir: string, opts: { pauseBinary?: string; signal?: AbortSignal } = {}): Promise<string> {
  const build = path.join(dir, "build");
  await mkdir(build, { recursive: true });
  const meta = MetadataStore.open(":memory:");
  try {
    const content = new ContentStore(build);
    await mkdir(content.dir, { recursive: true });
    const workDir = path.join(build, "work");
    await mkdir(workDir, { recursive: true });
    await buildBuiltinImages({
      store: content,
      images: meta.images,
      workDir,
      pauseBinary: opts.pauseBinary ?? defaultConfig().pauseBinary,
      signal: opts.signal,
    });
    const images = new ImageService({ content, images: meta.images, snapshotsDir: path.join(build, "snapshots"), tmpDir: build });
    const out = path.join(dir, "builtin-images.tar");
    await images.export([PAUSE_IMAGE, BUSYBOX_IMAGE], out, { signal: opts.signal });
    return out;
  } finally {
    meta.close();
    await rm(build, { recursive: true, force: true });
  }
}
