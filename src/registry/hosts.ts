/**
 * Image references and per-registry host configuration.
 *
 * A reference names a registry ("domain"), a repository path and a tag and/or digest, normalised
 * the way Docker does: `busybox` → `docker.io/library/busybox:latest`. The registry's API host can
 * differ from its name (docker.io is served by registry-1.docker.io).
 *
 * `RegistryHosts` turns a registry name into the ordered list of endpoints to try: the configured
 * mirrors first (each with its own settings, looked up by its host), then the upstream.
 */
import { readFileSync } from "node:fs";
import { invalidArgument } from "../errors.js";
import { type Digest, parseDigest } from "../content/digest.js";

export const DOCKER_HUB = "docker.io";
export const DOCKER_HUB_HOST = "registry-1.docker.io";

export interface Reference {
  /** Registry name as written in the reference (`docker.io`, `localhost:5000`). */
  domain: string;
  /** Repository path without the domain (`library/busybox`). */
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** HTTP Basic credentials (configured per host, or given with one pull). */
export interface BasicCredentials {
  username: string;
  password: string;
}

/**
 * A registry token given with one pull (CRI AuthConfig `registry_token` / `identity_token`): sent
 * as `Authorization: Bearer <token>` to the registry itself, without the token-server round trip.
 */
export interface TokenCredentials {
  token: string;
}

export type Credentials = BasicCredentials | TokenCredentials;

export const isTokenCredentials = (c: Credentials): c is TokenCredentials => "token" in c;

/** Settings for one registry name or mirror host. */
export interface RegistryHostConfig {
  /** Registry name or `host[:port]` this entry applies to (`docker.io`, `127.0.0.1:5000`). */
  host: string;
  /** Plain HTTP instead of HTTPS. */
  insecure?: boolean;
  /** Mirrors (`host[:port]`) tried in order before the upstream; each uses its own entry's settings. */
  mirrors?: string[];
  /** PEM file with extra CA certificates for HTTPS. */
  caFile?: string;
  auth?: BasicCredentials;
}

/** One concrete place to send requests to. */
export interface Endpoint {
  /** `host[:port]` the requests go to. */
  host: string;
  /** `http://host` or `https://host`, no trailing slash. */
  baseUrl: string;
  /** Contents of the configured CA file, if any. */
  ca?: string;
  auth?: BasicCredentials;
  /** A bearer token sent on every request instead of any challenge flow (given with one pull). */
  token?: string;
  mirror: boolean;
}

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

/**
 * Parses and normalises an image reference. InvalidArgument (naming the reference) when malformed.
 * A reference with a digest keeps its tag for display; the digest is what gets pulled.
 */
export function parseReference(ref: string): Reference {
  const bad = (why: string) => invalidArgument(`invalid image reference ${JSON.stringify(ref)}: ${why}`);
  if (!ref || ref !== ref.trim()) throw bad("empty or surrounded by whitespace");
  let rest = ref;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (err) {
      throw invalidArgument(`invalid image reference ${JSON.stringify(ref)}: bad digest`, err);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`invalid tag ${JSON.stringify(tag)}`);
  }
  let domain = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first.startsWith("[")) {
      domain = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw bad(`invalid registry ${JSON.stringify(domain)}`);
  if (domain === "index.docker.io") domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  if (!repository || !repository.split("/").every((c) => PATH_COMPONENT_RE.test(c))) {
    throw bad("invalid repository name (lower-case letters, digits and separators only)");
  }
  if (domain.length + 1 + repository.length > MAX_NAME) throw bad("name too long");
  if (!tag && !digest) tag = "latest";
  const out: Reference = { domain, repository };
  if (tag) out.tag = tag;
  if (digest) out.digest = digest;
  return out;
}

/** `domain/repository[:tag][@digest]`, fully qualified. */
export function formatReference(r: Reference): string {
  return `${r.domain}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** `domain/repository` (the image name without tag or digest). */
export function referenceName(r: Reference): string {
  return `${r.domain}/${r.repository}`;
}

/** The API host serving registry `domain` (docker.io → registry-1.docker.io). */
export function registryHost(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_HOST : domain;
}

/** Resolves registry names to endpoints. Immutable after construction; CA files are read once. */
export class RegistryHosts {
  readonly #configs = new Map<string, RegistryHostConfig>();
  readonly #cas = new Map<string, string>();
  /** Credentials of one request (CRI AuthConfig) for the upstream registry; mirrors keep theirs. */
  #requestAuth: Credentials | undefined;

  constructor(configs: RegistryHostConfig[] = []) {
    for (const c of configs) {
      if (!c.host) throw invalidArgument("registry host config: host must not be empty");
      if (this.#configs.has(c.host)) throw invalidArgument(`registry host config: ${c.host} given twice`);
      this.#configs.set(c.host, c);
    }
  }

  /** These hosts, with `auth` used for the upstream registry instead of the configured one. */
  withCredentials(auth: Credentials): RegistryHosts {
    const view = new RegistryHosts([...this.#configs.values()]);
    view.#requestAuth = auth;
    return view;
  }

  config(host: string): RegistryHostConfig | undefined {
    return this.#configs.get(host);
  }

  /** Endpoints for registry `domain`: mirrors in order, then the upstream. */
  endpoints(domain: string): Endpoint[] {
    const upstreamHost = registryHost(domain);
    const cfg = this.#configs.get(domain) ?? this.#configs.get(upstreamHost);
    const out: Endpoint[] = [];
    for (const m of cfg?.mirrors ?? []) out.push(this.#endpoint(m, this.#configs.get(m), true));
    const upstream = this.#endpoint(upstreamHost, cfg, false);
    const given = this.#requestAuth;
    if (given && isTokenCredentials(given)) {
      delete upstream.auth;
      upstream.token = given.token;
    } else if (given) {
      upstream.auth = given;
    }
    out.push(upstream);
    return out;
  }

  #endpoint(host: string, cfg: RegistryHostConfig | undefined, mirror: boolean): Endpoint {
    const ep: Endpoint = { host, baseUrl: `${cfg?.insecure ? "http" : "https"}://${host}`, mirror };
    if (cfg?.caFile) ep.ca = this.#ca(cfg.caFile);
    if (cfg?.auth) ep.auth = cfg.auth;
    return ep;
  }

  #ca(file: string): string {
    let ca = this.#cas.get(file);
    if (ca === undefined) {
      try {
        // Read once per file at first use; configuration-time work, not a hot path.
        ca = readFileSync(file, "utf8");
      } catch (err) {
        throw invalidArgument(`registry CA file ${file}: ${(err as Error).message}`, err);
      }
      this.#cas.set(file, ca);
    }
    return ca;
  }
}
