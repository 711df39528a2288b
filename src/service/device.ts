/**
 * The device authorization grant (RFC 8628) of the local auth server: how `funcx-endpoint
 * login` works on a machine without a browser.
 *
 * - `POST /auth/v2/oauth2/device_authorization` (`client_id`, `scope`): a `device_code` for
 *   the client, a short `user_code` for the person, and the `verification_uri`.
 * - `GET/POST /auth/v2/device`: the page where the person enters the user code, their user
 *   name and password, and approves or denies.
 * - `POST /auth/v2/oauth2/token` with `grant_type=urn:ietf:params:oauth:grant-type:device_code`:
 *   `authorization_pending`, `slow_down`, `access_denied`, `expired_token`, or the tokens (once).
 *
 * Pending grants live in memory (a restart of the service cancels them), at most
 * {@linkcode MAX_PENDING}; only the SHA-256 of a device code is kept.
 *
 * @example
 * ```ts
 * import { DeviceGrants } from "./device.ts";
 * const grants = new DeviceGrants();
 * const g = grants.create("client", "openid")!;
 * grants.approve(g.userCode, { id: 1, username: "alice" });
 * grants.poll(g.deviceCode, "client").kind; // "approved"
 * ```
 * @module
 */
import { randomBytes, randomInt } from "node:crypto";
import { sha256Hex } from "./secrets.ts";

/** The `grant_type` of a device-code token request. */
export const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** Most pending grants at once (memory bound). */
export const MAX_PENDING = 1000;
/** Wrong passwords on one user code before the grant is denied. */
export const MAX_FAILURES = 5;

const _ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"; // no vowels (no words), no look-alikes

/** A pending, approved or denied device grant. */
interface _Grant {
  deviceHash: string;
  userCode: string;
  clientId: string;
  scope: string;
  expiresAt: number;
  interval: number;
  nextPoll: number;
  state: "pending" | "approved" | "denied";
  user?: { id: number; username: string };
  failures: number;
}

/** What a poll of the token endpoint learns. */
export type PollResult =
  | { kind: "pending" | "slow_down" | "denied" | "expired" | "invalid" }
  | { kind: "approved"; user: { id: number; username: string }; scope: string };

/** Options of {@linkcode DeviceGrants}. */
export interface DeviceGrantsOptions {
  /** Seconds since the epoch (default: the wall clock). */
  now?: () => number;
  /** Lifetime of a grant, seconds (default 600). */
  ttl?: number;
  /** Seconds a client must wait between polls (default 2). */
  interval?: number;
}

/**
 * A user code as the person types it, normalized: letters only, upper case, `XXXX-XXXX`.
 *
 * @example
 * ```ts
 * normalizeUserCode(" wdjb mjht "); // "WDJB-MJHT"
 * ```
 */
