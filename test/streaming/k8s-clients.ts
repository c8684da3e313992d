/**
 * Kubernetes remote-command and port-forward clients for tests, over the independent SPDY and
 * WebSocket clients in this directory (nothing here imports the server code).
 */
import { spdyConnect, type ClientStream, type UpgradeResult } from "./spdy-client.js";
import { wsConnect, type WsClient } from "./ws-client.js";

export interface ExecOptions {
  stdin?: Buffer | string;
  stdout?: boolean;
  stderr?: boolean;
  tty?: boolean;
  resizes?: { Width: number; Height: number }[];
  /** Keep stdin open (do not send FIN / close signal) after writing it. */
  keepStdinOpen?: boolean;
  /** SPDY only: false behaves like moby/spdystream (no flow control). */
  flowControl?: boolean;
}

export interface ExecResult {
  status: number;
  protocol: string;
  stdout: string;
  stderr: string;
  /** Raw content of the error stream / channel. */
  error: string;
  body: string;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms).unref())]);

/** Runs a remote command over SPDY the way kubectl does: error stream first, then the others. */
export async function spdyExec(url: string, protocols: string[], o: ExecOptions): Promise<ExecResult> {
  const { res, client } = await spdyConnect(url, protocols, {}, o.flowControl ?? true);
  if (!client) return { status: res.status, protocol: "", stdout: "", stderr: "", error: "", body: res.body };
  const protocol = res.headers["x-stream-protocol-version"] ?? "";
  const error = await client.openStream({ streamtype: "error" });
  let stdin: ClientStream | undefined;
  if (o.stdin !== undefined) stdin = await client.openStream({ streamtype: "stdin" });
  const stdout = o.stdout !== false ? await client.openStream({ streamtype: "stdout" }) : undefined;
  const stderr = o.stderr !== false && !o.tty ? await client.openStream({ streamtype: "stderr" }) : undefined;
  const resize = o.tty && (protocol.startsWith("v3") || protocol.startsWith("v4")) ? await client.openStream({ streamtype: "resize" }) : undefined;
  for (const r of o.resizes ?? []) await resize?.write(JSON.stringify(r));
  if (stdin) {
    if (o.keepStdinOpen) await stdin.write(o.stdin!);
    else await stdin.end(o.stdin!);
  }
  await withTimeout(error.ended, 10_000, "error stream");
  await withTimeout(Promise.all([stdout?.ended, stderr?.ended]), 10_000, "output streams");
  await withTimeout(client.close(), 5000, "close");
  return { status: 101, protocol, stdout: stdout?.text ?? "", stderr: stderr?.text ?? "", error: error.text, body: "" };
}

const b64 = (p: string) => p.includes("base64");

export function wsEncode(protocol: string, ch: number, data: Buffer): { data: Buffer; binary: boolean } {
  if (b64(protocol)) return { data: Buffer.from(String(ch) + data.toString("base64")), binary: false };
  return { data: Buffer.concat([Buffer.from([ch]), data]), binary: true };
}

export function wsDecode(protocol: string, m: Buffer): { ch: number; data: Buffer } {
  if (b64(protocol)) return { ch: m[0]! - 48, data: Buffer.from(m.subarray(1).toString(), "base64") };
  return { ch: m[0]!, data: m.subarray(1) };
}

/** Runs a remote command over WebSocket; resolves when the server closes the connection. */
export async function wsExec(url: string, protocols: string[], o: ExecOptions): Promise<ExecResult & { closeSignals: number[] }> {
  const r = await wsConnect(url, protocols);
  if (!r.client) return { status: r.status, protocol: "", stdout: "", stderr: "", error: "", body: r.body, closeSignals: [] };
  const ws: WsClient = r.client;
  const p = ws.protocol;
  const out = { 1: [] as Buffer[], 2: [] as Buffer[], 3: [] as Buffer[] };
  const closeSignals: number[] = [];
  ws.on("message", (m: { data: Buffer }) => {
    if (m.data.length === 0) return;
    if (!b64(p) && m.data[0] === 255) {
      closeSignals.push(m.data[1]!);
      return;
    }
    const d = wsDecode(p, m.data);
    if (d.ch === 1 || d.ch === 2 || d.ch === 3) out[d.ch].push(d.data);
  });
  for (const rz of o.resizes ?? []) {
    const e = wsEncode(p, 4, Buffer.from(JSON.stringify(rz)));
    ws.send(e.data, e.binary);
  }
  if (o.stdin !== undefined) {
    const e = wsEncode(p, 0, Buffer.from(o.stdin));
    // Fragmented on purpose: the server must reassemble.
    ws.send(e.data, e.binary, 3);
    if (p === "v5.channel.k8s.io" && !o.keepStdinOpen) ws.send(Buffer.from([255, 0]), true);
  }
  await withTimeout(ws.closed, 10_000, "websocket close");
  const t = (ch: 1 | 2 | 3) => Buffer.concat(out[ch]).toString();
  return { status: 101, protocol: p, stdout: t(1), stderr: t(2), error: t(3), body: "", closeSignals };
}

/** Opens one port-forward pair over an existing SPDY session and echoes `payload` through it. */
export async function spdyForwardOnce(client: import("./spdy-client.js").SpdyClient, port: number, requestId: string, payload: string): Promise<{ data: string; error: string }> {
  const error = await client.openStream({ streamtype: "error", port: String(port), requestid: requestId });
  const data = await client.openStream({ streamtype: "data", port: String(port), requestid: requestId });
  await data.end(payload);
  await withTimeout(Promise.all([data.ended, error.ended]), 10_000, `port-forward ${requestId}`);
  return { data: data.text, error: error.text };
}

export async function spdyPortForwardSession(url: string): Promise<{ res: UpgradeResult; client?: import("./spdy-client.js").SpdyClient }> {
  return spdyConnect(url, ["portforward.k8s.io"]);
}
