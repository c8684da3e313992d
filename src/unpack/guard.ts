/**
 * The safety rules for a layer, applied to each entry before any byte of it reaches GNU tar.
 *
 * Why this is enough to keep every write inside `dest` (which must be empty):
 * - tar resolves member names relative to `-C dest`. We reject any name with a `..` component
 *   (GNU tar would also skip those by default: defence in depth) and let tar strip leading '/'
 *   (its default without -P), so a name alone cannot leave dest.
 * - The only other way out is through a symlink: tar follows symlinks in the *parent* path of a
 *   member (GNU tar has no --secure-symlinks). dest starts empty, so every symlink tar could
 *   traverse was created by this same archive: we track them (and hard links to them) and
 *   reject any entry, or hard-link target, whose parent path goes through one.
 * - An entry at the path of an earlier symlink could make tar chmod/chown/utime the symlink's
 *   target (directories), so anything but another symlink there is rejected; likewise anything
 *   but a directory at the path of an earlier directory (implicit parents included).
 * - Hard links must name a non-directory entry seen earlier in this layer, by a relative path:
 *   linkat(2) does not follow the final symlink, so the link can never reach a host file.
 * - Whiteout markers cannot name `.`/`..`/empty; `trusted.overlay.*` xattrs are refused (they
 *   would forge overlay opaque/redirect/metacopy state).
 * - The sum of declared sizes (sparse files at their expanded size) is capped.
 */
import { invalidArgument } from "../errors.js";
import { showName } from "./tar-format.js";

export interface TarEntry {
  /** The typeflag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'S' sparse. */
  type: string;
  /** Effective path as tar will use it (binary string). */
  path: string;
  /** Every name the headers gave (ustar, GNU long name, PAX path, GNU.sparse.name): all are checked. */
  names: string[];
  linkpath: string;
  linknames: string[];
  /** Bytes of data following the header. */
  size: number;
  /** Expanded size for sparse files, else equal to `size`. */
  realSize: number;
  xattrs: string[];
}

export const DEFAULT_MAX_SIZE = 8 * 1024 ** 3;

type Kind = "dir" | "symlink" | "other";

export class LayerGuard {
  readonly maxSize: number;
  /** Normalised paths of `.wh.<name>` markers, in archive order. */
  readonly whiteouts: string[] = [];
  /** Directories holding a `.wh..wh..opq` marker ("" is the layer root). */
  readonly opaques: string[] = [];
  /** Other `.wh..wh.*` entries (aufs bookkeeping): dropped after extraction. */
  readonly aufsMeta: string[] = [];
  entries = 0;
  #total = 0;
  readonly #kinds = new Map<string, Kind>();

  constructor(opts: { maxSize?: number } = {}) {
    this.maxSize = opts.maxSize ?? DEFAULT_MAX_SIZE;
  }

  /**
   * Throws InvalidArgument naming the entry if it is unsafe; otherwise records it. Every name
   * the headers carry (the truncated ustar field too, when a long name overrides it) must pass
   * the `..` and symlink-parent checks, so safety never depends on agreeing with tar about which
   * one wins; kinds, replacement rules and whiteouts use the effective `path` (GNU tar's
   * precedence: GNU.sparse.name / PAX path > GNU long name > ustar prefix+name).
   */
  check(e: TarEntry): void {
    const reject = (why: string) => invalidArgument(`layer entry ${showName(e.path)}: ${why}`);
    const eff = normalise(e.path, reject);
    const paths = unique([eff, ...e.names.map((n) => normalise(n, reject))]);
    if (!KINDS.has(e.type)) throw reject(`unsupported tar entry type ${JSON.stringify(e.type)}`);
    if (e.size !== 0 && HEADER_ONLY.has(e.type)) throw reject(`header-only entry claims ${e.size} data bytes`);
    for (const x of e.xattrs) if (x.startsWith("trusted.overlay.")) throw reject(`forbidden xattr ${x}`);
    const claim = Math.max(e.size, e.realSize);
    this.#total += claim;
    if (claim > this.maxSize || this.#total > this.maxSize) {
      throw reject(`size ${claim} takes the layer past the ${this.maxSize}-byte limit`);
    }
    if (eff === "" && e.type !== "5") throw reject("only a directory may name the layer root");
    for (const p of paths) this.#checkParents(p, reject);
    const prev = this.#kinds.get(eff);
    if (prev === "symlink" && e.type !== "2") throw reject("replaces a symlink created earlier in the layer");
    if (prev === "dir" && e.type !== "5") throw reject("replaces a directory");
    let kind: Kind = e.type === "5" ? "dir" : e.type === "2" ? "symlink" : "other";
    if (e.type === "1") {
      for (const n of unique([e.linkpath, ...e.linknames])) {
        const why = (w: string) => reject(`hard link target ${showName(n)}: ${w}`);
        if (n.startsWith("/")) throw why("absolute path");
        this.#checkParents(normalise(n, why), why);
      }
      const target = normalise(e.linkpath, reject);
      const tk = this.#kinds.get(target);
      if (tk === undefined || tk === "dir" || target === "") {
        throw reject(`hard link target ${showName(e.linkpath)} is not a file earlier in this layer`);
      }
      if (tk === "symlink") kind = "symlink"; // a hard link to a symlink is a symlink
    }
    this.#whiteout(eff, reject);
    this.#record(eff, kind);
    this.entries++;
  }

  #checkParents(p: string, reject: (why: string) => Error): void {
    let i = p.indexOf("/");
    while (i !== -1) {
      const parent = p.slice(0, i);
      if (this.#kinds.get(parent) === "symlink") throw reject(`parent ${showName(parent)} is a symlink in this layer`);
      i = p.indexOf("/", i + 1);
    }
  }

  #record(p: string, kind: Kind): void {
    if (p !== "") this.#kinds.set(p, kind);
    let i = p.indexOf("/");
    while (i !== -1) {
      const parent = p.slice(0, i);
      if (!this.#kinds.has(parent)) this.#kinds.set(parent, "dir");
      i = p.indexOf("/", i + 1);
    }
  }

  #whiteout(p: string, reject: (why: string) => Error): void {
    const slash = p.lastIndexOf("/");
    const base = p.slice(slash + 1);
    if (!base.startsWith(".wh.")) return;
    if (base === ".wh..wh..opq") this.opaques.push(slash === -1 ? "" : p.slice(0, slash));
    else if (base.startsWith(".wh..wh.")) this.aufsMeta.push(p);
    else {
      const target = base.slice(4);
      if (target === "" || target === "." || target === "..") throw reject("whiteout of an invalid name");
      this.whiteouts.push(p);
    }
  }
}

const KINDS = new Set(["0", "1", "2", "3", "4", "5", "6", "7", "S"]);
const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"]);

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/**
 * Strips leading '/' and `.` components; rejects `..` components and NUL. Returns "" for the
 * root. The raw name is checked (not a resolved form), so `a/../b` is refused outright.
 */
export function normalise(name: string, reject: (why: string) => Error): string {
  if (name === "") throw reject("empty name");
  if (name.includes("\0")) throw reject("NUL in name");
  const parts: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") throw reject("path contains a '..' component");
    parts.push(c);
  }
  return parts.join("/");
}
