/**
 * The service's defences against hostile traffic in one object handed to the HTTP layer
 * and the auth server: guessing limits for passwords and client secrets
 * ({@linkcode GuessGuard}), the off-thread bounded password hasher
 * ({@linkcode PasswordHasher}), per-address request-rate limits of unauthenticated routes
 * ({@linkcode RateLimiter}), CSRF tokens ({@linkcode CsrfGuard}) and the audit trail.
 * Current waits are mirrored to `service/locks.json` for `service status`.
 *
 * @example
 * ```ts ignore
 * import { Shield } from "./shield.ts";
 * const shield = new Shield({ dir: servicePaths(home).dir, audit });
 * const wait = shield.limitRoute("signin", "10.0.0.7"); // 0 or ms to wait (answer 429)
 * ```
 * @module
 */
import { join } from "node:path";
import { type Auditor, NO_AUDIT } from "./audit.ts";
import { type GuardOptions, GuessGuard, type LockInfo } from "./guard.ts";
import { type HasherOptions, PasswordHasher } from "./hasher.ts";
import { CsrfGuard } from "./page_security.ts";
import { RateLimiter } from "./ratelimit.ts";

/** File (in the service directory) listing the current waits. */
export const LOCKS_FILE = "locks.json";

/** Route classes with their own rate limits. */
export type RouteClass = "signin" | "public";

/** Options of {@linkcode Shield}. */
export interface ShieldOptions {
  /** Service directory (for `locks.json`); none = do not mirror. */
  dir?: string;
  /** Audit trail. */
  audit?: Auditor;
  /** Clock, ms. */
  now?: () => number;
  /** Guessing limits (both guards). */
  guard?: Partial<Omit<GuardOptions, "now">>;
  /** Hasher bounds. */
  hasher?: HasherOptions;
  /** Requests/s and burst per address of the sign-in routes (default 5/s, 20). */
  signinRate?: { perSecond: number; burst: number };
  /** Requests/s and burst per address of other unauthenticated routes (default 20/s, 60). */
  publicRate?: { perSecond: number; burst: number };
  /** The service serves HTTPS (pages add HSTS). */
  tls?: boolean;
  /** Longest hold of a rate-limited reply (default 1 s; 0 = answer at once). */
  tarpitMs?: number;
  /** Rate-limited replies held at most at once; more are answered at once (default 512). */
  tarpitMax?: number;
}

/** The contents of `locks.json`. */
export interface LocksFile {
  /** When written (ISO). */
  written: string;
  /** Waiting sign-in keys (`account:`, `addr:`, `pair:`). */
  users: LockInfo[];
  /** Waiting client-secret keys. */
  clients: LockInfo[];
}

/** Defences shared by the HTTP routes; see the module documentation. */
export class Shield {
  /** Password guessing limits (account = user name). */
  readonly users: GuessGuard;
  /** Client-secret guessing limits (account = client id). */
  readonly clients: GuessGuard;
  /** The bounded off-thread hasher. */
  readonly hasher: PasswordHasher;
  /** CSRF tokens of the login form. */
  readonly csrf: CsrfGuard;
  /** Audit trail. */
  readonly audit: Auditor;
  /** The service serves HTTPS. */
  tls: boolean;
  #limits: Record<RouteClass, RateLimiter>;
  #dir?: string;
  #now: () => number;
  #writeTimer?: ReturnType<typeof setTimeout>;
  #tarpitMs: number;
  #tarpitMax: number;
  #held = 0;

  constructor(opts: ShieldOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.users = new GuessGuard({ ...opts.guard, now: this.#now });
    this.clients = new GuessGuard({ ...opts.guard, now: this.#now });
    this.hasher = new PasswordHasher(opts.hasher);
    this.csrf = new CsrfGuard();
    this.audit = opts.audit ?? NO_AUDIT;
    this.tls = opts.tls ?? false;
    this.#dir = opts.dir;
    this.#tarpitMs = opts.tarpitMs ?? 1000;
    this.#tarpitMax = opts.tarpitMax ?? 512;
    this.#limits = {
      signin: new RateLimiter({ perSecond: 5, burst: 20, ...opts.signinRate, now: this.#now }),
      public: new RateLimiter({ perSecond: 20, burst: 60, ...opts.publicRate, now: this.#now }),
    };
  }

  /**
   * Take a request of class `cls` from `addr`: 0 = serve it, else ms to wait (429).
   *
   * @example
   * ```ts ignore
   * shield.limitRoute("public", "127.0.0.1"); // 0
   * ```
   */
  limitRoute(cls: RouteClass, addr: string): number {
    return this.#limits[cls].take(addr);
  }

  /**
   * Hold a rate-limited reply for up to `waitMs` (at most the tarpit time) before it is
   * sent: a client flooding in a loop then makes about one request a second per
   * connection instead of thousands, so the flood costs the service (and the machine)
   * almost nothing. At most `tarpitMax` replies are held; beyond that they go at once.
   *
   * @example
   * ```ts ignore
   * await shield.hold(wait); return tooManyRequests(wait);
   * ```
   */
  async hold(waitMs: number): Promise<void> {
    const ms = Math.min(waitMs, this.#tarpitMs);
    if (ms <= 0 || this.#held >= this.#tarpitMax) return;
    this.#held++;
    try {
      await new Promise((r) => setTimeout(r, ms));
    } finally {
      this.#held--;
    }
  }

  /** The current waits (what `locks.json` holds). */
  locks(): LocksFile {
    return {
      written: new Date(this.#now()).toISOString(),
      users: this.users.locks(),
      clients: this.clients.locks(),
    };
  }

  /**
   * Note that the waits changed: `locks.json` is rewritten shortly after (coalesced).
   *
   * @example
   * ```ts ignore
   * shield.users.fail("alice", addr); shield.locksChanged();
   * ```
   */
  locksChanged(): void {
    if (!this.#dir || this.#writeTimer !== undefined) return;
    const timer = setTimeout(() => {
      this.#writeTimer = undefined;
      this.flushLocks().catch(() => {});
    }, 200);
    Deno.unrefTimer(timer);
    this.#writeTimer = timer;
  }

  /** Write `locks.json` now (atomically, mode 0600). */
  async flushLocks(): Promise<void> {
    if (!this.#dir) return;
    const path = join(this.#dir, LOCKS_FILE);
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(this.locks()) + "\n", { mode: 0o600 });
    await Deno.rename(tmp, path);
  }

  /** Stop the pending write. */
  close(): void {
    if (this.#writeTimer !== undefined) clearTimeout(this.#writeTimer);
    this.#writeTimer = undefined;
  }
}

/**
 * Read `locks.json` and keep only waits that have not ended; undefined when absent.
 *
 * @example
 * ```ts ignore
 * readLocks(servicePaths(home).dir)?.users; // [{ key: "pair:alice@10.0.0.7", ... }]
 * ```
 */
export function readLocks(dir: string, now = Date.now()): LocksFile | undefined {
  let data: LocksFile;
  try {
    data = JSON.parse(Deno.readTextFileSync(join(dir, LOCKS_FILE)));
  } catch {
    return undefined;
  }
  const live = (l: unknown): l is LockInfo =>
    !!l && typeof (l as LockInfo).key === "string" && Date.parse((l as LockInfo).until) > now;
  return {
    written: String(data?.written ?? ""),
    users: Array.isArray(data?.users) ? data.users.filter(live) : [],
    clients: Array.isArray(data?.clients) ? data.clients.filter(live) : [],
  };
}
