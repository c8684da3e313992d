/**
 * UpdateContainerResources: merges the request into the container's resources (containerd's
 * rule: set fields replace, unset ones stay), validates the result, applies it to the running
 * task through the shim's Update (runc update on the container's cgroup), then stores it: the
 * core container's OCI spec (used if a created container starts later) and the CRI record
 * (ContainerStatus `resources`, kept across daemon restarts) in one transaction.
 *
 * Runs under the container's lock, so it never interleaves with StartContainer: a created
 * container either gets the new spec before its task exists or the update of a running task.
 * Nothing is stored when validation or the shim refuses.
 */
import { failedPrecondition, isNotFound } from "../errors.js";
import type { CriDeps } from "./deps.js";
import { runtimeRefused, type ContainerService } from "./ctrs.js";
import { ownOomScoreAdj } from "./container-spec.js";
import { applyResources, checkHostResources, checkRanges, hostResources, mergeResources, type ContainerResources } from "./resources.js";
import type { Spec } from "./spec-util.js";

export async function updateContainerResources(
  d: Pick<CriDeps, "meta" | "tasks" | "containers">,
  ctrs: ContainerService,
  id: string,
  upd: ContainerResources,
  annotations: Record<string, string>,
  opts: { signal?: AbortSignal } = {},
): Promise<ContainerResources> {
  const what = `container "${id}"`;
  return ctrs.withLock(id, async () => {
    const c = ctrs.get(id);
    if (c.state !== "created" && c.state !== "running") {
      throw failedPrecondition(`${what} is ${c.state.toUpperCase()}: resources can be updated only while CREATED or RUNNING`);
    }
    const merged = mergeResources(c.resources, upd);
    checkRanges(merged, what);
    checkHostResources(merged, what, await hostResources());
    const spec = JSON.parse(d.containers.get(id).spec) as Spec;
    spec.linux ??= {};
    spec.process ??= {};
    applyResources(spec, merged, await ownOomScoreAdj());
    if (c.state === "running") {
      try {
        await d.tasks.update(id, spec.linux.resources as Record<string, unknown>, annotations, opts);
      } catch (err) {
        if (isNotFound(err)) throw failedPrecondition(`${what} is no longer running`, err);
        throw runtimeRefused(err, `update resources of ${what}`);
      }
    }
    d.meta.transaction(() => {
      d.containers.updateSpec(id, spec);
      ctrs.docs.update(id, { resources: merged });
    });
    return merged;
  });
}
