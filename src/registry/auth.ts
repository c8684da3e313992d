/**
 * Registry authentication (distribution spec token auth and HTTP Basic).
 *
 * A request is first sent with whatever the endpoint is known to want (a cached bearer token for
 * the repository's pull scope, or Basic credentials). On 401 the `WWW-Authenticate` challenge is
 * parsed: `Bearer realm=…,service=…,scope=…` → a token is fetched from the realm (with Basic
 * credentials if configured) and cached per host and scope until it expires; `Basic` → the
 * configured credentials are sent. The request is then retried once. An endpoint carrying a `token`
 * (from a pull's CRI AuthConfig) sends it as `Bearer` on every request instead, and a 401 then
 * fails at once.
 *
 * Authentication failures are SkiffErrors with code FailedPrecondition (skiff adds no error code
 * for them; gRPC maps it to FAILED_PRECONDITION) and a message starting `unauthorized:` that names
 * the registry and repository. Safe to use concurrently.
 */
import { failedPrecondition, invalidArgument, unavailable } from "../errors.js";
import { readBody, request, type Response } from "./client.js";
import type { BasicCredentials, Endpoint } from "./hosts.js";

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header into its challenges (scheme lower-cased). */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  // A bare token starts a new challenge; `key=value` / `key="quoted"` pairs belong to the last one.
  const re = /([\w.~+/-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*)))?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(header)) !== null) {
    const [, name, quoted, plain] = m;
    if (quoted === undefined && plain === undefined) {
      out.push({ scheme: name!.toLowerCase(), params: {} });
      continue;
    }
    const cur = out[out.length - 1];
    if (cur) cur.params[name!.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : plain!;
  }
  return out;
}

export function unauthorized(ep: Endpoint, repository: string, detail: string) {
  return failedPrecondition(`unauthorized: registry ${ep.host} repository ${repository}: ${detail}`);
}

function basic(c: BasicCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

interface HostAuth {
  scheme: "bearer" | "basic";
  realm?: string;
  service?: string;
}

export interface AuthorizedRequest {
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class Authorizer {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #hosts = new Map<string, HostAuth>();
  readonly #now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Sends `GET|HEAD <ep.baseUrl><path>` for `repository` with authentication. Returns any non-401
   * response (the caller owns its body); throws `unauthorized:` if authentication fails.
   */
  async fetch(ep: Endpoint, repository: string, path: string, opts: AuthorizedRequest = {}): Promise<Response> {
    const url = `${ep.baseUrl}${path}`;
    const send = async (authz: string | undefined) => {
      const headers = { ...opts.headers };
      if (authz) headers.authorization = authz;
      return request(url, { method: opts.method, headers, signal: opts.signal, ca: ep.ca });
    };
    const scope = `repository:${repository}:pull`;
    // A token given with the pull is the whole authentication: no challenge, no token server.
    const token = ep.token;
    let res = await send(token !== undefined ? `Bearer ${token}` : this.#known(ep, scope));
    if (res.status !== 401) return checkForbidden(res, ep, repository);
    res.body.resume();
    if (token !== undefined) throw unauthorized(ep, repository, "bearer token rejected");
    const challenges = parseWwwAuthenticate(String(res.headers["www-authenticate"] ?? ""));
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basicCh = challenges.find((c) => c.scheme === "basic");
    let authz: string;
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) throw unauthorized(ep, repository, "bearer challenge without realm");
      const host: HostAuth = { scheme: "bearer", realm };
      if (bearer.params.service !== undefined) host.service = bearer.params.service;
      this.#hosts.set(ep.host, host);
      const tokenScope = bearer.params.scope ?? scope;
      authz = `Bearer ${await this.#fetchToken(ep, repository, host, tokenScope, opts.signal)}`;
    } else if (basicCh) {
      if (!ep.auth) throw unauthorized(ep, repository, "registry requires credentials and none are configured");
      this.#hosts.set(ep.host, { scheme: "basic" });
      authz = basic(ep.auth);
    } else {
      throw unauthorized(ep, repository, "401 without a supported WWW-Authenticate challenge");
    }
    res = await send(authz);
    if (res.status === 401) {
      res.body.resume();
      this.#forget(ep.host);
      throw unauthorized(ep, repository, ep.auth ? "credentials rejected" : "access denied (no credentials configured)");
    }
    return checkForbidden(res, ep, repository);
  }

  #known(ep: Endpoint, scope: string): string | undefined {
    const h = this.#hosts.get(ep.host);
    if (h?.scheme === "basic" && ep.auth) return basic(ep.auth);
    if (h?.scheme === "bearer") {
      const key = `${ep.host} ${scope}`;
      const t = this.#tokens.get(key);
      if (t && t.expiresAt > this.#now()) return `Bearer ${t.token}`;
      if (t) this.#tokens.delete(key);
    }
    return undefined;
  }

  #forget(host: string): void {
    for (const k of this.#tokens.keys()) if (k.startsWith(`${host} `)) this.#tokens.delete(k);
  }

  async #fetchToken(ep: Endpoint, repository: string, h: HostAuth, scope: string, signal?: AbortSignal): Promise<string> {
    let u: URL;
    try {
      u = new URL(h.realm!);
    } catch (err) {
      throw invalidArgument(`registry ${ep.host}: invalid token realm ${JSON.stringify(h.realm)}`, err);
    }
    if (h.service !== undefined) u.searchParams.set("service", h.service);
    u.searchParams.set("scope", scope);
    const headers: Record<string, string> = { accept: "application/json" };
    if (ep.auth) headers.authorization = basic(ep.auth);
    const res = await request(u.href, { headers, signal, ca: ep.ca });
    const body = await readBody(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw unauthorized(ep, repository, `token server ${u.host} refused ${ep.auth ? "the credentials" : "anonymous access"} (HTTP ${res.status})`);
    }
    if (res.status !== 200) throw unavailable(`registry ${ep.host}: token server ${u.host} answered HTTP ${res.status}`);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch (err) {
      throw unavailable(`registry ${ep.host}: token server ${u.host} sent invalid JSON`, err);
    }
    const token = typeof parsed.token === "string" && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== "string" || !token) throw unavailable(`registry ${ep.host}: token server ${u.host} sent no token`);
    const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    // Refresh 10% early so a token never expires between the check and the request.
    this.#tokens.set(`${ep.host} ${scope}`, { token, expiresAt: this.#now() + expiresIn * 900 });
    return token;
  }
}

function checkForbidden(res: Response, ep: Endpoint, repository: string): Response {
  if (res.status === 403) {
    res.body.resume();
    throw unauthorized(ep, repository, "access forbidden (HTTP 403)");
  }
  return res;
}
