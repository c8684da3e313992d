/**
 * Minimal busybox root file systems for integration tests.
 *
 * The default uses Debian's busybox-static (/bin/busybox). That build has FEATURE_SH_STANDALONE:
 * its `sh` runs applets internally, bypassing whatever is (or is not) on disk. Tests that depend
 * on the file system being what the shell executes (masked paths, replaced binaries) should use
 * `{ dynamic: true }`: Debian's dynamic busybox plus the libraries it links, which behaves like
 * upstream busybox images. scripts/setup.sh unpacks that binary (the two Debian packages
 * conflict, so only busybox-static is installed with apt).
 */
import { execFile } from "node:child_process";
import { chmod, copyFile, link, mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Debian busybox-static's binary; override with SKIFF_BUSYBOX_STATIC. */
export function staticBusyboxPath(): string {
  return process.env.SKIFF_BUSYBOX_STATIC ?? "/bin/busybox";
}

/** The dynamic busybox unpacked by scripts/setup.sh; override with SKIFF_BUSYBOX_DYNAMIC. */
export function dynamicBusyboxPath(): string {
  return process.env.SKIFF_BUSYBOX_DYNAMIC ?? "/usr/local/lib/skiff-testing/busybox";
}

export interface BusyboxRootfsOptions {
  /** Use the dynamically linked busybox and copy its libc (see the module comment). */
  dynamic?: boolean;
  /**
   * How applets point at bin/busybox. "hard" (default) is what the official busybox image does,
   * and it is fast: creating an inode (a symlink) costs up to ~1 ms on some CI disks, and there
   * are ~270 applets. Either way busybox picks the applet from argv[0].
   */
  appletLinks?: "hard" | "symlink";
}

// A subset of the official busybox image's users and groups, with its memberships (root is in
// wheel): what `id` shows in a container depends on them.
const PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nnobody:x:65534:\n";

/**
 * Fills `dir` (created if missing; normally an empty directory) with a minimal root file system:
 * bin/busybox and a link in bin/ for each applet it lists, /etc/passwd and /etc/group with
 * root, daemon and nobody (root also in wheel), empty /etc/hosts and /etc/resolv.conf, empty
 * /proc /sys /dev /root, and /tmp with mode 1777. Dynamic: also the shared libraries at the paths `ldd` reports.
 */
export async function makeBusyboxRootfs(dir: string, opts: BusyboxRootfsOptions = {}): Promise<void> {
  const busybox = opts.dynamic ? dynamicBusyboxPath() : staticBusyboxPath();
  const [applets, libs] = await Promise.all([
    appletsOf(busybox),
    opts.dynamic ? sharedLibrariesOf(busybox) : Promise.resolve([]),
  ]);

  await Promise.all(
    ["bin", "etc", "proc", "sys", "dev", "tmp", "root"].map((d) => mkdir(join(dir, d), { recursive: true })),
  );
  const bin = join(dir, "bin");
  const linkApplet =
    opts.appletLinks === "symlink"
      ? (name: string) => symlink("busybox", join(bin, name))
      : (name: string) => link(join(bin, "busybox"), join(bin, name));
  await Promise.all([
    // A copy, never a link to the host's binary: a container writing to /bin/sh must not
    // change the host.
    copyFile(busybox, join(bin, "busybox"))
      .then(() => chmod(join(bin, "busybox"), 0o755))
      .then(() => Promise.all(applets.filter((a) => a !== "busybox").map(linkApplet))),
    chmod(join(dir, "tmp"), 0o1777),
    writeFile(join(dir, "etc/passwd"), PASSWD),
    writeFile(join(dir, "etc/group"), GROUP),
    writeFile(join(dir, "etc/hosts"), ""),
    writeFile(join(dir, "etc/resolv.conf"), ""),
    ...libs.map(async (lib) => {
      const dest = join(dir, lib);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(lib, dest); // follows symlinks: the rootfs gets the real file under this name
      await chmod(dest, 0o755);
    }),
  ]);
}

// Both lookups spawn a process; a test suite builds many root file systems from the same binary.
const appletCache = new Map<string, Promise<string[]>>();
const libCache = new Map<string, Promise<string[]>>();

/** Applet names from `busybox --list` (cached per binary). */
export function appletsOf(busybox: string): Promise<string[]> {
  let p = appletCache.get(busybox);
  if (!p) {
    p = execFileAsync(busybox, ["--list"]).then(({ stdout }) =>
      stdout
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.includes("/")),
    );
    p.catch(() => appletCache.delete(busybox));
    appletCache.set(busybox, p);
  }
  return p;
}

/**
 * Absolute paths of the shared libraries (and the dynamic loader) `binary` needs, from `ldd`
 * (cached per binary). Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`
 * or `/lib64/ld-linux-x86-64.so.2 (0x…)`; linux-vdso has no file and is skipped.
 */
export function sharedLibrariesOf(binary: string): Promise<string[]> {
  let p = libCache.get(binary);
  if (!p) {
    p = execFileAsync("ldd", [binary]).then(({ stdout }) => {
      const libs: string[] = [];
      for (const line of stdout.split("\n")) {
        const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
        if (m?.[1]) libs.push(m[1]);
      }
      if (libs.length === 0) throw new Error(`ldd found no shared libraries for ${binary}: is it static?`);
      return libs;
    });
    p.catch(() => libCache.delete(binary));
    libCache.set(binary, p);
  }
  return p;
}
