/**
 * Minimal OAuth2 client for a Globus-compatible auth server (the local service by default):
 * PKCE helpers, the token endpoint, revocation and userinfo.
 *
 * Endpoints are `{auth_address}/v2/oauth2/{authorize,token,token/revoke,userinfo}`.
 *
 * @example
 * ```ts
 * import { createPkce, authorizeUrl } from "./oauth.ts";
 * const pkce = await createPkce();
 * const url = authorizeUrl({ authAddress: "http://127.0.0.1:8400/auth", clientId: "x",
 *   scopes: ["openid"], challenge: pkce.challenge });
 * ```
 * @module
 */
import { trustedFetch } from "../config/trust.ts";
import { describeFetchError } from "../registration/reach.ts";
import { FUNCX_SCOPE, GROUPS_SCOPE } from "../config/types.ts";
import { FUNCX_RESOURCE_SERVER, type TokenRecord } from "./tokens.ts";

/**
 * Scopes the login asks for: upstream's list (funcX, search, openid) plus the identity's
 * email and its groups, which sharing needs.
 */
export const LOGIN_SCOPES: readonly string[] = [
  FUNCX_SCOPE,
  "urn:globus:auth:scope:search.api.globus.org:all",
  "openid",
  "email",
  GROUPS_SCOPE,
];

/**
 * An OAuth2 error reply or a failed request; the message never contains a token.
 *
 * @example
 * ```ts
 * new AuthError("token request failed: invalid_grant (refresh token expired)", 400);
 * ```
 */
export class AuthError extends Error {
  /** @param message one line, @param status HTTP status (0 for a connection error) */
  constructor(message: string, readonly status = 0, readonly oauthError?: string) {
    super(message);
    this.name = "AuthError";
  }
}

/** A PKCE verifier and its S256 challenge. */
export interface Pkce {
  verifier: string;
  challenge: string;
}

function _b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A fresh PKCE pair: 43-char verifier from 32 random bytes, `S256` challenge.
 *
 * @example
 * ```ts
 * const { verifier, challenge } = await createPkce();
 * ```
 */
export async function createPkce(): Promise<Pkce> {
  const verifier = _b64url(crypto.getRandomValues(new Uint8Array(32)));
  return { verifier, challenge: await pkceChallenge(verifier) };
}

/**
 * The S256 challenge of a verifier: base64url(sha256(verifier)) without padding.
 *
 * @example
 * ```ts
 * await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
 * // "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
 * ```
 */
export async function pkceChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return _b64url(new Uint8Array(digest));
}

function _base(authAddress: string): string {
  return authAddress.replace(/\/+$/, "");
}

/**
 * The `redirect_uri` of the native flow: `{auth_address}/v2/web/auth-code`.
 *
 * @example
 * ```ts
 * redirectUri("http://127.0.0.1:8400/auth"); // "http://127.0.0.1:8400/auth/v2/web/auth-code"
 * ```
 */
export function redirectUri(authAddress: string): string {
  return `${_base(authAddress)}/v2/web/auth-code`;
}

/** Inputs of {@linkcode authorizeUrl}. */
export interface AuthorizeInput {
  authAddress: string;
  clientId: string;
  scopes: readonly string[];
  challenge: string;
  state?: string;
}

/**
 * The authorization URL the user opens (PKCE S256, offline access for a refresh token).
 *
 * @example
 * ```ts
 * authorizeUrl({ authAddress: "http://a/auth", clientId: "c", scopes: ["openid"], challenge: "x" });
 * // "http://a/auth/v2/oauth2/authorize?client_id=c&redirect_uri=...&code_challenge=x&..."
 * ```
 */
export function authorizeUrl(input: AuthorizeInput): string {
  const q = new URLSearchParams({
    client_id: input.clientId,
    redirect_uri: redirectUri(input.authAddress),
    scope: input.scopes.join(" "),
    state: input.state ?? "_default",
    response_type: "code",
    code_challenge: input.challenge,
    code_challenge_method: "S256",
    access_type: "offline",
    prefill_named_grant: "FuncX SDK Login",
  });
  return `${_base(input.authAddress)}/v2/oauth2/authorize?${q}`;
}

/** A token endpoint reply (RFC 6749 plus Globus' `resource_server`/`other_tokens`). */
export interface TokenResponse {
  access_token: string;
  refresh_token?: string | null;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  resource_server?: string;
  other_tokens?: TokenResponse[];
}

async function _request(
  url: string,
  init: RequestInit,
  what: string,
  timeoutMs = 30_000,
): Promise<Response> {
  try {
    return await trustedFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new AuthError(`${what}: cannot reach ${url}: ${describeFetchError(e, url)}`);
  }
}

