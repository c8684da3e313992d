/**
 * OCI bundles for tasks: `<state>/tasks/<namespace>/<id>/` holding config.json, rootfs/ (the
 * shim mounts the task's rootfs there) and, for the first task of a shim, the shim's `log` FIFO
 * and `address` file. The directory name must equal the task id: the shim's `delete` action
 * derives the bundle from its working directory and the id.
 */
import { mkdir, rm, rename, writeFile, readFile, readdir } from "node:fs/promises";
import * as path from "node:path";
import { unmountAll } from "./mount-linux.js";
import { invalidArgument } from "../errors.js";

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function validateId(id: string, what = "id"): void {
  if (!ID_RE.test(id)) {
    throw invalidArgument(`${what} "${id}" is invalid: use 1-128 characters [A-Za-z0-9_.-], starting alphanumeric`);
  }
}

export function bundlesDir(stateDir: string, namespace: string): string {
  return path.join(stateDir, "tasks", namespace);
}

export function bundlePath(stateDir: string, namespace: string, id: string): string {
  validateId(id);
  return path.join(bundlesDir(stateDir, namespace), id);
}

/** Writes a bundle atomically enough for recovery: config.json is renamed into place last. */
export async function createBundle(dir: string, spec: unknown): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o711 });
  await mkdir(dir, { mode: 0o711 });
  await mkdir(path.join(dir, "rootfs"), { mode: 0o711 });
  const tmp = path.join(dir, ".config.json.tmp");
  await writeFile(tmp, JSON.stringify(spec), { mode: 0o600 });
  await rename(tmp, path.join(dir, "config.json"));
}

/** Unmounts the rootfs (and anything under the bundle), then removes the directory. Idempotent. */
export async function removeBundle(dir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  await unmountAll(dir, opts);
  await rm(dir, { recursive: true, force: true });
}

/** The shim's address as it wrote it into the bundle at `start`, if any. */
export async function readBundleAddress(dir: string): Promise<string | undefined> {
  try {
    return (await readFile(path.join(dir, "address"), "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Names of bundle directories present on disk (for orphan detection at start-up). */
export async function listBundles(stateDir: string, namespace: string): Promise<string[]> {
  try {
    const entries = await readdir(bundlesDir(stateDir, namespace), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}
