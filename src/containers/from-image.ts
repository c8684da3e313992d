/**
 * A container's root file system and default process from an image: the image is unpacked into
 * committed snapshots (once), and each container gets its own active snapshot on top, whose
 * mounts the shim mounts at the bundle's rootfs.
 */
import type { ImageService } from "../images/service.js";
import type { ImageRecord } from "../metadata/index.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";
import type { RootfsMount } from "./service.js";
import { defaultSpec, DEFAULT_PATH_ENV, mergeEnv } from "../oci/spec.js";
import { invalidArgument } from "../errors.js";

/** Label on a container recording its snapshot key (removed with the container). */
export const SNAPSHOT_LABEL = "io.skiff.snapshot";

export const snapshotKey = (containerId: string) => `container-${containerId}`;

export async function prepareImageRootfs(
  images: ImageService,
  sn: Snapshotter,
  ref: string,
  containerId: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ image: ImageRecord; mounts: RootfsMount[]; key: string }> {
  const image = images.get(ref);
  const chainId = await images.unpack(ref, sn, opts);
  const key = snapshotKey(containerId);
  const mounts = await sn.prepare(key, chainId, { signal: opts.signal, labels: { "io.skiff.container": containerId } });
  return { image, key, mounts: mounts.map((m) => ({ type: m.type, source: m.source, target: "", options: m.options })) };
}

export interface ProcessOverrides {
  /** Replaces the image's Cmd (the Entrypoint stays), as `docker run IMAGE ARGS...` does. */
  args?: string[];
  env?: string[];
  cwd?: string;
  annotations?: Record<string, string>;
  hostname?: string;
}

/** The OCI spec for a container of `image`: entrypoint + cmd, image env then overrides, workdir, numeric user. */
export function specFromImage(image: ImageRecord, o: ProcessOverrides = {}): Record<string, unknown> {
  const c = image.config;
  const args = [...c.entrypoint, ...(o.args && o.args.length ? o.args : c.cmd)];
  if (args.length === 0) throw invalidArgument(`image "${image.name}" has no entrypoint or cmd, and no command was given`);
  const env = mergeEnv(c.env.length ? c.env : [DEFAULT_PATH_ENV], o.env ?? []);
  const user = /^(\d+)(?::(\d+))?$/.exec(c.user);
  if (c.user && !user) {
    throw invalidArgument(`image "${image.name}" runs as user "${c.user}": only numeric uid[:gid] is supported yet`);
  }
  return defaultSpec({
    args,
    env,
    cwd: o.cwd || c.workingDir || "/",
    uid: user ? Number(user[1]) : 0,
    gid: user?.[2] ? Number(user[2]) : 0,
    ...(o.annotations ? { annotations: o.annotations } : {}),
    ...(o.hostname ? { hostname: o.hostname } : {}),
  });
}