async function _errorOf(res: Response, what: string): Promise<AuthError> {
  let detail = `HTTP ${res.status}`;
  let code: string | undefined;
  try {
    const body = await res.json();
    code = typeof body?.error === "string" ? body.error : undefined;
    const desc = body?.error_description ?? body?.reason ?? body?.message;
    detail = [code, typeof desc === "string" ? `(${desc})` : ""].filter(Boolean).join(" ") ||
      detail;
  } catch { /* not JSON */ }
  return new AuthError(`${what} failed: ${detail}`, res.status, code);
}

/** How the client authenticates at the token endpoint. */
export type ClientAuth =
  | { kind: "public"; clientId: string }
  | { kind: "confidential"; clientId: string; clientSecret: string };

/**
 * POST a grant to `{auth_address}/v2/oauth2/token` (form-encoded).
 *
 * @example
 * ```ts
 * await tokenRequest("http://a/auth", { kind: "public", clientId: "c" },
 *   { grant_type: "refresh_token", refresh_token: "..." });
 * ```
 */
export async function tokenRequest(
  authAddress: string,
  client: ClientAuth,
  params: Record<string, string>,
): Promise<TokenResponse> {
  const body = new URLSearchParams(params);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  };
  if (client.kind === "confidential") {
    headers.authorization = `Basic ${btoa(`${client.clientId}:${client.clientSecret}`)}`;
  } else {
    body.set("client_id", client.clientId);
  }
  const what = `token request (${params.grant_type})`;
  const res = await _request(`${_base(authAddress)}/v2/oauth2/token`, {
    method: "POST",
    headers,
    body,
  }, what);
  if (!res.ok) throw await _errorOf(res, what);
  const data = await res.json().catch(() => null);
  if (!data || typeof data.access_token !== "string") {
    throw new AuthError(`${what}: the reply has no access_token`, res.status);
  }
  return data as TokenResponse;
}

/**
 * The funcX-service record of a token reply (looks in `other_tokens` too).
 *
 * @example
 * ```ts
 * const rec = funcxRecord({ access_token: "a", expires_in: 3600, scope: "s" });
 * rec.resource_server; // "funcx_service"
 * ```
 */
export function funcxRecord(
  reply: TokenResponse,
  nowSeconds = Math.floor(Date.now() / 1000),
): TokenRecord {
  const all = [reply, ...(reply.other_tokens ?? [])];
  const pick = all.find((t) => t.resource_server === FUNCX_RESOURCE_SERVER) ??
    all.find((t) => (t.scope ?? "").split(" ").includes(LOGIN_SCOPES[0])) ?? reply;
  return {
    scope: pick.scope ?? LOGIN_SCOPES[0],
    access_token: pick.access_token,
    refresh_token: pick.refresh_token ?? null,
    token_type: pick.token_type ?? "Bearer",
    expires_at_seconds: nowSeconds + Math.max(0, Number(pick.expires_in ?? 3600)),
    resource_server: FUNCX_RESOURCE_SERVER,
  };
}

/**
 * Revoke a token at `{auth_address}/v2/oauth2/token/revoke`; true when the server accepted.
 *
 * @example
 * ```ts
 * await revokeToken("http://a/auth", { kind: "public", clientId: "c" }, "token");
 * ```
 */
export async function revokeToken(
  authAddress: string,
  client: ClientAuth,
  token: string,
): Promise<boolean> {
  const body = new URLSearchParams({ token });
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
  };
  if (client.kind === "confidential") {
    headers.authorization = `Basic ${btoa(`${client.clientId}:${client.clientSecret}`)}`;
  } else body.set("client_id", client.clientId);
  const res = await _request(
    `${_base(authAddress)}/v2/oauth2/token/revoke`,
    {
      method: "POST",
      headers,
      body,
    },
    "token revocation",
    10_000,
  );
  await res.body?.cancel();
  return res.ok;
}

/**
 * `GET {auth_address}/v2/oauth2/userinfo` with the access token.
 *
 * @example
 * ```ts ignore
 * const info = await userinfo("http://a/auth", accessToken); // { sub, preferred_username, ... }
 * ```
 */
export async function userinfo(
  authAddress: string,
  accessToken: string,
): Promise<Record<string, unknown>> {
  const res = await _request(`${_base(authAddress)}/v2/oauth2/userinfo`, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "application/json" },
  }, "userinfo");
  if (!res.ok) throw await _errorOf(res, "userinfo");
  const data = await res.json().catch(() => null);
  if (!data || typeof data !== "object") throw new AuthError("userinfo: the reply is not JSON");
  return data as Record<string, unknown>;
}
