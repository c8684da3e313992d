/**
 * Fixtures for the CRI image handlers' unit tests (used only by `image-*.test.ts`): a real
 * ImageService over a temp metadata store, with records written directly (no blobs needed).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ContentStore } from "../content/store.js";
import { ImageService } from "../images/service.js";
import type { ImageConfig } from "../images/config.js";
import { MetadataStore } from "../metadata/index.js";
import type { ImageRecord } from "../metadata/images.js";
import type { ImageDeps } from "./image-service.js";

export const digest = (c: string) => `sha256:${c.repeat(64)}`;

export function config(user = ""): ImageConfig {
  return {
    os: "linux", architecture: "amd64", variant: "", entrypoint: [], cmd: ["sh"], env: [], user, workingDir: "",
    volumes: [], stopSignal: "", labels: {}, exposedPorts: [], diffIds: [], created: "",
  };
}

/** An image record named `name` with id `digest(id)` and manifest `digest(manifest)`. */
export function record(name: string, id = "b", manifest = "a", user = ""): ImageRecord {
  return {
    name,
    target: { digest: digest(manifest), mediaType: "application/vnd.oci.image.manifest.v1+json", size: 10 },
    configDigest: digest(id),
    config: config(user),
    size: 1234,
    labels: {},
    createdAt: 0,
    updatedAt: 0,
  };
}

export interface ImageFixture {
  deps: ImageDeps;
  meta: MetadataStore;
  snapshotsDir: string;
  /** Calls of the fake `pull` (it records `docker.io/library/<ref>` with id e, manifest f). */
  pulls: { ref: string; auth: unknown; signal: AbortSignal | undefined }[];
  warnings: { obj: object; msg: string }[];
  gcCalls: number;
  /** What `collectGarbage` does; resolves by default. */
  gc: () => Promise<unknown>;
  close(): Promise<void>;
}

export async function imageFixture(): Promise<ImageFixture> {
  const root = await mkdtemp(path.join(tmpdir(), "skiff-criimg-"));
  const meta = MetadataStore.open(path.join(root, "meta.db"));
  const snapshotsDir = path.join(root, "snapshots");
  await mkdir(snapshotsDir);
  await writeFile(path.join(snapshotsDir, "f"), "x".repeat(5000));
  const images = new ImageService({ content: new ContentStore(root), images: meta.images, snapshotsDir, tmpDir: root });
  const fx: ImageFixture = {
    meta,
    snapshotsDir,
    pulls: [],
    warnings: [],
    gcCalls: 0,
    gc: async () => undefined,
    deps: {
      images,
      pull: async (ref, opts) => {
        fx.pulls.push({ ref, auth: opts.auth, signal: opts.signal });
        return meta.images.put(record(`docker.io/library/${ref}`, "e", "f"));
      },
      collectGarbage: () => {
        fx.gcCalls++;
        return fx.gc();
      },
      log: { warn: (obj, msg) => fx.warnings.push({ obj, msg }) },
    },
    close: async () => {
      meta.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return fx;
}
