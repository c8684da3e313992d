/**
 * Containers service: the metadata of a container (spec, rootfs mounts, runtime handler, group)
 * independent of whether a task runs for it, as in containerd.
 */
import type { MetadataStore, Container } from "../metadata/index.js";
import { validateId } from "../runtime/bundle.js";
import { failedPrecondition, invalidArgument, isNotFound } from "../errors.js";
import type { Snapshotter } from "../snapshots/snapshotter.js";
import { SNAPSHOT_LABEL } from "./from-image.js";
import type { Config } from "../config.js";

export interface RootfsMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export interface NewContainer {
  id: string;
  spec: Record<string, unknown>;
  rootfs: RootfsMount[];
  runtime?: string;
  /** Grouping key: containers with the same sandbox id share one shim. */
  sandboxId?: string;
  labels?: Record<string, string>;
}

export class ContainersService {
  constructor(
    private readonly cfg: Config,
    private readonly meta: MetadataStore,
    /** Where image-based containers have their active snapshot (removed with the container). */
    private readonly snapshotter?: Snapshotter,
  ) {}

  create(c: NewContainer): Container {
    validateId(c.id, "container id");
    if (c.sandboxId) validateId(c.sandboxId, "sandbox id");
    const runtime = c.runtime ?? this.cfg.defaultRuntime;
    if (!this.cfg.runtimes[runtime]) throw invalidArgument(`runtime handler "${runtime}" is not configured`);
    const spec = c.spec as { process?: { args?: unknown } };
    if (!Array.isArray(spec.process?.args) || spec.process.args.length === 0) {
      throw invalidArgument(`container "${c.id}": spec.process.args must be a non-empty list`);
    }
    for (const m of c.rootfs) {
      if (!m.type || !m.source) throw invalidArgument(`container "${c.id}": rootfs mounts need a type and a source`);
    }
    const now = Date.now();
    const row: Container = {
      id: c.id,
      runtime,
      spec: JSON.stringify(c.spec),
      rootfs: c.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target ?? "", options: m.options })),
      labels: c.labels ?? {},
      sandboxId: c.sandboxId ?? null,
      createdAt: now,
      updatedAt: now,
    };
    this.meta.containers.create(row);
    return row;
  }

  get(id: string): Container {
    return this.meta.containers.get(id);
  }

  /** Replaces the stored OCI spec (used by the next task create); NotFound if missing. */
  updateSpec(id: string, spec: Record<string, unknown>): Container {
    return this.meta.containers.update(id, { spec: JSON.stringify(spec) });
  }

  list(): Container[] {
    return this.meta.containers.list();
  }

  /**
   * Removes a container whose task (if any) is deleted, then its snapshot. With `detachSnapshot`
   * the snapshot is removed in the background and `snapshotRemoved` settles when it is (a crash
   * before that leaves an orphan snapshot, which start-up removes).
   */
  async delete(id: string, opts: { detachSnapshot?: boolean } = {}): Promise<{ snapshotRemoved: Promise<void> }> {
    const key = this.meta.containers.find(id)?.labels[SNAPSHOT_LABEL];
    this.meta.transaction(() => {
      this.meta.containers.get(id);
      const t = this.meta.tasks.find(id);
      if (t && t.deletedAt === null) throw failedPrecondition(`container "${id}" still has a task (${t.status}); delete it first`);
      if (this.meta.teardowns.find(id)) throw failedPrecondition(`container "${id}" is still being torn down`);
      if (t) this.meta.tasks.delete(id);
      this.meta.containers.delete(id);
    });
    const sn = this.snapshotter;
    const snapshotRemoved =
      key && sn
        ? sn.remove(key).catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          })
        : Promise.resolve();
    if (!opts.detachSnapshot) await snapshotRemoved;
    return { snapshotRemoved };
  }
}
