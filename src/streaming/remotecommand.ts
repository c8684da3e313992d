/**
 * The Kubernetes remote-command protocol (exec/attach) over SPDY/3.1.
 *
 * After the 101 upgrade the client opens one stream per channel, tagged with the `streamtype`
 * header (error, stdin, stdout, stderr, and with v3+ and a tty, resize). The server waits for
 * every stream the request needs, then runs the backend.
 * Version differences (client's X-Stream-Protocol-Version list, client preference wins):
 * - v4.channel.k8s.io: the status is JSON metav1.Status on the error stream.
 * - v3.channel.k8s.io: adds the resize stream; errors as plain text.
 * - v2.channel.k8s.io, channel.k8s.io: no resize stream; errors as plain text. (kubelet's v1
 *   handler also resets the error stream early, a historical quirk not reproduced here.)
 */
import type { Logger } from "../log.js";
import { runCommand, wantedStreams, type CommandRequest } from "./command-run.js";
import { ResizeQueue } from "./resize.js";
import { RstStatus } from "./spdy/frames.js";
import { SpdySession } from "./spdy/session.js";
import type { SpdyStream } from "./spdy/stream.js";
import { encodeStatusJson, encodeStatusText, type Status } from "./status.js";
import type { StreamingBackend } from "./types.js";

export const REMOTECOMMAND_SPDY_PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"] as const;

export const StreamType = { Error: "error", Stdin: "stdin", Stdout: "stdout", Stderr: "stderr", Resize: "resize" } as const;

/** Whether a protocol version opens a resize stream for a tty. */
export function supportsResize(protocol: string): boolean {
  return protocol === "v4.channel.k8s.io" || protocol === "v3.channel.k8s.io";
}

/** Whether a protocol version wants the JSON Status on the error stream. */
export function usesJsonStatus(protocol: string): boolean {
  return protocol === "v4.channel.k8s.io" || protocol === "v5.channel.k8s.io";
}

/** The stream types a request needs over SPDY, in no particular order. */
export function expectedStreamTypes(req: CommandRequest, protocol: string): string[] {
  const w = wantedStreams(req);
  const out: string[] = [StreamType.Error];
  if (w.stdin) out.push(StreamType.Stdin);
  if (w.stdout) out.push(StreamType.Stdout);
  if (w.stderr) out.push(StreamType.Stderr);
  if (w.tty && supportsResize(protocol)) out.push(StreamType.Resize);
  return out;
}

export interface SpdyCommandOptions {
  backend: StreamingBackend;
  req: CommandRequest;
  protocol: string;
  /** How long to wait for the client to open all its streams. */
  streamCreationTimeoutMs: number;
  /** Aborts when the server closes or the connection idles out. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * Serves one remote-command session on an upgraded socket. Resolves when the session is over
 * (command done and reported, client gone, or timed out); the session is closed by then.
 */
export async function serveSpdyCommand(session: SpdySession, streams: StreamInbox, o: SpdyCommandOptions): Promise<void> {
  const expected = new Set(expectedStreamTypes(o.req, o.protocol));
  const got = new Map<string, SpdyStream>();
  const ac = new AbortController();
  const signal = AbortSignal.any([ac.signal, o.signal]);
  // Any of these also ends the inbox, so a wait for streams that will never come returns.
  const onClose = () => {
    ac.abort();
    streams.end();
  };
  session.once("close", onClose);
  signal.addEventListener("abort", onClose, { once: true });
  const timer = setTimeout(onClose, o.streamCreationTimeoutMs);
  try {
    for await (const s of streams) {
      const type = (s.header("streamtype") ?? "").toLowerCase();
      if (!Object.values(StreamType).includes(type as never) || got.has(type)) {
        s.reset(RstStatus.ProtocolError);
        continue;
      }
      void s.reply().catch(() => undefined);
      if (!expected.has(type)) {
        // A stream the request did not ask for: acknowledge and leave it unused.
        s.resume();
        s.end();
        continue;
      }
      got.set(type, s);
      if (got.size === expected.size) break;
    }
    clearTimeout(timer);
    // Streams opened after the set is complete are refused rather than left unanswered.
    void (async () => {
      for await (const extra of streams) extra.reset(RstStatus.RefusedStream);
    })();
    if (got.size !== expected.size) {
      o.log.info({ protocol: o.protocol, got: [...got.keys()] }, "client did not open all remote-command streams in time");
      return;
    }
    const errorStream = got.get(StreamType.Error)!;
    // The error stream carries no client data; drain it so it cannot hold flow-control credit.
    errorStream.resume();
    let resizes: ResizeQueue | undefined;
    const resizeStream = got.get(StreamType.Resize);
    if (resizeStream) {
      const q = new ResizeQueue();
      resizeStream.on("data", (c: Buffer) => q.write(c));
      resizeStream.once("end", () => q.end());
      resizeStream.once("close", () => q.end());
      resizes = q;
    }
    const json = usesJsonStatus(o.protocol);
    await runCommand(
      o.backend,
      o.req,
      {
        stdin: got.get(StreamType.Stdin),
        stdout: got.get(StreamType.Stdout),
        stderr: got.get(StreamType.Stderr),
        resizes,
        writeStatus: async (st: Status) => {
          const body = json ? encodeStatusJson(st) : encodeStatusText(st);
          await new Promise<void>((resolve) => errorStream.end(body, () => resolve()));
        },
      },
      signal,
      o.log,
    );
    resizes?.end();
  } finally {
    clearTimeout(timer);
    session.off("close", onClose);
    signal.removeEventListener("abort", onClose);
    await session.close();
  }
}

/** Turns a SpdySession's onStream callback into an async iterable (ends with the session). */
export class StreamInbox implements AsyncIterable<SpdyStream> {
  private readonly items: SpdyStream[] = [];
  private waiter: (() => void) | undefined;
  private done = false;

  push(s: SpdyStream): void {
    this.items.push(s);
    this.wake();
  }
  end(): void {
    this.done = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<SpdyStream> {
    for (;;) {
      const s = this.items.shift();
      if (s) {
        yield s;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}
