/**
 * Single-use tokens for streaming requests.
 *
 * Invariants:
 * - A token is 24 random bytes (192 bits) in base64url: unguessable and safe in a URL path.
 * - `consume` returns a request at most once per token; an unknown, expired and already used
 *   token are indistinguishable to the caller (all `undefined`), so the HTTP layer can answer
 *   them with one generic 404 and leak nothing.
 * - Expired entries are swept lazily on every register/consume and never outlive 2 × TTL.
 * Not safe for use from several threads; it lives on the event loop like everything else.
 */
import { randomBytes } from "node:crypto";
import type { StreamingRequest } from "./types.js";

export const DEFAULT_TOKEN_TTL_MS = 60_000;

interface Entry {
  req: StreamingRequest;
  expiresAt: number;
}

export class TokenStore {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = 0;

  constructor(
    private readonly ttlMs: number = DEFAULT_TOKEN_TTL_MS,
    /** Clock in ms; injectable so tests can expire tokens without sleeping. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores `req` under a fresh token and returns the token. */
  issue(req: StreamingRequest): string {
    this.sweep();
    let token: string;
    do token = randomBytes(24).toString("base64url");
    while (this.entries.has(token));
    this.entries.set(token, { req, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** Takes the request out; undefined for unknown, expired or used tokens alike. */
  consume(token: string): StreamingRequest | undefined {
    this.sweep();
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return e.expiresAt > this.now() ? e.req : undefined;
  }

  /** Number of live (unexpired, unused) tokens. */
  get size(): number {
    this.sweep(true);
    return this.entries.size;
  }

  private sweep(force = false): void {
    const now = this.now();
    if (!force && now - this.lastSweep < this.ttlMs) return;
    this.lastSweep = now;
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }
}
