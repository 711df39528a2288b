/**
 * Access tokens for the funcX web service: stored login tokens refreshed silently, or the
 * client-credentials grant when `FUNCX_SDK_CLIENT_ID` and `FUNCX_SDK_CLIENT_SECRET` are set.
 * Credentials in the environment take precedence over stored login tokens (as upstream); their
 * tokens are cached in the token file under a key of their own, so they never replace or get
 * mistaken for the login of another identity.
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
import { FUNCX_RESOURCE_SERVER, type TokenRecord, TokenStore } from "./tokens.ts";
import { GROUPS_SCOPE } from "../config/types.ts";

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

/** Where the identity used by this process comes from. */
export type IdentitySource =
  | { kind: "environment"; clientId: string }
  | { kind: "login"; tokenFile: string };

/**
 * Where the identity comes from: the environment's client credentials when both variables
 * are set, else the stored login tokens.
 *
 * @example
 * ```ts
 * identitySource("/home/u/.funcx", {}).kind; // "login"
 * ```
 */
export function identitySource(
  home: string,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): IdentitySource {
  const cc = envClientCredentials(env);
  if (cc) return { kind: "environment", clientId: cc.clientId };
  return { kind: "login", tokenFile: new TokenStore(home).path };
}

/** Token-file key of the cached client-credentials token of `clientId`. */
export function clientCredentialsKey(clientId: string): string {
  return `${FUNCX_RESOURCE_SERVER}:client:${clientId}`;
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
    const key = clientCredentialsKey(cc.clientId);
    let cached: TokenRecord | undefined;
    try {
      cached = store.get(key);
    } catch { /* corrupt file: replaced below */ }
    if (!force && _valid(cached, now) && cached.refresh_token === null) {
      return cached.access_token;
    }
    const client: ClientAuth = { kind: "confidential", ...cc };
    const reply = await tokenRequest(global.auth_address, client, {
      grant_type: "client_credentials",
      scope: [LOGIN_SCOPES[0], "openid", "email", GROUPS_SCOPE].join(" "),
    });
    const rec = funcxRecord(reply, now);
    rec.refresh_token = null;
    rec.resource_server = key;
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
 * ```ts ignore
 * const token = await getAccessToken(home, global);
 * await fetch(url, { headers: { authorization: `Bearer ${token}` } });
 * ```
 */
export function getAccessToken(
  home: string,
  global: GlobalConfig,
  opts: { force?: boolean } = {},
): Promise<string> {
  const key = `${home}\0${opts.force ? 1 : 0}\0${envClientCredentials()?.clientId ?? ""}`;
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
 * ```ts ignore
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
