/**
 * CRI pod sandboxes: the pause container in its own shim group (the pod's), a named network
 * namespace wired by CNI, the pod files, and the pod's lifecycle (run, stop, remove, exit of the
 * pause process).
 *
 * Invariants:
 * - RunPodSandbox reserves the pod's name first (state `creating`) and undoes everything it made,
 *   in reverse, if any step fails; a crash mid-way is rolled back by start-up recovery.
 * - Stop and remove are idempotent and serialized per pod. What they leave to tear down (network
 *   and netns; pause task, container and pod dir) is daemon-owned work in the backoff queue; the
 *   network goes before the namespace is removed (plugins need it to clean up inside).
 */
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import type { CriDocStore, ImageRecord } from "../metadata/index.js";
import { failedPrecondition, invalidArgument, isNotFound } from "../errors.js";
import { prepareImageRootfs, SNAPSHOT_LABEL } from "../containers/from-image.js";
import { UndoStack } from "../util/undo.js";
import { linkedSignal } from "../util/signal.js";
import { CniNetwork } from "../cni/network.js";
import { createNetns, netnsNameForPod, netnsPath, removeNetns } from "../cni/netns.js";
import type { ExitStatus } from "../tasks/types.js";
import type { CriDeps } from "./deps.js";
import { CLEANUP_TIMEOUT_MS } from "./deps.js";
import type { ExitMonitor } from "./exit-monitor.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { CRI_KIND_LABEL, NS_NODE, nowNs, sandboxNameKey, type NamespaceMode, type PortMappingRecord, type SandboxRecord } from "./records.js";
import { mountPodShm, podShmSource, removePodDir, writePodFiles, type DnsConfig } from "./pod-files.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { checkSysctls, pauseSpec } from "./pod-spec.js";
import { DEFAULT_POD_SECURITY, resolvePodSecurity, type PodSecurity } from "./security.js";
import { runtimeRefused, type ContainerService } from "./ctrs.js";

export interface RunPodRequest {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  hostname: string;
  logDirectory: string;
  dns?: DnsConfig;
  portMappings: PortMappingRecord[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  cgroupParent: string;
  sysctls: Record<string, string>;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode };
  runAsUser?: number;
  runAsGroup?: number;
  readonlyRootfs: boolean;
  supplementalGroups: number[];
  /** Privileged and seccomp of the pod's security context; absent: the defaults. */
  security?: PodSecurity;
  runtimeHandler: string;
}

export class PodService {
  readonly docs: CriDocStore<SandboxRecord>;
  readonly #locks = new KeyedMutex();
  #network: CniNetwork | undefined;
  #networkError = "";
  /** Network teardowns queued by stop and not yet done, by pod id. */
  readonly #netTeardowns = new Map<string, { done: Promise<void>; hostPorts: boolean }>();

  constructor(
    private readonly d: CriDeps,
    private readonly monitor: ExitMonitor,
  ) {
    this.docs = d.meta.criDocs<SandboxRecord>("cri_sandboxes", "pod sandbox");
  }

  /** Wired after construction (the two services refer to each other). */
  ctrs!: ContainerService;

  /** The prefix of this daemon's netns names (its namespace keeps test daemons apart). */
  get netnsPrefix(): string {
    return netnsNameForPod(`${this.d.cfg.namespace}-`);
  }

