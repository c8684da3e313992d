/**
 * The runtimes a scenario runs against, behind one shape: skiffd (a separate process, so it can
 * be SIGKILLed and restarted) on a harness env, and the test-owned containerd 1.6.20 peer. Both
 * have the default runc handler and a handler "slow" whose runc is the fault wrapper.
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { randomBytes, randomInt } from "node:crypto";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, spawnDaemon, stopDaemon, type Env } from "../integration/harness.js";
import { criClients } from "../integration/cri-client.js";
import { defaultConflist } from "../../src/cni/config.js";
import { run } from "../../src/util/exec.js";
import { startPeerContainerd, type PeerContainerd } from "../peer/containerd.js";
import { builtinImageArchive, BUSYBOX_IMAGE, PAUSE_IMAGE } from "../peer/images.js";
import { installRuncWrapper, type RuncWrapper } from "../faults/runc-wrapper.js";
import { shimsBy, type ShimInfo } from "../faults/kill.js";
import { auditPeer, auditSkiff, type Leftovers } from "./audit.js";

/** The runtime handler whose runc is the fault wrapper. */
export const SLOW_HANDLER = "slow";

export interface Target {
  readonly name: "skiff" | "containerd";
  /** The current CRI runtime client (replaced when a daemon is restarted: read it per call). */
  readonly runtime: grpc.Client;
  readonly logDir: string;
  readonly image: string;
  readonly wrapper: RuncWrapper;
  /** A dir of the target's own for fault files (strace logs, ...). */
  readonly scratch: string;
  shims(): Promise<ShimInfo[]>;
  audit(): Promise<Leftovers>;
  /** Stops the daemon and force-cleans what is left; returns what had to be cleaned. */
  close(): Promise<string[]>;
}

export interface SkiffTarget extends Target {
  readonly name: "skiff";
  readonly env: Env;
  readonly child: ChildProcess;
  /** Mount points of faults under the env dir, not counted as leftovers. */
  ignoreMounts: string[];
  /** Starts the daemon again after it died (or was killed); reconnects the clients. */
  restart(): Promise<void>;
  /** Runs before the env is cleaned (e.g. unmount a fault's tmpfs); set by the scenario. */
  beforeCleanup?: () => Promise<void>;
}

export interface SkiffOptions {
  /** The compiled daemon (dist/), as `make run` starts it; default: the sources through tsx. */
  built?: boolean;
  /** Changes the env (config, dirs, mounts) before the daemon first starts. */
  prepare?: (env: Env) => Promise<void>;
}

export async function startSkiff(opts: SkiffOptions = {}): Promise<SkiffTarget> {
  const env = await makeEnv("skiff-rel-");
  env.cfg.builtinImages = true;
  const scratch = path.join(env.dir, "faults");
  await mkdir(scratch);
  const wrapper = await installRuncWrapper(scratch);
  env.cfg.runtimes[SLOW_HANDLER] = { shim: "containerd-shim-runc-v2", binaryName: wrapper.binary, runcRoot: "" };
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  let child: ChildProcess | undefined;
  let clients: ReturnType<typeof criClients> | undefined;
  const t: SkiffTarget = {
    name: "skiff",
    env,
    get child() {
      return child!;
    },
    get runtime() {
      return clients!.runtime;
    },
    logDir,
    image: BUSYBOX_IMAGE,
    wrapper,
    scratch,
    ignoreMounts: [],
    shims: () => shimsBy("-namespace", env.cfg.namespace),
    audit: () => auditSkiff(env, { ignoreMounts: t.ignoreMounts }),
    async restart() {
      clients?.close();
      if (child && child.exitCode === null && child.signalCode === null) await stopDaemon(child);
      child = await spawnDaemon(env, { built: opts.built });
      clients = criClients(env.cfg.socket);
    },
    async close() {
      clients?.close();
      if (child) await stopDaemon(child);
      await t.beforeCleanup?.();
      return cleanupEnv(env);
    },
  };
  try {
    await opts.prepare?.(env);
    await t.restart();
  } catch (err) {
    await t.close().catch(() => {});
    throw err;
  }
  return t;
}

/** containerd 1.6.20 on a network of its own, with the same images and the "slow" handler. */
export async function startContainerd(): Promise<Target> {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-rel-peer-"));
  const bridge = `skr${randomBytes(3).toString("hex")}`;
  let peer: PeerContainerd | undefined;
  let clients: ReturnType<typeof criClients> | undefined;
  const close = async () => {
    clients?.close();
    await peer?.stop().catch((e: unknown) => console.error("peer containerd stop:", e));
    await run("ip", ["link", "del", bridge]);
    await rm(dir, { recursive: true, force: true });
    return [];
  };
  try {
    const confDir = path.join(dir, "net.d");
    await mkdir(confDir);
    const conf = defaultConflist({ subnet: `10.${randomInt(200, 250)}.0.0/16`, bridge, name: `${bridge}-net`, dataDir: path.join(dir, "ipam") });
    await writeFile(path.join(confDir, "10-rel.conflist"), JSON.stringify(conf));
    const scratch = path.join(dir, "faults");
    await mkdir(scratch);
    const wrapper = await installRuncWrapper(scratch);
    const archive = await builtinImageArchive(dir);
    peer = await startPeerContainerd({
      cniConfDir: confDir,
      images: [{ archive }],
      sandboxImage: PAUSE_IMAGE,
      runtimes: { [SLOW_HANDLER]: { binaryName: wrapper.binary } },
    });
    const logDir = path.join(dir, "logs");
    await mkdir(logDir);
    clients = criClients(peer.socket);
    const p = peer;
    const c = clients;
    return {
      name: "containerd",
      runtime: c.runtime,
      logDir,
      image: BUSYBOX_IMAGE,
      wrapper,
      scratch,
      shims: () => shimsBy("-address", p.socket),
      audit: () => auditPeer(p),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
