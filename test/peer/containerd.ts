/**
 * A test-owned containerd 1.6 (Debian's /usr/bin/containerd) with its CRI plugin, for
 * differential tests and benchmarks: the reference skiff must behave like.
 *
 * Everything lives in one temp dir (`skiff-peer-*`): config, root, state, sockets, log, and the
 * runc state (the runc runtime's `Root` option points into it, so `runc list` there shows only
 * this peer's containers). Never touches the system containerd, its socket or /var/lib/containerd.
 * What cannot live in the temp dir, and `stop()` cleans by identity:
 * - shim processes: `containerd-shim-runc-v2 -namespace k8s.io -id <id> -address <our socket>`;
 *   their sockets are under /run/containerd/s/ (named by a hash that includes our address);
 * - pod network namespaces `/var/run/netns/cni-<uuid>` (only the ones our pods referenced);
 * - if containerd died with pods up: the NAT rules CNI made for them (by sandbox id in the comment);
 * - the `/sys/fs/cgroup/<hierarchy>/k8s.io` parents, if they appeared after start and are empty.
 * The CNI conf dir and anything it creates (bridge, IPAM store) belong to the caller.
 * If the test process dies without `stop()`, containerd (a plain child) and its shims survive.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, createWriteStream, existsSync, openSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { mountsUnder, unmountAll } from "../../src/runtime/mount-linux.js";
import { run, runChecked } from "../../src/util/exec.js";
import { isAlive, waitForExit } from "../../src/util/proc.js";
import { sleep } from "../../src/util/signal.js";
import { call, criClients, type Reply } from "../integration/cri-client.js";
import { CRI_NAMESPACE, criCgroupDirs, listNetnsFiles, NETNS_DIR, netnsPathsOf, removeCniRules, SHIM_SOCKET_DIR, shimPidsFor } from "./host.js";

export { CRI_NAMESPACE, netnsPathsOf, removeCniRules, shimPidsFor };

export const CONTAINERD_BIN = "/usr/bin/containerd";
export const CTR_BIN = "/usr/bin/ctr";
export const RUNC_BIN = "runc";

export interface PeerContainerdOptions {
  /** Directory with the CNI network config (the caller writes it; containerd loads one file). */
  cniConfDir: string;
  /** Candidate plugin dirs; containerd 1.6 takes one: the first that exists (default /usr/lib/cni). */
  cniBinDirs?: string[];
  /** docker-save or OCI archives imported (and unpacked for overlayfs) into namespace k8s.io. */
  images: { archive: string }[];
  /** CRI `sandbox_image`; must be among the imported images (the peer never pulls). */
  sandboxImage: string;
  /** Copy containerd's log to stderr as well as to `<dir>/containerd.log`. */
  log?: boolean;
  /** containerd log level (default "info"). */
  logLevel?: string;
  /** Extra CRI runtime handlers, each runc-v2 with its own runc `BinaryName` (e.g. a fault wrapper). */
  runtimes?: Record<string, { binaryName: string }>;
  /** How long to wait for the CRI socket to answer (default 20 s). */
  startTimeoutMs?: number;
}

/** A running peer. `stop()` is idempotent and safe to call concurrently; it removes `dir`. */
export interface PeerContainerd {
  /** gRPC socket (CRI and containerd API). */
  socket: string;
  /** The temp dir holding everything of this peer. */
  dir: string;
  pid: number;
  /** containerd's log file (inside `dir`, so gone after `stop()`). */
  logFile: string;
  /** runc state root of the peer's containers (`<runc root option>/k8s.io`). */
  runcRoot: string;
  stop(): Promise<void>;
}

