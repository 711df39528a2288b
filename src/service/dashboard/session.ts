/**
 * Dashboard sessions, held in memory by the service process (a restart signs everyone out):
 * an opaque random id in the cookie maps to the signed-in user, the OAuth2 tokens the
 * dashboard obtained (never sent to the browser) and the session's CSRF token. Pending
 * sign-ins keep the PKCE verifier and `state` between the redirect and the callback.
 *
 * @example
 * ```ts
 * import { SessionStore } from "./session.ts";
 * const s = new SessionStore({ now: () => Date.now() / 1000 });
 * const p = s.beginLogin();
 * const sess = s.create({ userId: 1, username: "alice", accessToken: "a", refreshToken: null, expiresAt: 1e12 });
 * s.get(sess.id)?.username; // "alice"
 * ```
 * @module
 */
import { randomBytes } from "node:crypto";
import { pkceChallenge } from "../secrets.ts";

/** A signed-in browser. */
export interface Session {
  /** Opaque id (the cookie value). */
  id: string;
  /** users.id. */
  userId: number;
  /** User name. */
  username: string;
  /** The access token the dashboard got through the OAuth2 flow (server side only). */
  accessToken: string;
  /** Its refresh token, revoked at sign-out. */
  refreshToken: string | null;
  /** The token forms must echo back. */
  csrf: string;
  /** Epoch seconds after which the session is gone. */
  expiresAt: number;
}

/** A sign-in between the redirect to the authorize page and the callback. */
export interface PendingLogin {
  /** Opaque id (the login cookie value). */
  id: string;
  /** OAuth2 `state`. */
  state: string;
  /** PKCE verifier. */
  verifier: string;
  /** PKCE S256 challenge of the verifier. */
  challenge: string;
  /** Epoch seconds after which it is gone. */
  expiresAt: number;
}

/** Longest a session lasts, seconds (shorter when the access token expires sooner). */
export const SESSION_MAX_AGE = 12 * 3600;
/** Longest a sign-in may take, seconds. */
export const LOGIN_MAX_AGE = 600;
const _MAX_PENDING = 1000;

function _random(): string {
  return randomBytes(32).toString("base64url");
}

/** In-memory sessions and pending sign-ins. */
export class SessionStore {
  #now: () => number;
  #sessions = new Map<string, Session>();
  #pending = new Map<string, PendingLogin>();

  constructor(opts: { now: () => number }) {
    this.#now = opts.now;
  }

  /** Start a sign-in: fresh state and PKCE verifier. Oldest pending ones go past 1000. */
  beginLogin(): PendingLogin {
    this.#sweep();
    while (this.#pending.size >= _MAX_PENDING) {
      this.#pending.delete(this.#pending.keys().next().value!);
    }
    const verifier = _random();
    const p: PendingLogin = {
      id: _random(),
      state: _random(),
      verifier,
      challenge: pkceChallenge(verifier),
      expiresAt: this.#now() + LOGIN_MAX_AGE,
    };
    this.#pending.set(p.id, p);
    return p;
  }

  /** Take (single use) a pending sign-in. */
  takeLogin(id: string | undefined): PendingLogin | undefined {
    if (!id) return undefined;
    const p = this.#pending.get(id);
    this.#pending.delete(id);
    return p && p.expiresAt > this.#now() ? p : undefined;
  }

  /** Create a session (lifetime: the token's, at most {@linkcode SESSION_MAX_AGE}). */
  create(s: Omit<Session, "id" | "csrf">): Session {
    this.#sweep();
    const session: Session = {
      ...s,
      id: _random(),
      csrf: _random(),
      expiresAt: Math.min(s.expiresAt, this.#now() + SESSION_MAX_AGE),
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** A live session by id. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  /** End a session. */
  delete(id: string): void {
    this.#sessions.delete(id);
  }

  /** Seconds the session has left. */
  remaining(s: Session): number {
    return Math.max(0, s.expiresAt - this.#now());
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, v] of this.#sessions) if (v.expiresAt <= now) this.#sessions.delete(k);
    for (const [k, v] of this.#pending) if (v.expiresAt <= now) this.#pending.delete(k);
  }
}
