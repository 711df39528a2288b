/**
 * Access tokens for the funcX web service: stored login tokens refreshed silently, or the
 * client-credentials grant when `FUNCX_SDK_CLIENT_ID` and `FUNCX_SDK_CLIENT_SECRET` are set.
 *
 * @example
 * ```ts
 * import { getAccessToken } from "./access.ts";
 * import { DEFAULT_GLOBAL_CONFIG } from "../config/types.ts";
 * const token = await getAccessToken("/home/u/.funcx", DEFAULT_GLOBAL_CONFIG);
 * ```
 * @module
 */
import type { GlobalConfig } from "../config/types.ts";
import { AuthError, type ClientAuth, funcxRecord, LOGIN_SCOPES, tokenRequest } from "./oauth.ts";
import { type TokenRecord, TokenStore } from "./tokens.ts";

/** Refresh when fewer than this many seconds of validity are left. */
export const REFRESH_MARGIN_SECONDS = 60;

/**
 * No usable credentials: the message tells the user what to run.
 *
 * @example
 * ```ts
 * new NotLoggedInError().message; // "not logged in: run `funcx-endpoint login`"
 * ```
 */
export class NotLoggedInError extends Error {
  /** @param detail optional reason appended after the instruction */
  constructor(detail?: string) {
    super(`not logged in: run \`funcx-endpoint login\`${detail ? ` (${detail})` : ""}`);
    this.name = "NotLoggedInError";
  }
}

/** Client credentials from the environment, if both variables are set. */
export function envClientCredentials(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): { clientId: string; clientSecret: string } | undefined {
  const clientId = env.FUNCX_SDK_CLIENT_ID;
  const clientSecret = env.FUNCX_SDK_CLIENT_SECRET;
  if (clientId && clientSecret) return { clientId, clientSecret };
  return undefined;
}

const _inflight = new Map<string, Promise<string>>();

function _valid(rec: TokenRecord | undefined, now: number): rec is TokenRecord {
  return !!rec && rec.expires_at_seconds - now > REFRESH_MARGIN_SECONDS;
}

async function _obtain(home: string, global: GlobalConfig, force: boolean): Promise<string> {
  const store = new TokenStore(home);
  const now = Math.floor(Date.now() / 1000);
  const cc = envClientCredentials();
  if (cc) {
    let cached: TokenRecord | undefined;
    try {
      cached = store.get();
    } catch { /* corrupt file: replaced below */ }
    if (!force && _valid(cached, now) && cached.refresh_token === null) {
      return cached.access_token;
    }
    const client: ClientAuth = { kind: "confidential", ...cc };
    const reply = await tokenRequest(global.auth_address, client, {
      grant_type: "client_credentials",
      scope: LOGIN_SCOPES[0],
    });
    const rec = funcxRecord(reply, now);
    rec.refresh_token = null;
    store.set(rec);
    return rec.access_token;
  }
  const rec = store.get();
  if (!rec) throw new NotLoggedInError();
  if (!force && _valid(rec, now)) return rec.access_token;
  if (!rec.refresh_token) {
    throw new NotLoggedInError("the stored access token has expired and there is no refresh token");
  }
  let reply;
  try {
    reply = await tokenRequest(
      global.auth_address,
      { kind: "public", clientId: global.client_id },
      {
        grant_type: "refresh_token",
        refresh_token: rec.refresh_token,
      },
    );
  } catch (e) {
    if (e instanceof AuthError && e.status >= 400 && e.status < 500) {
      throw new NotLoggedInError(`the refresh token was refused: ${e.message}`);
    }
    throw e;
  }
  const fresh = funcxRecord(reply, now);
  fresh.refresh_token = fresh.refresh_token ?? rec.refresh_token;
  fresh.scope = fresh.scope || rec.scope;
  store.set(fresh);
  return fresh.access_token;
}

/**
 * A valid access token for the funcX service, refreshing or fetching one when needed.
 * `force` skips the cached token (use after a 401). Concurrent calls share one request.
 * Throws {@linkcode NotLoggedInError} when there are no usable credentials.
 *
 * @example
 * ```ts
 * const token = await getAccessToken(home, global);
 * await fetch(url, { headers: { authorization: `Bearer ${token}` } });
 * ```
 */
export function getAccessToken(
  home: string,
  global: GlobalConfig,
  opts: { force?: boolean } = {},
): Promise<string> {
  const key = `${home}\0${opts.force ? 1 : 0}`;
  const running = _inflight.get(key);
  if (running) return running;
  const p = _obtain(home, global, !!opts.force).finally(() => _inflight.delete(key));
  _inflight.set(key, p);
  return p;
}

/**
 * A token provider for the web-service client: `(force) => Promise<token>`.
 *
 * @example
 * ```ts
 * const provider = tokenProvider(home, global);
 * const token = await provider(false);
 * ```
 */
export function tokenProvider(
  home: string,
  global: GlobalConfig,
): (force?: boolean) => Promise<string> {
  return (force = false) => getAccessToken(home, global, { force });
}
