/**
 * The client side of the device authorization grant (RFC 8628): ask the auth server for a
 * device code and a short user code, let the person approve it from any browser that
 * reaches the server (or approve it here with their password), and poll for the tokens.
 *
 * @example
 * ```ts ignore
 * import { approveDevice, pollDevice, startDevice } from "./device.ts";
 * const d = await startDevice(global);
 * if (d) {
 *   console.log(d.verificationUriComplete);
 *   const reply = await pollDevice(global, d);
 * }
 * ```
 * @module
 */
import type { GlobalConfig } from "../config/types.ts";
import { trustedFetch } from "../config/trust.ts";
import { describeFetchError } from "../registration/reach.ts";
import { AuthError, LOGIN_SCOPES, type TokenResponse } from "./oauth.ts";

/** The grant type of the token request. */
export const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** A started device login. */
export interface DeviceStart {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string;
  expiresIn: number;
  interval: number;
}

function _base(authAddress: string): string {
  return authAddress.replace(/\/+$/, "");
}

async function _post(url: string, form: Record<string, string>, what: string): Promise<Response> {
  try {
    return await trustedFetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new AuthError(`${what}: cannot reach ${url}: ${describeFetchError(e, url)}`);
  }
}

async function _oauthError(res: Response): Promise<{ error: string; description: string }> {
  const body = await res.json().catch(() => ({}));
  return {
    error: typeof body?.error === "string" ? body.error : `HTTP ${res.status}`,
    description: typeof body?.error_description === "string" ? body.error_description : "",
  };
}

/**
 * Ask for a device code; `undefined` when the server has no device endpoint (404), so the
 * caller can fall back to the paste-the-code login.
 *
 * @example
 * ```ts ignore
 * const d = await startDevice(global); // { userCode: "WDJB-MJHT", verificationUri, ... }
 * ```
 */
export async function startDevice(global: GlobalConfig): Promise<DeviceStart | undefined> {
  const what = "device authorization";
  const res = await _post(`${_base(global.auth_address)}/v2/oauth2/device_authorization`, {
    client_id: global.client_id,
    scope: LOGIN_SCOPES.join(" "),
  }, what);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) {
    const e = await _oauthError(res);
    throw new AuthError(`${what} failed: ${e.error} ${e.description}`.trim(), res.status, e.error);
  }
  const b = await res.json().catch(() => null);
  if (
    !b || typeof b.device_code !== "string" || typeof b.user_code !== "string" ||
    typeof b.verification_uri !== "string"
  ) {
    throw new AuthError(`${what}: the reply lacks device_code, user_code or verification_uri`);
  }
  return {
    deviceCode: b.device_code,
    userCode: b.user_code,
    verificationUri: b.verification_uri,
    verificationUriComplete: typeof b.verification_uri_complete === "string"
      ? b.verification_uri_complete
      : b.verification_uri,
    expiresIn: Number(b.expires_in) > 0 ? Number(b.expires_in) : 600,
    interval: Number(b.interval) > 0 ? Number(b.interval) : 5,
  };
}

/** Options of {@linkcode pollDevice}. */
export interface PollOptions {
  /** Wait `ms` (default: a timer). */
  sleep?: (ms: number) => Promise<void>;
  /** Monotonic milliseconds (default `performance.now`). */
  now?: () => number;
  /** Called before each wait with the seconds left. */
  onWait?: (secondsLeft: number) => void;
}

/**
 * Poll the token endpoint until the login is approved (the token reply), denied or expired
 * (an {@linkcode AuthError}).
 *
 * @example
 * ```ts ignore
 * const reply = await pollDevice(global, d);
 * ```
 */
export async function pollDevice(
  global: GlobalConfig,
  d: DeviceStart,
  opts: PollOptions = {},
): Promise<TokenResponse> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? (() => performance.now());
  const deadline = now() + d.expiresIn * 1000;
  let interval = d.interval;
  const url = `${_base(global.auth_address)}/v2/oauth2/token`;
  while (true) {
    const res = await _post(url, {
      grant_type: DEVICE_GRANT,
      device_code: d.deviceCode,
      client_id: global.client_id,
    }, "login");
    if (res.ok) {
      const data = await res.json().catch(() => null);
      if (!data || typeof data.access_token !== "string") {
        throw new AuthError("login: the token reply has no access_token");
      }
      return data as TokenResponse;
    }
    const e = await _oauthError(res);
    if (e.error === "slow_down") interval += 5;
    else if (e.error === "access_denied") throw new AuthError("login denied", res.status, e.error);
    else if (e.error === "expired_token") {
      throw new AuthError("login expired: nobody approved the code in time; run login again");
    } else if (e.error !== "authorization_pending") {
      throw new AuthError(`login failed: ${e.error} ${e.description}`.trim(), res.status, e.error);
    }
    const left = (deadline - now()) / 1000;
    if (left <= 0) {
      throw new AuthError("login expired: nobody approved the code in time; run login again");
    }
    opts.onWait?.(Math.ceil(left));
    await sleep(interval * 1000);
  }
}

/**
 * Approve a device login with a user name and password: what a browser does on the
 * verification page (load it, with its CSRF cookie and token; submit the form), sent to the
 * same auth server.
 *
 * @example
 * ```ts ignore
 * await approveDevice(d, "alice", password);
 * ```
 */
export async function approveDevice(
  d: DeviceStart,
  username: string,
  password: string,
): Promise<void> {
  const what = "approving the login";
  let page: Response;
  try {
    page = await trustedFetch(d.verificationUriComplete, { signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    throw new AuthError(
      `${what}: cannot reach ${d.verificationUri}: ${describeFetchError(e, d.verificationUri)}`,
    );
  }
  const html = await page.text();
  const form: Record<string, string> = {
    user_code: d.userCode,
    username,
    password,
    action: "approve",
  };
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form[m[1]] = _unescape(m[2]);
  }
  // the page's cookies (the CSRF nonce), sent back with the form as a browser would
  const cookies = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  let res: Response;
  try {
    res = await trustedFetch(d.verificationUri, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(cookies ? { cookie: cookies } : {}),
      },
      body: new URLSearchParams(form),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new AuthError(
      `${what}: cannot reach ${d.verificationUri}: ${describeFetchError(e, d.verificationUri)}`,
    );
  }
  const done = await res.text();
  if (res.ok && done.includes('id="done"')) return;
  const msg = /<p id="error"[^>]*>([^<]*)<\/p>/.exec(done)?.[1];
  throw new AuthError(`${what} failed: ${msg ? _unescape(msg) : `HTTP ${res.status}`}`, res.status);
}

function _unescape(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(
    /&gt;/g,
    ">",
  ).replace(/&amp;/g, "&");
}
