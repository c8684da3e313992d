/**
 * Reading members of an untrusted image archive (tar, plain or gzip/zstd — GNU tar detects the
 * compression) without trusting it: members are listed first, then only the names the caller
 * asks for are extracted (GNU tar with `--no-wildcards`, never as root-owned or with archive
 * permissions) into a private temp dir, and a member is only ever read if every component of
 * its path is a real directory / regular file (`lstat`, then `O_NOFOLLOW`). Symlinks, devices,
 * FIFOs and hard-link tricks therefore never make skiff read or write outside the temp dir.
 * Owned by the caller: `close()` removes the temp dir (idempotent).
 */
import { constants, type ReadStream } from "node:fs";
import { lstat, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { sha256Digest } from "../content/digest.js";
import { invalidArgument, notFound } from "../errors.js";
import { runChecked } from "../util/exec.js";

/** JSON members (index, manifests, configs) above this size are refused. */
export const MAX_JSON_MEMBER = 4 << 20;

export class ArchiveReader {
  readonly archive: string;
  readonly dir: string;
  /** Normalized member name (no leading "./") → name as stored in the archive. */
  readonly #members: Map<string, string>;
  readonly #signal: AbortSignal | undefined;

  private constructor(archive: string, dir: string, members: Map<string, string>, signal?: AbortSignal) {
    this.archive = archive;
    this.dir = dir;
    this.#members = members;
    this.#signal = signal;
  }

  /** Lists the archive's members. NotFound if the archive is missing; InvalidArgument if unreadable. */
  static async open(archive: string, opts: { tmpDir?: string; signal?: AbortSignal } = {}): Promise<ArchiveReader> {
    const st = await lstat(archive).catch(() => undefined);
    if (!st) throw notFound(`archive ${archive} not found`);
    if (!st.isFile()) throw invalidArgument(`archive ${archive} is not a regular file`);
    const listing = await runChecked("tar", ["-t", "-f", archive], { signal: opts.signal, maxOutput: 64 << 20 }).catch(
      (err: unknown) => {
        if (opts.signal?.aborted) throw err;
        throw invalidArgument(`archive ${archive} is not a readable tar archive`, err);
      },
    );
    const members = new Map<string, string>();
    for (const raw of listing.stdout.toString("utf8").split("\n")) {
      if (raw === "" || raw.endsWith("/")) continue;
      members.set(normalizeMember(raw), raw);
    }
    const dir = await mkdtemp(path.join(opts.tmpDir ?? tmpdir(), "skiff-archive-"));
    return new ArchiveReader(archive, dir, members, opts.signal);
  }

  has(name: string): boolean {
    return this.#members.has(name);
  }

  names(): string[] {
    return [...this.#members.keys()];
  }

  /** Extracts the named members (those not in the archive are skipped) in one pass. */
  async extract(names: Iterable<string>): Promise<void> {
    const raws = [...new Set(names)].map((n) => this.#members.get(n)).filter((r): r is string => r !== undefined);
    if (raws.length === 0) return;
    await runChecked(
      "tar",
      [
        "-x",
        "-f",
        this.archive,
        "-C",
        this.dir,
        "--no-same-owner",
        "--no-same-permissions",
        "--no-overwrite-dir",
        "--no-wildcards",
        "--null",
        "--verbatim-files-from",
        "-T",
        "-",
      ],
      { input: raws.map((r) => `${r}\0`).join(""), signal: this.#signal },
    );
  }

  /** Opens an extracted member for reading; InvalidArgument unless it is a regular file reached without symlinks. */
  async openFile(name: string): Promise<{ size: number; stream: () => ReadStream; close: () => Promise<void> }> {
    const rel = safeName(name);
    let cur = this.dir;
    const parts = rel.split("/");
    for (const [i, part] of parts.entries()) {
      cur = path.join(cur, part);
      const st = await lstat(cur).catch(() => undefined);
      if (!st) throw invalidArgument(`archive member ${JSON.stringify(name)} is missing`);
      const last = i === parts.length - 1;
      if (last ? !st.isFile() : !st.isDirectory()) {
        throw invalidArgument(`archive member ${JSON.stringify(name)} is not a regular file`);
      }
    }
    const fh = await open(cur, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw invalidArgument(`archive member ${JSON.stringify(name)} is not a regular file`);
    }
    return {
      size: st.size,
      stream: () => fh.createReadStream({ start: 0, autoClose: false }),
      close: () => fh.close(),
    };
  }

  /** Reads a small member whole (capped at MAX_JSON_MEMBER). */
  async readSmall(name: string): Promise<Buffer> {
    const f = await this.openFile(name);
    try {
      if (f.size > MAX_JSON_MEMBER) throw invalidArgument(`archive member ${JSON.stringify(name)} is too large (${f.size} bytes)`);
      const chunks: Buffer[] = [];
      for await (const c of f.stream()) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    } finally {
      await f.close();
    }
  }

  /** Reads a small member and checks it against `digest` (and `size` if given): InvalidArgument on mismatch. */
  async readVerified(name: string, digest: string, size?: number): Promise<Buffer> {
    const data = await this.readSmall(name);
    const actual = sha256Digest(data);
    if (actual !== digest || (size !== undefined && data.length !== size)) {
      throw invalidArgument(
        `archive member ${JSON.stringify(name)}: unexpected content: expected ${digest} (${size ?? "?"} bytes), got ${actual} (${data.length} bytes)`,
      );
    }
    return data;
  }

  /** Removes the temp dir; idempotent. */
  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

function normalizeMember(raw: string): string {
  let n = raw;
  while (n.startsWith("./")) n = n.slice(2);
  return n;
}

/** A relative member name without empty, "." or ".." components; InvalidArgument otherwise. */
export function safeName(name: string): string {
  const n = normalizeMember(name);
  if (n === "" || n.startsWith("/") || n.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw invalidArgument(`archive member name ${JSON.stringify(name)} is not a safe relative path`);
  }
  return n;
}
