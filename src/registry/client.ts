/**
 * Minimal HTTP(S) client for registry traffic on node:http/https.
 *
 * - Connections are reused through keep-alive agents (one per CA bundle for HTTPS).
 * - Redirects (301/302/303/307/308) are followed, at most 10; the Authorization header is dropped
 *   when a redirect leaves the original host (blob downloads are redirected to storage backends
 *   that would reject, or leak, registry credentials).
 * - Every request takes a `signal`; aborting destroys the socket.
 *
 * The caller owns the returned response body: it must consume it or call `res.destroy()`.
 */
import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import type { IncomingMessage } from "node:http";
import { internal, invalidArgument, unavailable } from "../errors.js";
import { abortError } from "../util/signal.js";

export interface RequestOptions {
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** PEM CA bundle for HTTPS (in addition to the system roots). */
  ca?: string;
  maxRedirects?: number;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Final URL after redirects. */
  url: string;
  body: IncomingMessage;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgents = new Map<string, https.Agent>();

function agentFor(url: URL, ca: string | undefined): http.Agent {
  if (url.protocol === "http:") return httpAgent;
  const key = ca ?? "";
  let a = httpsAgents.get(key);
  if (!a) {
    // `ca` replaces the default roots, so pass them along with the configured bundle.
    a = new https.Agent({ keepAlive: true, maxSockets: 16, ...(ca ? { ca: [...tls.rootCertificates, ca] } : {}) });
    httpsAgents.set(key, a);
  }
  return a;
}

/** Closes idle pooled connections (tests, shutdown). Requests in flight are not affected. */
export function closeIdleConnections(): void {
  httpAgent.destroy();
  for (const a of httpsAgents.values()) a.destroy();
  httpsAgents.clear();
}

function once(url: URL, opts: RequestOptions, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : http;
    const req = mod.request(url, {
      method: opts.method ?? "GET",
      headers,
      agent: agentFor(url, opts.ca),
      signal: opts.signal,
    });
    req.once("response", resolve);
    req.once("error", (err) => {
      if (opts.signal?.aborted) reject(abortError(opts.signal, `${opts.method ?? "GET"} ${url.href}`));
      else reject(unavailable(`${opts.method ?? "GET"} ${url.href}: ${err.message}`, err));
    });
    req.end();
  });
}

/** Sends one request, following redirects. Network failures are Unavailable; aborts keep their code. */
export async function request(urlStr: string, opts: RequestOptions = {}): Promise<Response> {
  let url: URL;
  try {
    url = new URL(urlStr);
  } catch (err) {
    throw invalidArgument(`invalid URL ${urlStr}`, err);
  }
  const origin = url.host;
  const max = opts.maxRedirects ?? 10;
  let headers = { ...opts.headers };
  for (let hop = 0; ; hop++) {
    const res = await once(url, opts, headers);
    const status = res.statusCode ?? 0;
    const loc = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(status) || !loc) {
      return { status, headers: res.headers, url: url.href, body: res };
    }
    res.resume(); // drain so the socket goes back to the pool
    if (hop >= max) throw internal(`${url.href}: more than ${max} redirects`);
    url = new URL(loc, url);
    if (url.host !== origin && headers.authorization !== undefined) {
      headers = { ...headers };
      delete headers.authorization;
    }
  }
}

/** Reads a whole (small) body, failing if it exceeds `limit` bytes. */
export async function readBody(res: Response, limit = 8 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) {
      res.body.destroy();
      throw invalidArgument(`${res.url}: response larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
