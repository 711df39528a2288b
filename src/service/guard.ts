/**
 * Containment of password and client-secret guessing: failure counters with growing
 * delays per account, per client address and per (account, address) pair. Pure logic
 * with an injected clock; the service asks {@linkcode GuessGuard.check} before it spends
 * a hash on an attempt and reports the outcome with {@linkcode GuessGuard.fail} /
 * {@linkcode GuessGuard.succeed}.
 *
 * The rules:
 * - After `freeFailures` failures a key waits `baseDelayMs · 2^(extra failures)` (capped
 *   at `maxDelayMs`) before the next attempt is looked at; attempts during the wait are
 *   refused without checking the password. A wait is a "lock" and expires by itself.
 * - Keys: `pair:<account>@<addr>` (one address guessing one account), `addr:<addr>` (one
 *   address spraying many accounts) and `account:<account>` (many addresses on one
 *   account; a higher threshold).
 * - Attempts refused by a wait are not checked and do not count. One address adds at most
 *   `pairFree` failures to an account's counter (later ones only grow its own waits), and
 *   `pairFree < accountFree`: a single address can never lock the account, so it cannot
 *   lock the user out; the user signs in from any other address meanwhile.
 * - Counters are forgotten `forgetMs` after a key's last failure; a success clears the
 *   account and pair counters, not the address counter (an attacker with an account of
 *   their own must not be able to reset their address).
 *
 * @example
 * ```ts ignore
 * import { GuessGuard } from "./guard.ts";
 * const g = new GuessGuard({ now: () => Date.now() });
 * const v = g.check("alice", "10.0.0.7");
 * if (v.allowed) { ok ? g.succeed("alice", "10.0.0.7") : g.fail("alice", "10.0.0.7"); }
 * else console.log(`retry in ${v.retryAfterMs} ms`);
 * ```
 * @module
 */

/** Tunables of {@linkcode GuessGuard}. */
export interface GuardOptions {
  /** Clock, ms. */
  now: () => number;
  /** Failures of a pair before waits start (default 3). */
  pairFree?: number;
  /** Failures of an address (over all accounts) before waits start (default 10). */
  addrFree?: number;
  /** Failures of an account (from all addresses) before waits start (default 20). */
  accountFree?: number;
  /** First wait (default 1 s). */
  baseDelayMs?: number;
  /** Longest wait (default 15 min). */
  maxDelayMs?: number;
  /** A key's counter is dropped this long after its last failure (default 1 h). */
  forgetMs?: number;
}

/** The verdict of {@linkcode GuessGuard.check}. */
export type GuardVerdict =
  | { allowed: true }
  | { allowed: false; retryAfterMs: number; key: string };

/** A key currently waiting, for `service status`. */
export interface LockInfo {
  /** `account:…`, `addr:…` or `pair:…`. */
  key: string;
  /** Failures counted. */
  failures: number;
  /** When the wait ends (ISO). */
  until: string;
}

const _MAX_KEYS = 100_000;

interface _State {
  failures: number;
  until: number;
  last: number;
}

/** Failure counters and waits; see the module documentation. */
export class GuessGuard {
  #opts: Required<GuardOptions>;
  #keys = new Map<string, _State>();

  constructor(opts: GuardOptions) {
    this.#opts = {
      pairFree: 3,
      addrFree: 10,
      accountFree: 20,
      baseDelayMs: 1000,
      maxDelayMs: 15 * 60_000,
      forgetMs: 3600_000,
      ...opts,
    };
  }

  #keysOf(account: string, addr: string): [string, number][] {
    return [
      [`pair:${account}@${addr}`, this.#opts.pairFree],
      [`addr:${addr}`, this.#opts.addrFree],
      [`account:${account}`, this.#opts.accountFree],
    ];
  }

  #state(key: string, now: number): _State | undefined {
    const s = this.#keys.get(key);
    if (s && now - s.last > this.#opts.forgetMs && s.until <= now) {
      this.#keys.delete(key);
      return undefined;
    }
    return s;
  }

  /**
   * May an attempt for `account` from `addr` be checked now?
   *
   * @example
   * ```ts ignore
   * g.check("alice", "127.0.0.1"); // { allowed: true }
   * ```
   */
  check(account: string, addr: string): GuardVerdict {
    const now = this.#opts.now();
    let worst: GuardVerdict = { allowed: true };
    for (const [key] of this.#keysOf(account, addr)) {
      const s = this.#state(key, now);
      if (s && s.until > now) {
        const wait = s.until - now;
        if (worst.allowed || wait > worst.retryAfterMs) {
          worst = { allowed: false, retryAfterMs: wait, key };
        }
      }
    }
    return worst;
  }

  /**
   * Count a failed attempt (one that {@linkcode check} allowed).
   *
   * @example
   * ```ts ignore
   * g.fail("alice", "127.0.0.1");
   * ```
   */
  fail(account: string, addr: string): void {
    const now = this.#opts.now();
    // An address already past its free failures on this account adds nothing more to the
    // account's counter: one address alone can never lock the account.
    const pairFailures = this.#state(`pair:${account}@${addr}`, now)?.failures ?? 0;
    for (const [key, free] of this.#keysOf(account, addr)) {
      if (key.startsWith("account:") && pairFailures >= this.#opts.pairFree) continue;
      const s = this.#state(key, now) ?? { failures: 0, until: 0, last: now };
      s.failures++;
      s.last = now;
      if (s.failures >= free) {
        const extra = s.failures - free;
        const delay = Math.min(
          this.#opts.maxDelayMs,
          this.#opts.baseDelayMs * 2 ** Math.min(extra, 40),
        );
        s.until = Math.max(s.until, now + delay);
      }
      this.#keys.delete(key); // re-inserted: Map order = least recently failed first
      this.#keys.set(key, s);
    }
    this.#sweep(now);
  }

  /**
   * A successful attempt: clears the account and pair counters.
   *
   * @example
   * ```ts ignore
   * g.succeed("alice", "127.0.0.1");
   * ```
   */
  succeed(account: string, addr: string): void {
    this.#keys.delete(`pair:${account}@${addr}`);
    this.#keys.delete(`account:${account}`);
  }

  /**
   * Keys that are waiting now, longest wait first.
   *
   * @example
   * ```ts ignore
   * g.locks(); // [{ key: "pair:alice@10.0.0.7", failures: 5, until: "..." }]
   * ```
   */
  locks(): LockInfo[] {
    const now = this.#opts.now();
    const out: (LockInfo & { u: number })[] = [];
    for (const [key, s] of this.#keys) {
      if (s.until > now) {
        out.push({ key, failures: s.failures, until: new Date(s.until).toISOString(), u: s.until });
      }
    }
    return out.sort((a, b) => b.u - a.u).map(({ u: _u, ...rest }) => rest);
  }

  #sweep(now: number): void {
    if (this.#keys.size < 10_000) return;
    for (const [key] of this.#keys) this.#state(key, now);
    // bounded memory under a spray of made-up names: the oldest keys go first
    for (const [key] of this.#keys) {
      if (this.#keys.size <= _MAX_KEYS) break;
      this.#keys.delete(key);
    }
  }
}
