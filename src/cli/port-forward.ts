/**
 * `skiff port-forward POD [LOCAL:]REMOTE…`: listens on 127.0.0.1:LOCAL and carries each accepted
 * connection to REMOTE inside the pod, through skiffd's streaming server. Each connection gets
 * its own PortForward call (the URLs are single-use) and its own WebSocket speaking
 * `portforward.k8s.io`: channel 0 carries the data, channel 1 the server's error text; the server
 * starts each channel with the port (2 bytes, little-endian), which is not data.
 *
 * `close()` stops listening and ends every forwarded connection; idempotent.
 */
import * as net from "node:net";
import { invalidArgument } from "../errors.js";
import { connectWebSocket, type WsClient } from "./ws-client.js";

export const PORTFORWARD_PROTOCOLS = ["portforward.k8s.io", "v4.channel.k8s.io"];

export interface PortMapping {
  /** 0: any free port. */
  local: number;
  remote: number;
}

/** Parses crictl's `[LOCAL:]REMOTE` (a lone port maps to itself; `:REMOTE` picks a free local one). */
export function parsePortMapping(s: string): PortMapping {
  const m = /^(?:(\d*):)?(\d+)$/.exec(s);
  const port = (v: string, allowZero: boolean) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n > 65535 || n < (allowZero ? 0 : 1)) throw invalidArgument(`port mapping "${s}": ${v} is not a port`);
    return n;
  };
  if (!m) throw invalidArgument(`port mapping "${s}": expected [LOCAL:]REMOTE, e.g. 8080:80`);
  const remote = port(m[2]!, false);
  return { local: m[1] === undefined ? remote : m[1] === "" ? 0 : port(m[1], true), remote };
}

export interface ForwarderOptions {
  /** A fresh streaming URL for the pod and `remote` (one PortForward call). */
  url: (remote: number) => Promise<string>;
  /** Problems of one connection (the listener goes on). */
  onError: (msg: string) => void;
}

export class PortForwarder {
  readonly #servers: net.Server[] = [];
  readonly #live = new Set<{ sock: net.Socket; ws?: WsClient }>();

  constructor(private readonly o: ForwarderOptions) {}

  /** Listens for every mapping; resolves with the local ports actually bound. */
  async listen(mappings: PortMapping[]): Promise<PortMapping[]> {
    const bound: PortMapping[] = [];
    for (const m of mappings) {
      const server = net.createServer((sock) => void this.#forward(sock, m.remote));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(m.local, "127.0.0.1", () => resolve());
      });
      this.#servers.push(server);
      bound.push({ local: (server.address() as net.AddressInfo).port, remote: m.remote });
    }
    return bound;
  }

  async #forward(sock: net.Socket, remote: number): Promise<void> {
    const entry: { sock: net.Socket; ws?: WsClient } = { sock };
    this.#live.add(entry);
    sock.pause();
    const done = () => {
      this.#live.delete(entry);
      sock.destroy();
      entry.ws?.close();
    };
    sock.once("close", done);
    sock.on("error", () => {});
    try {
      const url = await this.o.url(remote);
      const sep = url.includes("?") ? "&" : "?";
      const ws = await connectWebSocket(`${url}${sep}ports=${remote}`, PORTFORWARD_PROTOCOLS);
      entry.ws = ws;
      if (sock.destroyed) return done();
      const skip = [2, 2]; // the port prefix of the data and the error channel
      ws.onMessage = (m) => {
        const ch = m[0];
        if (ch !== 0 && ch !== 1) return;
        let data = m.subarray(1);
        const drop = Math.min(skip[ch]!, data.length);
        skip[ch] = skip[ch]! - drop;
        data = data.subarray(drop);
        if (!data.length) return;
        if (ch === 0) sock.write(data);
        else this.o.onError(`port ${remote}: ${data.toString().trim()}`);
      };
      ws.onClose = () => sock.end();
      sock.on("data", (d: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), d])));
      sock.once("end", () => ws.close());
      sock.resume();
    } catch (err) {
      this.o.onError(`port ${remote}: ${(err as Error).message}`);
      done();
    }
  }

  async close(): Promise<void> {
    for (const e of this.#live) {
      e.sock.destroy();
      e.ws?.destroy();
    }
    await Promise.all(this.#servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  }
}
