/**
 * Exporting named images as an OCI image layout tar: `oci-layout`, `index.json` (one entry per
 * name, annotated with `io.containerd.image.name` and the tag as `org.opencontainers.image.ref.name`)
 * and every blob each target reaches. The tar is reproducible: sorted, numeric owner 0, mtime 0.
 * Written to `<out>.tmp-*` and renamed, so `out` never holds a partial archive.
 */
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { digestHex, parseDigest } from "../content/digest.js";
import { childrenOf } from "../content/refs.js";
import type { ContentStore } from "../content/store.js";
import { invalidArgument } from "../errors.js";
import type { ImageStore } from "../metadata/images.js";
import { runChecked } from "../util/exec.js";
import { throwIfAborted } from "../util/signal.js";
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from "./import.js";
import { parseReference } from "./reference.js";

export interface ExportOptions {
  content: ContentStore;
  images: ImageStore;
  tmpDir?: string;
  signal?: AbortSignal;
}

/** Writes the images named `names` (NotFound for an unknown one) to the tar file `out`. */
export async function exportArchive(names: string[], out: string, opts: ExportOptions): Promise<void> {
  if (names.length === 0) throw invalidArgument("export: no image names given");
  const records = names.map((n) => opts.images.get(n));
  const dir = await mkdtemp(path.join(opts.tmpDir ?? tmpdir(), "skiff-export-"));
  const partial = `${out}.tmp-${randomUUID()}`;
  try {
    const blobs = path.join(dir, "blobs", "sha256");
    await mkdir(blobs, { recursive: true });
    const seen = new Set<string>();
    const queue = records.map((r) => parseDigest(r.target.digest));
    while (queue.length) {
      throwIfAborted(opts.signal, "export");
      const d = queue.pop()!;
      if (seen.has(d)) continue;
      seen.add(d);
      const dest = path.join(blobs, digestHex(d));
      await copyFile(opts.content.blobPath(d), dest);
      const info = await opts.content.info(d);
      if (info.size <= 4 << 20) queue.push(...childrenOf(await opts.content.readAll(d)));
    }
    const manifests = records.map((r) => {
      const ref = parseReference(r.name);
      const annotations: Record<string, string> = { [ANNOTATION_IMAGE_NAME]: r.name };
      if (ref.tag !== undefined) annotations[ANNOTATION_REF_NAME] = ref.tag;
      return { mediaType: r.target.mediaType, digest: r.target.digest, size: r.target.size, annotations };
    });
    await writeFile(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(path.join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }));
    await runChecked(
      "tar",
      ["-c", "-f", partial, "-C", dir, "--format=gnu", "--numeric-owner", "--owner=0", "--group=0", "--sort=name", "--mtime=@0", "--mode=a+r,u+w", "oci-layout", "index.json", "blobs"],
      { signal: opts.signal },
    );
    await rename(partial, out);
  } finally {
    await rm(partial, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
}
