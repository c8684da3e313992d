/**
 * Client of skiff-spawner (native/spawner.c): runs commands through a small helper process,
 * because Node's own spawn forks the whole daemon on the event loop's thread (milliseconds per
 * command at ~100-200 MiB, growing with memory). Start it early, while the daemon is small.
 *
 * One spawner per process, installed with `useSpawner` (util/exec.ts and the CNI plugin runner
 * go through it while installed, and through Node's spawn otherwise). `close()` ends the helper;
 * commands still running are reported as failed. If the helper dies, pending commands fail and
 * later ones fall back to Node's spawn.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { internal, unavailable } from "../errors.js";

export interface SpawnRequest {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  input?: Uint8Array | string;
  maxOutput: number;
  /** Own session (and process group), like Node's `detached`; kill() then hits the group. */
  session?: boolean;
}

export interface SpawnResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  pid: number;
}

interface Pending {
  resolve(r: SpawnResult): void;
  reject(e: Error): void;
  file: string;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function str(s: string | Uint8Array): Buffer[] {
  const b = typeof s === "string" ? Buffer.from(s) : Buffer.from(s.buffer, s.byteOffset, s.byteLength);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  return [len, b];
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class Spawner {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #rx: Buffer = Buffer.alloc(0);
  #dead = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout!.on("data", (b: Buffer) => this.#onData(b));
    child.stdin!.on("error", () => {});
    child.on("exit", () => this.#fail("skiff-spawner exited"));
    child.on("error", (e) => this.#fail(`skiff-spawner: ${e.message}`));
  }

  /** Starts the helper binary; resolves once it runs (rejects if it cannot be started). */
  static async start(binary: string): Promise<Spawner> {
    const child = spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", () => resolve());
      child.once("error", reject);
    });
    return new Spawner(child);
  }

  get alive(): boolean {
    return !this.#dead;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  /** Runs a command to completion; `kill` (by the returned handle) sends it a signal. */
  run(req: SpawnRequest): { done: Promise<SpawnResult>; kill(signal: NodeJS.Signals): void } {
    const id = this.#nextId++;
    const done = new Promise<SpawnResult>((resolve, reject) => {
      if (this.#dead) {
        reject(unavailable("skiff-spawner is not running"));
        return;
      }
      this.#pending.set(id, { resolve, reject, file: req.file });
    });
    if (!this.#dead) {
      const env = Object.entries(req.env)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${v}`);
      const parts: Buffer[] = [
        Buffer.from([1]),
        u32(id),
        u32(req.session ? 1 : 0),
        u32(Math.min(req.maxOutput, 0xffffffff)),
        u32(req.args.length + 1),
        ...str(req.file),
        ...req.args.flatMap((a) => str(a)),
        u32(env.length),
        ...env.flatMap((e) => str(e)),
        ...str(req.cwd ?? ""),
        ...str(req.input ?? ""),
      ];
      this.#send(parts);
    }
    return {
      done,
      kill: (signal) => {
        if (this.#dead || !this.#pending.has(id)) return;
        this.#send([Buffer.from([2]), u32(id), u32(constants.signals[signal])]);
      },
    };
  }

  #send(parts: Buffer[]): void {
    const body = Buffer.concat(parts);
    this.#child.stdin!.write(Buffer.concat([u32(body.length), body]));
  }

  #onData(b: Buffer): void {
    this.#rx = this.#rx.length ? Buffer.concat([this.#rx, b]) : b;
    while (this.#rx.length >= 4) {
      const n = this.#rx.readUInt32LE(0);
      if (this.#rx.length < 4 + n) return;
      const f = this.#rx.subarray(4, 4 + n);
      this.#rx = this.#rx.subarray(4 + n);
      let off = 0;
      const id = f.readUInt32LE(off);
      const kind = f.readUInt8((off += 4));
      const code = f.readInt32LE((off += 1));
      const sig = f.readInt32LE((off += 4));
      const pid = f.readUInt32LE((off += 4));
      off += 4;
      const take = () => {
        const len = f.readUInt32LE(off);
        const s = Buffer.from(f.subarray(off + 4, off + 4 + len));
        off += 4 + len;
        return s;
      };
      const stdout = take();
      const stderr = take();
      const error = take().toString();
      const p = this.#pending.get(id);
      if (!p) continue;
      this.#pending.delete(id);
      if (kind === 1) p.reject(internal(`${p.file}: ${error}`));
      else p.resolve({ code: code < 0 ? null : code, signal: sig ? (SIGNAL_NAMES.get(sig) ?? null) : null, stdout, stderr, pid });
    }
  }

  #fail(why: string): void {
    if (this.#dead) return;
    this.#dead = true;
    for (const p of this.#pending.values()) p.reject(unavailable(`${p.file}: ${why}`));
    this.#pending.clear();
  }

  /** Ends the helper (closing its stdin); running commands fail. Idempotent. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once("exit", r));
    this.#child.stdin!.end();
    const t = setTimeout(() => this.#child.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(t);
  }
}

let current: Spawner | undefined;

/** Installs (or with undefined, removes) the process-wide spawner. */
export function useSpawner(s: Spawner | undefined): void {
  current = s;
}

/** The installed spawner, if it still runs. */
export function activeSpawner(): Spawner | undefined {
  return current?.alive ? current : undefined;
}
