/**
 * Per-client-address token buckets for unauthenticated routes: each address may make
 * `burst` requests at once and `perSecond` on average; beyond that the route answers 429
 * with `Retry-After` without doing any work. Pure logic with an injected clock.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "./ratelimit.ts";
 * const rl = new RateLimiter({ perSecond: 5, burst: 10, now: () => Date.now() });
 * const wait = rl.take("10.0.0.7"); // 0 = go ahead, else ms until a token is available
 * ```
 * @module
 */

/** Options of {@linkcode RateLimiter}. */
export interface RateLimitOptions {
  /** Sustained requests per second per address. */
  perSecond: number;
  /** Requests allowed at once. */
  burst: number;
  /** Clock, ms. */
  now: () => number;
  /** Addresses tracked at most (oldest forgotten first; default 50,000). */
  maxAddresses?: number;
}

/** Token buckets keyed by client address. */
export class RateLimiter {
  #opts: RateLimitOptions;
  #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: RateLimitOptions) {
    this.#opts = opts;
  }

  /**
   * Take one token for `addr`: 0 when allowed, else the ms to wait.
   *
   * @example
   * ```ts ignore
   * rl.take("127.0.0.1"); // 0
   * ```
   */
  take(addr: string): number {
    const now = this.#opts.now();
    const { perSecond, burst } = this.#opts;
    let b = this.#buckets.get(addr);
    if (b) {
      b.tokens = Math.min(burst, b.tokens + (now - b.at) * perSecond / 1000);
      b.at = now;
      this.#buckets.delete(addr); // re-insert: Map order = least recently used first
    } else {
      b = { tokens: burst, at: now };
    }
    this.#buckets.set(addr, b);
    if (this.#buckets.size > (this.#opts.maxAddresses ?? 50_000)) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) * 1000 / perSecond);
  }
}