/** containerd's config (schema version 2). Strings are TOML basic strings (JSON escapes fit). */
export function peerConfigToml(o: { dir: string; socket: string; sandboxImage: string; cniBinDir: string; cniConfDir: string; logLevel: string; runtimes?: Record<string, { binaryName: string }> }): string {
  const s = (v: string) => JSON.stringify(v);
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  return `version = 2
root = ${s(path.join(o.dir, "root"))}
state = ${s(path.join(o.dir, "state"))}
oom_score = 0

[grpc]
  address = ${s(o.socket)}

[ttrpc]
  address = ${s(o.socket + ".ttrpc")}

[debug]
  address = ${s(path.join(o.dir, "debug.sock"))}
  level = ${s(o.logLevel)}

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${s(path.join(o.dir, "opt"))}

  [${cri}]
    sandbox_image = ${s(o.sandboxImage)}
    disable_apparmor = true
    enable_selinux = false
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_tls_streaming = false

    [${cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [${cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [${cri}.containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = ${s(path.join(o.dir, "runc"))}
${Object.entries(o.runtimes ?? {})
  .map(([name, r]) => `
      [${cri}.containerd.runtimes.${name}]
        runtime_type = "io.containerd.runc.v2"

        [${cri}.containerd.runtimes.${name}.options]
          SystemdCgroup = false
          BinaryName = ${s(r.binaryName)}
          Root = ${s(path.join(o.dir, "runc"))}
`)
  .join("")}
    [${cri}.cni]
      bin_dir = ${s(o.cniBinDir)}
      conf_dir = ${s(o.cniConfDir)}
      max_conf_num = 1
`;
}

/**
 * Starts containerd on a fresh temp dir, waits until its CRI answers Version and reports the
 * network ready, and imports `opts.images`. On failure everything started is cleaned up.
 */