export function normalizeUserCode(raw: string): string {
  const s = raw.toUpperCase().replace(/[^A-Z]/g, "");
  return s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4)}` : s;
}

/** The pending device grants of one auth server. */
export class DeviceGrants {
  #grants = new Map<string, _Grant>(); // by user code
  #now: () => number;
  #ttl: number;
  #interval: number;

  constructor(opts: DeviceGrantsOptions = {}) {
    this.#now = opts.now ?? (() => Date.now() / 1000);
    this.#ttl = opts.ttl ?? 600;
    this.#interval = opts.interval ?? 2;
  }

  /**
   * Start a grant; `undefined` when {@linkcode MAX_PENDING} grants are pending.
   *
   * @example
   * ```ts
   * const g = new DeviceGrants().create("c", "openid")!; // { deviceCode, userCode, expiresIn, interval }
   * ```
   */
  create(clientId: string, scope: string):
    | { deviceCode: string; userCode: string; expiresIn: number; interval: number }
    | undefined {
    this.#sweep();
    if (this.#grants.size >= MAX_PENDING) return undefined;
    let userCode: string;
    do {
      userCode = Array.from({ length: 8 }, () => _ALPHABET[randomInt(_ALPHABET.length)]).join("");
      userCode = normalizeUserCode(userCode);
    } while (this.#grants.has(userCode));
    const deviceCode = `fxd${randomBytes(32).toString("base64url")}`;
    const now = this.#now();
    this.#grants.set(userCode, {
      deviceHash: sha256Hex(deviceCode),
      userCode,
      clientId,
      scope,
      expiresAt: now + this.#ttl,
      interval: this.#interval,
      nextPoll: now,
      state: "pending",
      failures: 0,
    });
    return { deviceCode, userCode, expiresIn: this.#ttl, interval: this.#interval };
  }

  /**
   * The pending grant of a user code (client and scope, to show on the page), if any.
   *
   * @example
   * ```ts ignore
   * grants.pending("wdjb-mjht")?.scope;
   * ```
   */
  pending(userCode: string): { userCode: string; clientId: string; scope: string } | undefined {
    const g = this.#live(userCode);
    return g && g.state === "pending" ? g : undefined;
  }

  /**
   * Approve a pending grant for `user`; false when there is no such pending grant.
   *
   * @example
   * ```ts ignore
   * grants.approve("WDJB-MJHT", { id: 1, username: "alice" }); // true
   * ```
   */
  approve(userCode: string, user: { id: number; username: string }): boolean {
    const g = this.#live(userCode);
    if (!g || g.state !== "pending") return false;
    g.state = "approved";
    g.user = user;
    return true;
  }

  /**
   * Deny a pending grant; false when there is no such pending grant.
   *
   * @example
   * ```ts ignore
   * grants.deny("WDJB-MJHT");
   * ```
   */
  deny(userCode: string): boolean {
    const g = this.#live(userCode);
    if (!g || g.state !== "pending") return false;
    g.state = "denied";
    return true;
  }

  /**
   * Count a wrong password against a user code; the grant is denied after
   * {@linkcode MAX_FAILURES}. Returns true when it was denied now.
   *
   * @example
   * ```ts ignore
   * grants.failed("WDJB-MJHT");
   * ```
   */
  failed(userCode: string): boolean {
    const g = this.#live(userCode);
    if (!g || g.state !== "pending") return false;
    if (++g.failures < MAX_FAILURES) return false;
    g.state = "denied";
    return true;
  }

  /**
   * A client polls with its device code. An approved or denied grant is answered once,
   * then forgotten; polling faster than the interval is answered `slow_down` (and the
   * interval grows by 5 s, as RFC 8628 says).
   *
   * @example
   * ```ts ignore
   * grants.poll(deviceCode, "c").kind; // "pending"
   * ```
   */
  poll(deviceCode: string, clientId: string): PollResult {
    const hash = sha256Hex(deviceCode);
    const g = [...this.#grants.values()].find((x) => x.deviceHash === hash);
    if (!g || g.clientId !== clientId) return { kind: "invalid" };
    const now = this.#now();
    if (g.expiresAt <= now) {
      this.#grants.delete(g.userCode);
      return { kind: "expired" };
    }
    if (g.state === "denied") {
      this.#grants.delete(g.userCode);
      return { kind: "denied" };
    }
    if (g.state === "approved") {
      this.#grants.delete(g.userCode);
      return { kind: "approved", user: g.user!, scope: g.scope };
    }
    if (now < g.nextPoll) {
      g.interval += 5;
      g.nextPoll = now + g.interval;
      return { kind: "slow_down" };
    }
    // a little slack: a client sleeping exactly `interval` must not get slow_down
    g.nextPoll = now + g.interval - 1;
    return { kind: "pending" };
  }

  #live(userCode: string): _Grant | undefined {
    const g = this.#grants.get(normalizeUserCode(userCode));
    if (!g) return undefined;
    if (g.expiresAt <= this.#now()) {
      this.#grants.delete(g.userCode);
      return undefined;
    }
    return g;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, g] of this.#grants) if (g.expiresAt <= now) this.#grants.delete(k);
  }
}
