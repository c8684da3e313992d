/**
 * Test fixtures for the metadata store's unit tests (used only by `*.test.ts`).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { MetadataStore } from "./index.js";

/** A fresh temp dir; `cleanup` removes it (call it from `after`). */
export async function tempDir(prefix = "skiff-meta-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A deterministic clock: 1000, 1001, 1002, … ms. */
export function fakeClock(start = 1000): () => number {
  let t = start;
  return () => t++;
}

export const SPEC = JSON.stringify({ ociVersion: "1.0.2", process: { args: ["sh"] } });

/** Creates a shim (if missing) and a container + task on it; returns the task id. */
export function seedTask(meta: MetadataStore, id: string, shimId = "pod-1"): string {
  if (!meta.shims.find(shimId)) {
    meta.shims.create({ id: shimId, runtime: "runc", binary: "/bin/shim", bundle: `/run/s/${shimId}`, namespace: "skiff" });
  }
  meta.containers.create({ id, runtime: "runc", spec: SPEC, sandboxId: shimId });
  meta.tasks.create({ id, shimId, bundle: `/run/b/${id}` });
  return id;
}
