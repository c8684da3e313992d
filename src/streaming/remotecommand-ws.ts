/**
 * The Kubernetes remote-command protocol (exec/attach) over WebSocket ("channel" protocols).
 *
 * Every message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize.
 * - v5.channel.k8s.io: binary; adds the close signal, a message [255, channel] that half-closes
 *   a channel (the client uses it to end stdin).
 * - v4.channel.k8s.io / channel.k8s.io: binary; v4 writes a JSON metav1.Status on channel 3,
 *   the old one plain text.
 * - base64 variants (base64.channel.k8s.io, v4.base64.channel.k8s.io): text messages whose
 *   channel is the ASCII digit and whose payload is base64.
 * Query parameters (stdin=1, tty=1, ...) are informative only: the stored request decides.
 */
import { PassThrough, Writable } from "node:stream";
import type { Logger } from "../log.js";
import { runCommand, wantedStreams, type CommandRequest } from "./command-run.js";
import { ResizeQueue } from "./resize.js";
import { encodeStatusJson, encodeStatusText } from "./status.js";
import type { StreamingBackend } from "./types.js";
import type { WsConnection } from "./ws/connection.js";

export const REMOTECOMMAND_WS_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v4.base64.channel.k8s.io",
  "channel.k8s.io",
  "base64.channel.k8s.io",
] as const;

export const Channel = { Stdin: 0, Stdout: 1, Stderr: 2, Error: 3, Resize: 4, Close: 255 } as const;

export function isBase64Protocol(p: string): boolean {
  return p.includes("base64");
}

/** Encodes one outgoing channel message for the negotiated protocol. */
export function encodeChannelMessage(protocol: string, channel: number, data: Buffer): { data: Buffer; binary: boolean } {
  if (isBase64Protocol(protocol)) {
    return { data: Buffer.from(String.fromCharCode(48 + channel) + data.toString("base64"), "latin1"), binary: false };
  }
  return { data: Buffer.concat([Buffer.from([channel]), data]), binary: true };
}

/** Decodes one incoming message into channel and payload; undefined for an empty message. */
export function decodeChannelMessage(protocol: string, msg: Buffer): { channel: number; data: Buffer } | undefined {
  if (msg.length === 0) return undefined;
  if (isBase64Protocol(protocol)) {
    return { channel: msg[0]! - 48, data: Buffer.from(msg.subarray(1).toString("latin1"), "base64") };
  }
  return { channel: msg[0]!, data: msg.subarray(1) };
}

/** A Writable that turns every chunk into one channel message. */
export class ChannelWriter extends Writable {
  constructor(private readonly ws: WsConnection, private readonly channel: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const m = encodeChannelMessage(this.ws.protocol, this.channel, chunk);
    this.ws.send(m.data, m.binary).then(() => cb(), cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    // Only v5 can tell the client a channel is done; older protocols just stop sending.
    if (this.ws.protocol === "v5.channel.k8s.io") {
      this.ws.send(Buffer.from([Channel.Close, this.channel]), true).then(() => cb(), cb);
    } else cb();
  }
}

export interface WsCommandOptions {
  backend: StreamingBackend;
  req: CommandRequest;
  signal: AbortSignal;
  log: Logger;
}

/** Serves one remote-command session on an accepted WebSocket; resolves once it is closed. */
export async function serveWsCommand(ws: WsConnection, o: WsCommandOptions): Promise<void> {
  const w = wantedStreams(o.req);
  const ac = new AbortController();
  const signal = AbortSignal.any([ac.signal, o.signal]);
  const stdin = w.stdin ? new PassThrough() : undefined;
  const resizes = w.tty ? new ResizeQueue() : undefined;
  const onClose = () => {
    ac.abort();
    stdin?.end();
    resizes?.end();
  };
  ws.once("close", onClose);
  ws.on("message", (msg: Buffer) => {
    const m = decodeChannelMessage(ws.protocol, msg);
    if (!m) return;
    if (m.channel === Channel.Stdin) stdin?.write(m.data);
    else if (m.channel === Channel.Resize) resizes?.write(m.data);
    else if (m.channel === Channel.Close && ws.protocol === "v5.channel.k8s.io" && m.data[0] === Channel.Stdin) stdin?.end();
  });
  const json = ws.protocol.startsWith("v4.") || ws.protocol.startsWith("v5.");
  try {
    await runCommand(
      o.backend,
      o.req,
      {
        stdin,
        stdout: w.stdout ? new ChannelWriter(ws, Channel.Stdout) : undefined,
        stderr: w.stderr ? new ChannelWriter(ws, Channel.Stderr) : undefined,
        resizes,
        writeStatus: async (st) => {
          const body = json ? encodeStatusJson(st) : encodeStatusText(st);
          if (body.length === 0) return;
          const m = encodeChannelMessage(ws.protocol, Channel.Error, body);
          await ws.send(m.data, m.binary);
        },
      },
      signal,
      o.log,
    );
  } finally {
    ws.off("close", onClose);
    onClose();
    await ws.close(1000);
  }
}