  /** The CNI network, loaded from the config dir on first use (and retried until it loads). */
  async network(): Promise<CniNetwork> {
    if (this.#network) return this.#network;
    const { cni, state } = this.d.cfg;
    try {
      this.#network = await CniNetwork.load(cni.confDir, {
        binDirs: cni.binDirs,
        pluginTimeoutMs: cni.pluginTimeoutMs,
        cacheDir: path.join(state, "cri", "cni-results"),
        logger: this.d.log.child({ c: "cni" }),
      });
      this.#networkError = "";
      return this.#network;
    } catch (err) {
      this.#networkError = (err as Error).message;
      throw err;
    }
  }

  /** NetworkReady for Status: whether a CNI config is loaded (loading it if needed). */
  async networkReady(): Promise<{ ready: boolean; message: string }> {
    try {
      await this.network();
      return { ready: true, message: "" };
    } catch {
      return { ready: false, message: `cni config uninitialized: ${this.#networkError}` };
    }
  }

  async run(req: RunPodRequest, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const handler = req.runtimeHandler || this.d.cfg.defaultRuntime;
    if (!this.d.cfg.runtimes[handler]) {
      // Clipped: a multi-KiB name echoed in full overflowed the grpc-message trailer (cri-fuzz).
      const shown = handler.length > 64 ? `${handler.slice(0, 64)}…` : handler;
      throw invalidArgument(`runtime handler "${shown}" is not configured`);
    }
    const id = randomBytes(32).toString("hex");
    const hostNet = req.namespaces.network === NS_NODE;
    const pod: SandboxRecord = {
      id,
      nameKey: sandboxNameKey(req),
      name: req.name,
      namespace: req.namespace,
      uid: req.uid,
      attempt: req.attempt,
      state: "creating",
      createdAtNs: nowNs(),
      runtimeHandler: req.runtimeHandler,
      labels: req.labels,
      annotations: req.annotations,
      logDirectory: req.logDirectory,
      hostname: req.hostname,
      namespaces: req.namespaces,
      netns: hostNet ? null : { name: netnsNameForPod(`${this.d.cfg.namespace}-${id}`), path: "" },
      networkAttached: false,
      ips: [],
      portMappings: req.portMappings,
      pid: 0,
      podDir: path.join(this.d.cfg.root, "pods", id),
      cgroupParent: req.cgroupParent,
      ...(req.security?.privileged ? { privileged: true } : {}),
    };
    if (pod.netns) pod.netns.path = netnsPath(pod.netns.name);
    checkSysctls(req.sysctls, pod);
    if (req.portMappings.some((p) => p.hostPort > 0)) await this.#hostPortsReleased(opts.signal);
    const image = await this.#pauseImage(opts.signal);
    const security = await resolvePodSecurity(req.security ?? DEFAULT_POD_SECURITY, `pod sandbox "${req.namespace}/${req.name}"`, opts.signal);
    this.docs.create(pod);
    const undo = new UndoStack(this.d.log);
    undo.push("release name", () => this.docs.delete(id));
    try {
      if (pod.netns) {
        await createNetns(pod.netns.name, { signal: opts.signal });
        undo.push("remove netns", () => removeNetns(pod.netns!.name));
      }
      // Two independent lines of work run side by side once the netns exists: CNI wires the
      // network inside it, while the pause container is made and started in it (shim start,
      // pod files and snapshot themselves in parallel). Each step pushes its undo when done;
      // both lines settle before anything is unwound.
      const network = (async () => {
        if (!pod.netns) return;
        const cni = await this.network();
        const st = await cni.setUp(id, pod.netns.path, {
          portMappings: req.portMappings.map((p) => ({
            hostPort: p.hostPort,
            containerPort: p.containerPort,
            protocol: p.protocol,
            ...(p.hostIp ? { hostIP: p.hostIp } : {}),
          })),
          args: cniArgs(pod),
          signal: opts.signal,
        });
        undo.push("cni teardown", () => this.#tearDownNetwork(pod));
        this.docs.update(id, { networkAttached: true, ips: st.ips });
      })();
      const pause = (async () => {
        const [, , rootfs] = await settleAll([
          this.d.tasks.prepareGroup(id, handler, opts).then(() => undo.push("release shim", () => this.d.tasks.releaseGroup(id))),
          writePodFiles(pod.podDir, { hostname: req.hostname, hostNetwork: hostNet, ...(req.dns ? { dns: req.dns } : {}) })
            .then(() => undo.push("remove pod dir", () => removePodDir(pod.podDir)))
            .then(async () => {
              if (pod.namespaces.ipc === NS_NODE) return;
              await mountPodShm(pod.podDir, opts);
              undo.push("unmount pod shm", () => unmountAll(podShmSource(pod.podDir, false)));
            }),
          prepareImageRootfs(this.d.images, this.d.snapshotter, image.name, id, opts).then((r) => {
            undo.push("remove snapshot", () => this.d.snapshotter.remove(r.key));
            return r;
          }),
        ] as const);
        const { mounts, key } = rootfs;
        const spec = pauseSpec(image, pod, {
          sysctls: req.sysctls,
          readonlyRootfs: req.readonlyRootfs,
          supplementalGroups: req.supplementalGroups,
          security,
          ...(req.runAsUser !== undefined ? { runAsUser: req.runAsUser } : {}),
          ...(req.runAsGroup !== undefined ? { runAsGroup: req.runAsGroup } : {}),
        });
        this.d.containers.create({
          id,
          spec,
          rootfs: mounts,
          runtime: handler,
          sandboxId: id,
          labels: { [SNAPSHOT_LABEL]: key, [CRI_KIND_LABEL]: "sandbox" },
        });
        undo.push("delete pause container", () => this.d.containers.delete(id));
        await this.d.tasks.create(id, {}, opts);
        undo.push("delete pause task", () => this.#deleteTask(id, true));
        this.monitor.watch(id);
        return this.d.tasks.start(id, opts);
      })();
      const [, info] = await settleAll([network, pause] as const);
      this.docs.update(id, { state: "ready", pid: info.pid });
      // Sandbox events carry the sandbox id as container id (as containerd sends them).
      this.ctrs.events.emit("created", id, id);
      this.ctrs.events.emit("started", id, id);
      undo.clear();
      return id;
    } catch (err) {
      await undo.unwind();
      // An OCI runtime refusal (bad hostname, sysctl value, …) is FailedPrecondition, not Unknown.
      throw runtimeRefused(err, `pod sandbox "${req.namespace}/${req.name.slice(0, 64)}" (${id})`);
    }
  }

  async #pauseImage(signal?: AbortSignal): Promise<ImageRecord> {
    const ref = this.d.cfg.cri.sandboxImage;
    const img = this.d.images.find(ref);
    if (img) return img;
    try {
      return await this.d.pullImage(ref, { signal });
    } catch (err) {
      throw failedPrecondition(`sandbox image "${ref}" is not present and could not be pulled: ${(err as Error).message}`, err);
    }
  }

  /**
   * Stops every container and the pause process; returns once their exits are recorded and the
   * pod is NOTREADY. The network (CNI DEL, then the netns) is torn down after that as daemon-owned
   * work in a lane of the backoff queue of its own: retried until it succeeds, redone by start-up
   * recovery after a crash (the pod record keeps `networkAttached` until it is done), and never
   * abandoned because the caller went away. Unknown ids succeed.
   */
  stop(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#locks.run(id, async () => {
      const pod = this.docs.find(id);
      if (!pod || pod.state === "removing") return;
      await Promise.all(this.ctrs.listByPod(id).map((c) => this.ctrs.stop(c.id, 0, opts)));
      if (pod.pid !== 0 || pod.state === "ready") await this.#stopPause(id, opts.signal);
      // The IPs are no longer the pod's (containerd reports none after stop); the CNI cache
      // keeps what DEL needs.
      this.docs.update(id, { state: "notready", pid: 0, ips: [] });
      this.ctrs.events.emit("stopped", id, id);
      if (pod.networkAttached || pod.netns) this.queueNetworkTeardown(pod);
    });
  }

  /** Queues the teardown of a stopped pod's network (once: a second stop adds nothing). */
  queueNetworkTeardown(pod: SandboxRecord): void {
    if (this.#netTeardowns.has(pod.id)) return;
    const hostPorts = pod.portMappings.some((p) => p.hostPort > 0);
    // A lane of its own: the network must not wait behind the pause task's teardown in the
    // pod's lane (a stalled shim delete would hold the pod's address and rules for as long).
    const done = this.monitor.queue
      .push(`${pod.id}/network`, "tear down pod network", () => this.#finishNetwork(pod.id))
      .finally(() => this.#netTeardowns.delete(pod.id));
    this.#netTeardowns.set(pod.id, { done, hostPorts });
  }

  async #finishNetwork(id: string): Promise<void> {
    const pod = this.docs.find(id);
    if (!pod) return;
    if (pod.networkAttached) {
      await this.#tearDownNetwork(pod);
      this.docs.update(id, { networkAttached: false, ips: [] });
    }
    if (pod.netns) await removeNetns(pod.netns.name);
  }

  /**
   * Waits for queued network teardowns of pods that mapped host ports: their DNAT rules would
   * otherwise still catch a new pod's traffic to the same host port for a while.
   */
  async #hostPortsReleased(signal?: AbortSignal): Promise<void> {
    const pending = [...this.#netTeardowns.values()].filter((t) => t.hostPorts).map((t) => t.done.catch(() => {}));
    if (!pending.length) return;
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      void Promise.all(pending).then(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  async #stopPause(id: string, signal?: AbortSignal): Promise<void> {
    let exit: ExitStatus | undefined;
    try {
      exit = this.d.tasks.info(id).exit;
      if (!exit) {
        await this.d.tasks.kill(id, 9, { all: true, signal }).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
        exit = await this.d.tasks.wait(id, { signal });
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (exit) this.docs.update(id, { pid: 0 });
  }

  async #tearDownNetwork(pod: SandboxRecord, signal?: AbortSignal): Promise<void> {
    if (!pod.netns) return;
    const network = await this.network();
    await network.tearDown(pod.id, pod.netns.path, { args: cniArgs(pod), signal });
  }

  /**
   * Stops (if needed) and removes the pod with all its containers; unknown ids succeed. The pod is
   * gone for CRI (and its name free) when this returns; the record stays, hidden as `removing`,
   * until the daemon has torn down what remains (network, pause task, container, netns, pod dir),
   * so a crash in between is finished by start-up recovery.
   */
  async remove(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const pod = this.docs.find(id);
    if (!pod || pod.state === "removing") return;
    if (pod.state !== "notready") await this.stop(id, opts);
    await this.#locks.run(id, async () => {
      const cur = this.docs.find(id);
      if (!cur || cur.state === "removing") return;
      for (const c of this.ctrs.listByPod(id)) await this.ctrs.remove(c.id, opts);
      this.resumeRemoval(this.docs.releaseName(id, { state: "removing" }));
      this.ctrs.events.emit("deleted", id, id);
    });
  }

  /** Queues the removal of a pod in state `removing` (RemovePodSandbox, or recovery after a crash). */
  resumeRemoval(pod: SandboxRecord): void {
    void this.monitor.queue.push(pod.id, "remove pod sandbox", async () => {
      // A teardown queued by stop goes first: CNI DEL needs the netns that purge removes.
      await this.#netTeardowns.get(pod.id)?.done;
      const cur = this.docs.find(pod.id) ?? pod;
      if (cur.networkAttached) {
        await this.#tearDownNetwork(cur);
        if (this.docs.find(pod.id)) this.docs.update(pod.id, { networkAttached: false, ips: [] });
      }
      await this.purge(cur);
      this.docs.delete(pod.id);
    });
  }

  /** What remains of a removed (or half-made) pod: pause task and container, netns, pod dir. Idempotent. */
  async purge(pod: SandboxRecord): Promise<void> {
    await this.#deleteTask(pod.id, true);
    try {
      const { snapshotRemoved } = await this.d.containers.delete(pod.id, { detachSnapshot: true });
      snapshotRemoved.catch((err: unknown) => this.d.log.warn({ pod: pod.id, err: (err as Error).message }, "snapshot not removed (start-up retries)"));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (pod.netns) await removeNetns(pod.netns.name);
    await removePodDir(pod.podDir);
  }

  async #deleteTask(id: string, force: boolean, signal?: AbortSignal): Promise<void> {
    const own = linkedSignal([signal], CLEANUP_TIMEOUT_MS);
    try {
      await this.d.tasks.delete(id, { force, signal: own.signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    } finally {
      own.dispose();
    }
  }

  /** Exit handler of the pause process: the pod is NOTREADY from now on; its task is torn down. */
  async handleExit(id: string): Promise<void> {
    const pod = this.docs.find(id);
    if (pod && pod.state === "ready") {
      this.docs.update(id, { state: "notready", pid: 0 });
      this.ctrs.events.emit("stopped", id, id);
    }
    await this.#deleteTask(id, false);
  }

  /** Rolls back a pod left `creating` by a crash: everything RunPodSandbox may have made. */
  async rollBack(pod: SandboxRecord): Promise<void> {
    if (pod.netns) {
      await this.#tearDownNetwork(pod).catch((err: unknown) => this.d.log.warn({ pod: pod.id, err: (err as Error).message }, "cni teardown failed"));
    }
    await this.purge(pod);
    this.docs.delete(pod.id);
  }
}

/** Like Promise.all, but waits for every promise to settle before rejecting with the first failure. */
async function settleAll<T extends readonly unknown[]>(ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** The CNI_ARGS kubelet-era runtimes send. */
function cniArgs(pod: SandboxRecord): Record<string, string> {
  return {
    K8S_POD_NAMESPACE: pod.namespace,
    K8S_POD_NAME: pod.name,
    K8S_POD_INFRA_CONTAINER_ID: pod.id,
    K8S_POD_UID: pod.uid,
  };
}
