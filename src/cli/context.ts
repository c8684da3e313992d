/**
 * What every CRI verb shares: the resolved settings, one client per process (closed when the
 * verb ends), output streams, the error printer (`skiff: <verb>: <Code>: <message>`, exit 1),
 * and id resolution (a unique prefix of a container or pod id, as `ps` and `pods` print them).
 */
import type { Command } from "commander";
import { ContainerState } from "../gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../errors.js";
import { defaultConfig } from "../config.js";
import { CriClient, describeError } from "./client.js";
import { resolveSettings, type CliSettings } from "./settings.js";

/** The process's output, swappable in tests. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stderr is a terminal: progress is drawn there in place. */
  isTty: boolean;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  isTty: !!process.stderr.isTTY,
};

export interface GlobalFlags {
  runtimeEndpoint?: string;
  imageEndpoint?: string;
  timeout?: string;
  debug?: boolean;
  config?: string;
  /** skiffd's debug API (import, pull progress, `task` verbs). */
  debugSocket?: string;
}

export class CliContext {
  #client: CriClient | undefined;
  #settings: CliSettings | undefined;

  constructor(
    private readonly program: Command,
    readonly io: Io = processIo,
  ) {}

  async settings(): Promise<CliSettings> {
    this.#settings ??= await resolveSettings({ flags: this.program.opts<GlobalFlags>(), env: process.env });
    return this.#settings;
  }

  debugSocket(): string {
    return this.program.opts<GlobalFlags>().debugSocket ?? defaultConfig().debugSocket;
  }

  async client(): Promise<CriClient> {
    this.#client ??= new CriClient(await this.settings());
    return this.#client;
  }

  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  /**
   * Wraps a verb's action: runs it, prints any error in the CLI's one format, sets exit code 1
   * (unless the verb set another), and always closes the client.
   */
  action<A extends unknown[]>(verb: string, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    return async (...args: A) => {
      try {
        await fn(...args);
      } catch (err) {
        const socket = this.#settings?.runtimeSocket ?? "the CRI socket";
        this.io.err(`skiff: ${describeError(verb, err, socket)}\n`);
        if (this.#settings?.debug && err instanceof Error && err.stack) this.io.err(`${err.stack}\n`);
        process.exitCode = 1;
      } finally {
        this.close();
      }
    };
  }

  /** Full container ids for ids or unique prefixes; an unknown id is passed on as given. */
  async containerIds(ids: string[]): Promise<string[]> {
    if (ids.every((i) => i.length >= 64)) return ids;
    const c = await this.client();
    const all = (await c.runtime.listContainers({}, c.call())).containers.map((x) => x.id);
    return ids.map((i) => resolvePrefix(i, all, "container"));
  }

  async podIds(ids: string[]): Promise<string[]> {
    if (ids.every((i) => i.length >= 64)) return ids;
    const c = await this.client();
    const all = (await c.runtime.listPodSandbox({}, c.call())).items.map((x) => x.id);
    return ids.map((i) => resolvePrefix(i, all, "pod sandbox"));
  }
}

/** `id` itself if listed, else the one listed id it prefixes; ambiguous → InvalidArgument. */
export function resolvePrefix(id: string, all: string[], what: string): string {
  if (id === "") throw invalidArgument(`${what} id must not be empty`);
  if (all.includes(id)) return id;
  const hits = all.filter((x) => x.startsWith(id));
  if (hits.length > 1) throw invalidArgument(`${what} id prefix ${JSON.stringify(id)} is ambiguous: it matches ${hits.length} ${what}s`);
  return hits[0] ?? id;
}

export const CONTAINER_STATE_NAMES: Record<ContainerState, string> = {
  [ContainerState.CONTAINER_CREATED]: "Created",
  [ContainerState.CONTAINER_RUNNING]: "Running",
  [ContainerState.CONTAINER_EXITED]: "Exited",
  [ContainerState.CONTAINER_UNKNOWN]: "Unknown",
};

/** `running`, `Running`, `CONTAINER_RUNNING` → the state. */
export function parseContainerState(s: string): ContainerState {
  const key = s.toLowerCase().replace(/^container_/, "");
  for (const [v, name] of Object.entries(CONTAINER_STATE_NAMES)) if (name.toLowerCase() === key) return Number(v) as ContainerState;
  throw invalidArgument(`state ${JSON.stringify(s)}: use one of created, running, exited, unknown`);
}

/** Parses a non-negative integer flag; `what` names it in the error. */
export function intFlag(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw invalidArgument(`${what}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
}
