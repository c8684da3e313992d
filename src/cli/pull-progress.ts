/**
 * Progress of `skiff pull`. CRI's PullImage is a single unary call that says nothing until the
 * image is there, so progress comes from the side: skiffd's debug API lists the content store's
 * ingests in flight (one per blob being downloaded, with bytes written and expected size), and
 * this polls it. What is shown is therefore exactly "bytes of this blob on skiffd's disk", for
 * every pull in flight on that daemon; a blob that leaves the list was committed.
 *
 * Without the debug socket (another host's daemon, no permission) only a spinner and the elapsed
 * time are shown, and the bars are not faked. On a non-TTY: plain lines, one per blob seen.
 */
import { humanSize } from "./format.js";
import type { Io } from "./context.js";

export interface Ingest {
  ref: string;
  offset: number;
  size?: number;
  digest?: string;
}

interface Layer {
  digest: string;
  offset: number;
  size?: number;
  done: boolean;
}

const BAR = 30;
const SPIN = ["|", "/", "-", "\\"];

/** One line per blob: short digest, a bar when the size is known, bytes so far. */
export function renderLayers(layers: Layer[]): string[] {
  return layers.map((l) => {
    const id = l.digest.replace(/^sha256:/, "").slice(0, 12);
    if (l.done) return `${id}: done${l.size !== undefined ? ` ${humanSize(l.size)}` : ""}`;
    if (l.size === undefined || l.size <= 0) return `${id}: downloading ${humanSize(l.offset)}`;
    const frac = Math.min(1, l.offset / l.size);
    const fill = Math.round(frac * BAR);
    return `${id}: [${"=".repeat(Math.max(0, fill - 1))}${fill > 0 ? ">" : ""}${" ".repeat(BAR - fill)}] ${humanSize(l.offset)}/${humanSize(l.size)}`;
  });
}

/**
 * Tracks ingests named `pull-<digest>` across polls: new ones are added, vanished ones marked done.
 * Returns the blobs first seen in this poll (for the plain-line mode).
 */
export function updateLayers(layers: Map<string, Layer>, ingests: Ingest[]): Layer[] {
  const fresh: Layer[] = [];
  const live = new Set<string>();
  for (const i of ingests) {
    if (!i.ref.startsWith("pull-")) continue;
    const digest = i.digest ?? i.ref.slice("pull-".length);
    live.add(digest);
    const l = layers.get(digest);
    if (l) {
      l.offset = i.offset;
      l.size = i.size ?? l.size;
    } else {
      const n = { digest, offset: i.offset, ...(i.size !== undefined ? { size: i.size } : {}), done: false };
      layers.set(digest, n);
      fresh.push(n);
    }
  }
  for (const l of layers.values()) if (!live.has(l.digest) && !l.done) l.done = true;
  return fresh;
}

/** Shows progress until `stop()` (which draws the last state). */
export class PullProgress {
  readonly #layers = new Map<string, Layer>();
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;
  #tick = 0;
  #polling = false;
  readonly #started = Date.now();

  constructor(
    private readonly io: Io,
    private readonly ref: string,
    /** Lists ingests; undefined when the debug API cannot be reached (spinner only). */
    private readonly poll: (() => Promise<Ingest[]>) | undefined,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    if (!this.io.isTty) this.io.err(`Pulling ${this.ref}\n`);
    this.#timer = setInterval(() => void this.#step(), this.intervalMs);
  }

  async #step(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      let fresh: Layer[] = [];
      if (this.poll) fresh = updateLayers(this.#layers, await this.poll().catch(() => []));
      if (this.io.isTty) this.#draw();
      else for (const l of fresh) this.io.err(`${l.digest}: downloading${l.size !== undefined ? ` ${humanSize(l.size)}` : ""}\n`);
    } finally {
      this.#polling = false;
    }
  }

  #draw(final = false): void {
    const secs = Math.floor((Date.now() - this.#started) / 1000);
    const head = final ? `Pulled ${this.ref} (${secs}s)` : `${SPIN[this.#tick++ % SPIN.length]} Pulling ${this.ref} (${secs}s)`;
    const lines = [head, ...renderLayers([...this.#layers.values()])];
    if (!this.poll && !final) lines.push("  (per-layer progress needs skiffd's debug socket; see --debug-socket)");
    // Redraw in place: up over what was drawn last time, clearing each line.
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    this.io.err(`${up}${lines.map((l) => `\x1b[2K${l}\n`).join("")}`);
    this.#drawn = lines.length;
  }

  /** Stops polling; `ok` draws the finished state (TTY) so every known blob reads done. */
  stop(ok: boolean): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.io.isTty) return;
    if (ok) for (const l of this.#layers.values()) l.done = true;
    if (ok) this.#draw(true);
    else if (this.#drawn > 0) this.io.err("\n");
  }
}