export async function startPeerContainerd(opts: PeerContainerdOptions): Promise<PeerContainerd> {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-peer-"));
  const socket = path.join(dir, "containerd.sock");
  const logFile = path.join(dir, "containerd.log");
  const cniBinDir = (opts.cniBinDirs ?? ["/usr/lib/cni"]).find((d) => existsSync(d)) ?? "/usr/lib/cni";
  const configFile = path.join(dir, "config.toml");
  await writeFile(
    configFile,
    peerConfigToml({ dir, socket, sandboxImage: opts.sandboxImage, cniBinDir, cniConfDir: opts.cniConfDir, logLevel: opts.logLevel ?? "info", runtimes: opts.runtimes }),
  );
  await mkdir(path.join(dir, "runc"), { recursive: true });
  const netnsBefore = new Set(await listNetnsFiles());
  const cgroupsBefore = new Set(await criCgroupDirs());

  let child: ChildProcess;
  if (opts.log) {
    // Tee: the log file and our stderr.
    child = spawn(CONTAINERD_BIN, ["--config", configFile], { detached: false, stdio: ["ignore", "pipe", "pipe"] });
    const file = createWriteStream(logFile, { flags: "a" });
    let open = 2;
    for (const s of [child.stdout!, child.stderr!]) {
      s.on("data", (b: Buffer) => (file.write(b), process.stderr.write(b)));
      s.once("close", () => --open === 0 && file.end());
    }
  } else {
    const fd = openSync(logFile, "a");
    try {
      child = spawn(CONTAINERD_BIN, ["--config", configFile], { detached: false, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", () => {});
  const peer = new Peer(dir, socket, logFile, child, exited, netnsBefore, cgroupsBefore);
  try {
    if (child.pid === undefined) throw new Error(`spawn ${CONTAINERD_BIN} failed`);
    await peer.waitReady(opts.startTimeoutMs ?? 20_000);
    for (const img of opts.images) {
      const res = await run(CTR_BIN, ["--address", socket, "-n", CRI_NAMESPACE, "images", "import", "--all-platforms", img.archive]);
      if (res.code !== 0) throw new Error(`ctr images import ${img.archive}: ${res.stderr.toString().trim() || res.stdout.toString().trim()}`);
    }
    return peer;
  } catch (err) {
    const log = await readFile(logFile, "utf8").catch(() => "");
    await peer.stop().catch((e: unknown) => console.error("peer containerd cleanup:", e));
    throw new Error(`peer containerd: ${(err as Error).message}\n--- containerd log (tail) ---\n${log.split("\n").slice(-40).join("\n")}`, { cause: err });
  }
}

class Peer implements PeerContainerd {
  readonly runcRoot: string;
  readonly pid: number;
  #stopping: Promise<void> | undefined;
  /** Netns paths our sandboxes referenced (collected at stop, removed if containerd left them). */
  readonly #netns = new Set<string>();
  /** Shim sockets (under /run/containerd/s) named in our task bundles' `address` files. */
  readonly #shimSockets = new Set<string>();
  /** Ids of task bundles left behind: sandboxes whose CNI DEL may never have run. */
  readonly #leftIds = new Set<string>();

  constructor(
    readonly dir: string,
    readonly socket: string,
    readonly logFile: string,
    readonly child: ChildProcess,
    readonly exited: Promise<void>,
    readonly netnsBefore: Set<string>,
    readonly cgroupsBefore: Set<string>,
  ) {
    this.pid = child.pid ?? -1;
    this.runcRoot = path.join(dir, "runc", CRI_NAMESPACE);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const c = criClients(this.socket);
    let last: unknown;
    try {
      for (;;) {
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          throw new Error(`containerd exited (${this.child.exitCode ?? this.child.signalCode}) during start-up`);
        }
        try {
          await call(c.runtime, "Version", {});
          const st = await call(c.runtime, "Status", {});
          const conds = (st.status?.conditions ?? []) as Reply[];
          if (conds.length > 0 && conds.every((x) => x.status)) return;
          last = new Error(`not ready: ${JSON.stringify(conds)}`);
        } catch (err) {
          last = err;
        }
        if (Date.now() >= deadline) throw new Error(`CRI not ready after ${timeoutMs} ms: ${(last as Error)?.message}`);
        await sleep(100);
      }
    } finally {
      c.close();
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(new Error(`${what}: ${(err as Error).message}`, { cause: err }));
      }
    };
    if (await isAlive(this.pid)) {
      await step("remove pods", async () => {
        try {
          await withTimeout(this.#removePods(), 60_000, "removing pods");
        } catch (err) {
          // A containerd that died meanwhile is what the rest of stop() cleans up after.
          const gone = await Promise.race([this.exited.then(() => true), sleep(1_000).then(() => false)]);
          if (!gone) throw err;
        }
      });
    }
    await step("stop containerd", () => this.#stopDaemon());
    await step("scan bundles", () => this.#scanBundles());
    await step("kill shims", () => this.#killShims());
    await step("delete runc containers", () => this.#deleteRuncContainers());
    await step("remove shim sockets", () => this.#removeShimSockets());
    await step("remove netns", () => this.#removeNetns());
    await step("remove iptables rules", () => removeCniRules(this.#leftIds));
    await step("remove cgroups", () => this.#removeCgroups());
    await step("unmount", () => unmountAll(this.dir));
    await step("remove dir", async () => {
      const left = await mountsUnder(this.dir);
      if (left.length) throw new Error(`still mounted: ${left.join(", ")}`);
      await rm(this.dir, { recursive: true, force: true });
    });
    if (errors.length) throw new AggregateError(errors, `peer containerd stop: ${errors.map((e) => (e as Error).message).join("; ")}`);
  }

  /** Stops and removes every pod (as kubelet would), remembering their netns paths. */
  async #removePods(): Promise<void> {
    const c = criClients(this.socket);
    try {
      const pods = ((await call(c.runtime, "ListPodSandbox", {})).items ?? []) as Reply[];
      const failed: string[] = [];
      for (const pod of pods) {
        try {
          const st = await call(c.runtime, "PodSandboxStatus", { pod_sandbox_id: pod.id, verbose: true });
          for (const p of netnsPathsOf(st)) this.#netns.add(p);
        } catch {
          // status is only for netns bookkeeping
        }
        try {
          await call(c.runtime, "StopPodSandbox", { pod_sandbox_id: pod.id });
          await call(c.runtime, "RemovePodSandbox", { pod_sandbox_id: pod.id });
        } catch (err) {
          failed.push(`${pod.id}: ${(err as Error).message}`);
        }
      }
      // The rest of stop() cleans up after these by identity (bundles, shims, runc, netns).
      if (failed.length) throw new Error(`pods not removed: ${failed.join("; ")}`);
    } finally {
      c.close();
    }
  }

  async #stopDaemon(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const done = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }

  /**
   * Task bundles left behind (containerd died or could not clean up) tell what lives outside
   * `dir`: the network namespace in each config.json, the shim socket in each `address` file.
   */
  async #scanBundles(): Promise<void> {
    const tasks = path.join(this.dir, "state", "io.containerd.runtime.v2.task", CRI_NAMESPACE);
    let ids: string[];
    try {
      ids = await readdir(tasks);
    } catch {
      return;
    }
    for (const id of ids) {
      const bundle = path.join(tasks, id);
      if (/^[0-9a-f]{64}$/.test(id)) this.#leftIds.add(id);
      try {
        const spec = JSON.parse(await readFile(path.join(bundle, "config.json"), "utf8")) as { linux?: { namespaces?: { type: string; path?: string }[] } };
        for (const ns of spec.linux?.namespaces ?? []) if (ns.type === "network" && ns.path) this.#netns.add(ns.path);
      } catch {
        // no spec: nothing to learn
      }
      try {
        const addr = (await readFile(path.join(bundle, "address"), "utf8")).trim().replace(/^unix:\/\//, "");
        if (path.dirname(addr) === SHIM_SOCKET_DIR) this.#shimSockets.add(addr);
      } catch {
        // no shim address
      }
    }
  }

  async #removeShimSockets(): Promise<void> {
    for (const s of this.#shimSockets) await rm(s, { force: true });
  }

  /** SIGKILLs the shims whose command line names our socket (and only those). */
  async #killShims(): Promise<void> {
    const pids = await shimPidsFor(this.socket);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const pid of pids) {
      if (!(await waitForExit(pid, 5_000))) throw new Error(`shim ${pid} did not exit`);
    }
  }

  /** Containers whose shim died leave runc state (and processes): force-delete them. */
  async #deleteRuncContainers(): Promise<void> {
    if (!existsSync(this.runcRoot)) return;
    const res = await runChecked(RUNC_BIN, ["--root", this.runcRoot, "list", "-q"]);
    for (const id of res.stdout.toString().split("\n").filter(Boolean)) {
      await runChecked(RUNC_BIN, ["--root", this.runcRoot, "delete", "-f", id]);
    }
  }

  /**
   * Without a cgroup_parent, containerd puts containers in `/k8s.io/<id>`; runc removes the leaf
   * but not `/k8s.io`. Removes the (empty) parents that appeared after start; busy ones (another
   * containerd is using them) stay.
   */
  async #removeCgroups(): Promise<void> {
    for (const d of await criCgroupDirs()) {
      if (this.cgroupsBefore.has(d)) continue;
      try {
        await rmdir(d);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "EBUSY" && code !== "ENOTEMPTY") throw err;
      }
    }
  }

  /** Network namespaces our sandboxes referenced that did not exist before the peer started. */
  async #removeNetns(): Promise<void> {
    for (const p of this.#netns) {
      if (path.dirname(p) !== NETNS_DIR || this.netnsBefore.has(path.basename(p)) || !existsSync(p)) continue;
      await run("umount", [p]);
      if ((await mountsUnder(p)).includes(p)) await runChecked("umount", ["-l", p]);
      await rm(p, { force: true });
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
