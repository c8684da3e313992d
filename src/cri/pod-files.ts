/**
 * The files a pod's containers share: /etc/hostname, /etc/hosts and /etc/resolv.conf, written
 * once into the pod's directory and bind-mounted into every container (as containerd does).
 */
import { chmod, copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { hostname as hostHostname } from "node:os";
import * as path from "node:path";
import { invalidArgument } from "../errors.js";
import { run } from "../util/exec.js";
import { unmountAll } from "../runtime/mount-linux.js";

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface PodFilesOptions {
  hostname: string;
  hostNetwork: boolean;
  /** Absent: the host's /etc/resolv.conf is copied. */
  dns?: DnsConfig;
}

export const POD_FILES = ["hostname", "hosts", "resolv.conf"] as const;

const LOCAL_HOSTS = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "fe00::0\tip6-mcastprefix",
  "fe00::1\tip6-allnodes",
  "fe00::2\tip6-allrouters",
];

/** resolv.conf text for a DNSConfig; InvalidArgument for values that would break the file. */
export function resolvConf(dns: DnsConfig): string {
  const lines: string[] = [];
  for (const v of [...dns.servers, ...dns.searches, ...dns.options]) {
    if (/[\s#;]/.test(v) || v === "") throw invalidArgument(`dns_config: invalid entry ${JSON.stringify(v)}`);
  }
  if (dns.searches.length) lines.push(`search ${dns.searches.join(" ")}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length) lines.push(`options ${dns.options.join(" ")}`);
  return lines.join("\n") + "\n";
}

/** Writes the pod files into `dir` (created, mode 0755). */
export async function writePodFiles(dir: string, o: PodFilesOptions): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const name = o.hostNetwork ? hostHostname() : o.hostname;
  await writeFile(path.join(dir, "hostname"), `${name}\n`, { mode: 0o644 });
  // Copies keep the host file's mode; a 0600 one would be unreadable to a non-root container.
  if (o.hostNetwork) await copyFile("/etc/hosts", path.join(dir, "hosts")).then(() => chmod(path.join(dir, "hosts"), 0o644));
  else await writeFile(path.join(dir, "hosts"), LOCAL_HOSTS.join("\n") + "\n", { mode: 0o644 });
  const resolv = path.join(dir, "resolv.conf");
  if (o.dns && (o.dns.servers.length || o.dns.searches.length || o.dns.options.length)) {
    await writeFile(resolv, resolvConf(o.dns), { mode: 0o644 });
  } else {
    await copyFile("/etc/resolv.conf", resolv).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
      return writeFile(resolv, "", { mode: 0o644 });
    });
    await chmod(resolv, 0o644);
  }
}

/** The pod's shared /dev/shm (a tmpfs in the pod dir), or the host's with the host IPC namespace. */
export function podShmSource(podDir: string, hostIpc: boolean): string {
  return hostIpc ? "/dev/shm" : path.join(podDir, "shm");
}

/**
 * Mounts the pod's /dev/shm: one tmpfs (64 MiB, as containerd's) that the pause container and
 * every container of the pod bind, so that they share POSIX shared memory as they share the IPC
 * namespace. Unmounted by the pod's removal (never remove the pod dir through it).
 */
export async function mountPodShm(podDir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const dir = podShmSource(podDir, false);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const res = await run("mount", ["-t", "tmpfs", "-o", "nosuid,nodev,noexec,mode=1777,size=65536k", "shm", dir], opts);
  if (res.code !== 0) throw new Error(`mount the pod's /dev/shm at ${dir}: ${res.stderr.toString().trim()}`);
}

/** Replaces the spec's /dev/shm with a bind of `source` (the pod's shared one). */
export function bindDevShm(spec: { mounts?: { destination: string; type?: string; source?: string; options?: string[] }[] }, source: string, readonly: boolean): void {
  // In place: callers hold the array and go on adding to it.
  const mounts = (spec.mounts ??= []);
  for (let i = mounts.length - 1; i >= 0; i--) if (mounts[i]!.destination === "/dev/shm") mounts.splice(i, 1);
  mounts.push({ destination: "/dev/shm", type: "bind", source, options: ["rbind", "rprivate", "nosuid", "nodev", "noexec", readonly ? "ro" : "rw"] });
}

/** Removes a pod dir, unmounting what is mounted in it (its /dev/shm) first: never rm through a mount. */
export async function removePodDir(dir: string): Promise<void> {
  await unmountAll(dir);
  await rm(dir, { recursive: true, force: true });
}
