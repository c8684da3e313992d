/**
 * `exec -i` / `-t`: the CRI Exec RPC returns a single-use URL on skiffd's streaming server; this
 * connects to it over WebSocket with the Kubernetes channel protocol (v5.channel.k8s.io, else
 * v4): each binary message starts with its channel — 0 stdin, 1 stdout, 2 stderr, 3 the final
 * metav1.Status as JSON, 4 terminal size as JSON `{"Width","Height"}`; v5's `[255, 0]` closes
 * stdin. The exit code comes from the status (`NonZeroExitCode` carries it in its `ExitCode` cause).
 */
import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { failedPrecondition } from "../errors.js";
import type { CriClient } from "./client.js";
import { isUnimplementedError } from "./client.js";
import type { Io } from "./context.js";
import { connectWebSocket, type WsClient } from "./ws-client.js";

export const CHANNEL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

interface Status {
  status?: string;
  message?: string;
  reason?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

/** The exit code a final status stands for; `message` set when it is a failure to report. */
export function exitFromStatus(s: Status | undefined): { code: number; message?: string } {
  if (!s || s.status === "Success") return { code: 0 };
  if (s.reason === "NonZeroExitCode") {
    const cause = s.details?.causes?.find((c) => c.reason === "ExitCode");
    const n = Number(cause?.message);
    if (Number.isInteger(n)) return { code: n };
  }
  return { code: 1, message: s.message ?? "remote command failed" };
}

export interface StreamIo extends Io {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** Terminal size now, and a way to hear about changes (absent off a terminal). */
  terminal?: { size: () => { columns: number; rows: number }; onResize: (fn: () => void) => () => void };
}

/** Runs `cmd` in the container with streams attached; resolves its exit code. */
export async function execStreaming(c: CriClient, io: StreamIo, id: string, cmd: string[], opts: { stdin: boolean; tty: boolean }): Promise<number> {
  const url = await streamingUrl("interactive exec", () =>
    c.runtime.exec({ containerId: id, cmd, tty: opts.tty, stdin: opts.stdin, stdout: true, stderr: !opts.tty }, c.call()),
  );
  return pump(await connectWebSocket(url, CHANNEL_PROTOCOLS), io, opts);
}

/**
 * Attaches to a running container's stdio (its own terminal with `tty`); resolves when the
 * attach ends: the container exited, or stdin ended (for a container with stdin_once), or the
 * user left (Ctrl-C; the container goes on). Resolves 0, or 1 with an error on the way.
 */
export async function attachStreaming(c: CriClient, io: StreamIo, id: string, opts: { stdin: boolean; tty: boolean }): Promise<number> {
  const url = await streamingUrl("attach", () =>
    c.runtime.attach({ containerId: id, tty: opts.tty, stdin: opts.stdin, stdout: true, stderr: !opts.tty }, c.call()),
  );
  return pump(await connectWebSocket(url, CHANNEL_PROTOCOLS), io, opts);
}

/** The URL an Exec/Attach/PortForward call returns; a daemon without streaming is said plainly. */
export async function streamingUrl(what: string, rpc: () => Promise<{ url: string }>): Promise<string> {
  try {
    return (await rpc()).url;
  } catch (err) {
    if (isUnimplementedError(err)) throw failedPrecondition(`${what} needs the streaming server: this skiffd does not implement it`, err);
    if (err instanceof ConnectError && err.code === Code.Unavailable && /streaming/i.test(err.rawMessage)) {
      throw failedPrecondition(`${what} needs the streaming server: ${err.rawMessage}`, err);
    }
    throw err;
  }
}

function pump(ws: WsClient, io: StreamIo, opts: { stdin: boolean; tty: boolean }): Promise<number> {
  let status: Status | undefined;
  const undo: (() => void)[] = [];
  ws.onMessage = (m) => {
    if (m.length === 0) return;
    const data = m.subarray(1);
    if (m[0] === 1) io.out(data.toString());
    else if (m[0] === 2) io.err(data.toString());
    else if (m[0] === 3) {
      try {
        status = JSON.parse(data.toString()) as Status;
      } catch {
        status = { status: "Failure", message: data.toString() };
      }
    }
  };
  const sendResize = () => {
    const s = io.terminal!.size();
    ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: s.columns, Height: s.rows }))]));
  };
  if (opts.tty && io.terminal) {
    sendResize();
    undo.push(io.terminal.onResize(sendResize));
  }
  if (opts.stdin) {
    const raw = opts.tty && io.stdin.isTTY && io.stdin.setRawMode;
    if (raw) {
      io.stdin.setRawMode!(true);
      undo.push(() => io.stdin.setRawMode!(false));
    }
    const onData = (d: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), d]));
    // End of our stdin: v5 can say so (the command sees EOF); v4 cannot, the stream stays open.
    const onEnd = () => {
      if (ws.protocol.startsWith("v5.")) ws.send(Buffer.from([255, 0]));
    };
    io.stdin.on("data", onData);
    io.stdin.once("end", onEnd);
    io.stdin.resume();
    undo.push(() => {
      io.stdin.off("data", onData);
      io.stdin.off("end", onEnd);
      io.stdin.pause();
    });
  }
  return new Promise((resolve) => {
    ws.onClose = () => {
      for (const u of undo.reverse()) u();
      const r = exitFromStatus(status);
      if (r.message) io.err(`${r.message}\n`);
      resolve(r.code);
    };
  });
}
