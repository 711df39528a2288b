/**
 * The OAuth2 authorization server of the local service, mounted under `/auth`:
 *
 * - `GET/POST /auth/v2/oauth2/authorize`: plain HTML login form; on success a 303 to the
 *   redirect URI with `?code=...` (authorization code + PKCE S256, mandatory).
 * - `GET /auth/v2/web/auth-code`: the paste-the-code page (`<code id="auth-code">`).
 * - `POST /auth/v2/oauth2/device_authorization`, `GET/POST /auth/v2/device`: the device
 *   authorization grant (RFC 8628, `device.ts`): login without a browser on the same machine.
 * - `POST /auth/v2/oauth2/token`: `authorization_code` (+ `code_verifier`), `refresh_token`,
 *   `client_credentials` (confidential clients from `service add-client`), device code.
 * - `POST /auth/v2/oauth2/token/introspect`, `POST /auth/v2/oauth2/token/revoke`,
 *   `GET /auth/v2/oauth2/userinfo`.
 *
 * The API calls {@linkcode AuthServer.authenticate} on every request.
 *
 * @example
 * ```ts ignore
 * import { AuthServer } from "./auth.ts";
 * const auth = new AuthServer({ store, tokenLifetime: 3600, log });
 * const res = await auth.handle(req, "/v2/oauth2/token");
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { FUNCX_SCOPE, GROUPS_SCOPE, NATIVE_CLIENT_ID } from "../config/types.ts";
import type { Logger } from "../daemon/log.ts";
import { DEVICE_GRANT, DeviceGrants, normalizeUserCode } from "./device.ts";
import { ApiError, ErrorCode } from "./errors.ts";
import { escapeHtml, html, json, readBody } from "./http.ts";
import { tokenRef } from "./audit.ts";
import { HasherBusy } from "./hasher.ts";
import { CSRF_FIELD } from "./page_security.ts";
import { pkceChallenge, safeEqual, sha256Hex } from "./secrets.ts";
import { Shield } from "./shield.ts";
import type { ServiceStore, TokenInfo } from "./store.ts";

/** Scopes this server grants, with what the login page tells the user about each. */
export const SCOPE_DESCRIPTIONS: ReadonlyMap<string, string> = new Map([
  [FUNCX_SCOPE, "funcX: register functions and endpoints and run tasks as you"],
  ["openid", "your identity (user name)"],
  ["profile", "your profile (name)"],
  ["email", "your email address"],
  [GROUPS_SCOPE, "your groups and memberships (used to share functions and endpoints)"],
  ["urn:globus:auth:scope:search.api.globus.org:all", "search (accepted, unused locally)"],
  ["urn:globus:auth:scope:auth.globus.org:view_identities", "view identities"],
]);

/** Scopes this server grants. */
export const KNOWN_SCOPES: ReadonlySet<string> = new Set(SCOPE_DESCRIPTIONS.keys());

const _CODE_TTL = 600;
const _FORM_LIMIT = 64 * 1024;

/** An OAuth2 error (`{"error", "error_description"}`). */
class _OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
  response(): Response {
    const headers: HeadersInit = this.status === 401
      ? { "www-authenticate": 'Basic realm="funcx"', ...this.headers }
      : this.headers;
    return json({ error: this.error, error_description: this.description }, this.status, headers);
  }
}

/** Options of {@linkcode AuthServer}. */
export interface AuthServerOptions {
  /** The service database. */
  store: ServiceStore;
  /** Access-token lifetime, seconds. */
  tokenLifetime: number;
  /** Logger. */
  log: Logger;
  /** Guessing limits, hasher, CSRF and audit (default: a fresh one, no audit file). */
  shield?: Shield;
}

/**
 * The stable subject id of a user (a UUID derived from the username).
 *
 * @example
 * ```ts
 * userSub("alice").length; // 36
 * ```
 */
export function userSub(username: string): string {
  const h = createHash("sha256").update(`funcx-local-user:${username}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${
    h.slice(20, 32)
  }`;
}

/** The auth server. */
export class AuthServer {
  #store: ServiceStore;
  #lifetime: number;
  #log: Logger;
  #shield: Shield;
  #devices = new DeviceGrants();

  constructor(opts: AuthServerOptions) {
    this.#store = opts.store;
    this.#lifetime = opts.tokenLifetime;
    this.#log = opts.log;
    this.#shield = opts.shield ?? new Shield();
  }

  /**
   * Check the bearer token of an API request: present, known, unexpired and carrying the
   * funcX scope. Throws `UserUnauthenticated` (401) otherwise.
   */
  authenticate(req: Request): TokenInfo {
    const info = this.#bearer(req);
    if (!info.scope.split(" ").includes(FUNCX_SCOPE)) {
      throw new ApiError(
        ErrorCode.UserUnauthenticated,
        `Token lacks the funcX scope ${FUNCX_SCOPE}`,
        [],
      );
    }
    return info;
  }

  #bearer(req: Request): TokenInfo {
    const header = req.headers.get("authorization");
    if (!header) {
      throw new ApiError(
        ErrorCode.UserUnauthenticated,
        "Missing Authorization header; expected 'Authorization: Bearer <access token>'",
      );
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      throw new ApiError(
        ErrorCode.UserUnauthenticated,
        "Malformed Authorization header; expected 'Authorization: Bearer <access token>'",
      );
    }
    const info = this.#store.lookupToken(m[1], "access");
    if (!info) throw new ApiError(ErrorCode.UserUnauthenticated, "Invalid or revoked token");
    if (info.expiresAt <= Date.now() / 1000) {
      throw new ApiError(
        ErrorCode.UserUnauthenticated,
        `Token expired at ${new Date(info.expiresAt * 1000).toISOString()}`,
      );
    }
    return info;
  }

  /**
   * Handle a request below `/auth` (`sub` is the path without the `/auth` prefix; `addr`
   * the client address, for guessing limits and the audit trail).
   */
  async handle(req: Request, sub: string, addr = "unknown"): Promise<Response> {
    const path = sub.replace(/\/+$/, "");
    try {
      switch (path) {
        case "/v2/oauth2/authorize":
          if (req.method === "GET") return this.#authorizeForm(req, new URL(req.url).searchParams);
          if (req.method === "POST") return await this.#authorizeSubmit(req, addr);
          break;
        case "/v2/web/auth-code":
          if (req.method === "GET") return this.#authCodePage(new URL(req.url).searchParams);
          break;
        case "/v2/oauth2/token":
          if (req.method === "POST") return await this.#token(req, addr);
          break;
        case "/v2/oauth2/device_authorization":
          if (req.method === "POST") return await this.#deviceAuthorization(req, addr);
          break;
        case "/v2/device":
          if (req.method === "GET") return this.#deviceForm(req, new URL(req.url).searchParams);
          if (req.method === "POST") return await this.#deviceSubmit(req, addr);
          break;
        case "/v2/oauth2/token/introspect":
          if (req.method === "POST") return await this.#introspect(req, addr);
          break;
        case "/v2/oauth2/token/revoke":
          if (req.method === "POST") return await this.#revoke(req, addr);
          break;
        case "/v2/oauth2/userinfo":
          if (req.method === "GET" || req.method === "POST") return this.#userinfo(req);
          break;
        default:
          return json({ error: "not_found", error_description: `No such route: ${sub}` }, 404);
      }
      return json(
        { error: "method_not_allowed", error_description: `${req.method} not allowed on ${sub}` },
        405,
      );
    } catch (e) {
      if (e instanceof _OAuthError) return e.response();
      if (e instanceof HasherBusy) {
        return json({ error: "temporarily_unavailable", error_description: e.message }, 429, {
          "retry-after": "1",
        });
      }
      if (e instanceof ApiError) {
        return json({ error: "invalid_request", error_description: e.reason }, e.httpStatus);
      }
      this.#log.error("auth", "unexpected error on %s: %s", sub, (e as Error)?.stack ?? e);
      return json({ error: "server_error", error_description: "internal error" }, 500);
    }
  }

  // ------------------------------------------------------------------ authorize

  #checkAuthorizeParams(p: URLSearchParams, req: Request): {
    clientId: string;
    redirectUri: string;
    scope: string;
    state: string;
    challenge: string;
  } {
    const clientId = p.get("client_id") ?? "";
    if (clientId !== NATIVE_CLIENT_ID && !this.#store.getClient(clientId)) {
      throw new _OAuthError("invalid_client", `Unknown client_id ${JSON.stringify(clientId)}`);
    }
    const redirectUri = p.get("redirect_uri") ?? "";
    _checkRedirectUri(redirectUri, req);
    if ((p.get("response_type") ?? "code") !== "code") {
      throw new _OAuthError("unsupported_response_type", "response_type must be 'code'");
    }
    const challenge = p.get("code_challenge") ?? "";
    const method = p.get("code_challenge_method") ?? "";
    if (!challenge) {
      throw new _OAuthError("invalid_request", "code_challenge is required (PKCE S256)");
    }
    if (method !== "S256") {
      throw new _OAuthError(
        "invalid_request",
        `code_challenge_method must be S256, got ${JSON.stringify(method)}`,
      );
    }
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
      throw new _OAuthError("invalid_request", "code_challenge must be 43 base64url characters");
    }
    const scope = _normalizeScope(p.get("scope") ?? FUNCX_SCOPE);
    return { clientId, redirectUri, scope, state: p.get("state") ?? "", challenge };
  }

  #authorizeForm(
    req: Request,
    p: URLSearchParams,
    error = "",
    status = 200,
    extraHeaders: Record<string, string> = {},
  ): Response {
    let params;
    try {
      params = this.#checkAuthorizeParams(p, req);
    } catch (e) {
      if (e instanceof _OAuthError) return _errorPage(e.description);
      throw e;
    }
    const csrf = this.#shield.csrf.issue(req);
    const hidden = [
      ["client_id", params.clientId],
      ["redirect_uri", params.redirectUri],
      ["scope", params.scope],
      ["state", params.state],
      ["code_challenge", params.challenge],
      ["code_challenge_method", "S256"],
      ["response_type", "code"],
      [CSRF_FIELD, csrf.field],
    ].map(([k, v]) => `<input type="hidden" name="${k}" value="${escapeHtml(v)}">`).join("\n");
    const err = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : "";
    return html(
      _page(
        "Log in to funcX",
        `<h1>Log in to the local funcX service</h1>
<p>An application is asking for access to:</p>
${_scopeList(params.scope)}
${err}
<form method="post" action="authorize">
${hidden}
<p><label>User name <input name="username" id="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit" id="login">Log in</button></p>
</form>`,
      ),
      status,
      { "set-cookie": csrf.cookie, ...extraHeaders },
    );
  }

  async #authorizeSubmit(req: Request, addr: string): Promise<Response> {
    const form = new URLSearchParams(await readBody(req, _FORM_LIMIT));
    let params;
    try {
      params = this.#checkAuthorizeParams(form, req);
    } catch (e) {
      if (e instanceof _OAuthError) return _errorPage(e.description);
      throw e;
    }
    const csrfProblem = this.#shield.csrf.verify(req, form.get(CSRF_FIELD));
    if (csrfProblem) {
      this.#log.warn("auth", "login form refused from %s: %s", addr, csrfProblem);
      return this.#authorizeForm(req, form, `Sign-in refused: ${csrfProblem}.`, 403);
    }
    const signIn = await this.#checkPassword(form, addr, params.clientId, "login");
    if ("retryAfter" in signIn) {
      return this.#authorizeForm(
        req,
        form,
        `Too many failed sign-ins; try again in ${signIn.retryAfter} s.`,
        429,
        { "retry-after": String(signIn.retryAfter) },
      );
    }
    if (!signIn.user) {
      return this.#authorizeForm(req, form, "Invalid user name or password.", 401);
    }
    const user = signIn.user;
    const code = this.#store.createAuthCode({
      user_id: user.id,
      client_id: params.clientId,
      redirect_uri: params.redirectUri,
      code_challenge: params.challenge,
      scope: params.scope,
      expires_at: Date.now() / 1000 + _CODE_TTL,
    });
    this.#log.info("auth", "user %s logged in (client %s)", user.username, params.clientId);
    const target = new URL(params.redirectUri);
    target.searchParams.set("code", code);
    if (params.state) target.searchParams.set("state", params.state);
    return new Response(null, {
      status: 303,
      headers: { location: target.toString(), "cache-control": "no-store" },
    });
  }

  #authCodePage(p: URLSearchParams): Response {
    const code = p.get("code");
    if (!code) return _errorPage("No authorization code in the request.");
    return html(
      _page(
        "funcX authorization code",
        `<h1>Authorization code</h1>
<p>Copy this code and paste it into the program that asked for it:</p>
<p><code id="auth-code">${escapeHtml(code)}</code></p>`,
      ),
    );
  }

  // ------------------------------------------------------------------ token

  async #formOrJson(req: Request): Promise<URLSearchParams> {
    const text = await readBody(req, _FORM_LIMIT);
    const type = req.headers.get("content-type") ?? "";
    if (type.includes("application/json")) {
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch {
        throw new _OAuthError("invalid_request", "request body is not valid JSON");
      }
      if (!obj || typeof obj !== "object") {
        throw new _OAuthError("invalid_request", "request body must be a JSON object");
      }
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(obj)) if (typeof v === "string") p.set(k, v);
      return p;
    }
    return new URLSearchParams(text);
  }

  /** Client authentication: HTTP Basic or form fields. */
  #client(
    req: Request,
    form: URLSearchParams,
    addr: string,
  ): { clientId: string; confidential: boolean } {
    let clientId = form.get("client_id") ?? "";
    let secret = form.get("client_secret");
    const header = req.headers.get("authorization");
    if (header && /^Basic\s+/i.test(header)) {
      let decoded = "";
      try {
        decoded = atob(header.replace(/^Basic\s+/i, "").trim());
      } catch {
        throw new _OAuthError("invalid_client", "malformed Basic authorization header", 401);
      }
      const i = decoded.indexOf(":");
      if (i < 0) throw new _OAuthError("invalid_client", "malformed Basic credentials", 401);
      clientId = decodeURIComponent(decoded.slice(0, i));
      secret = decodeURIComponent(decoded.slice(i + 1));
    }
    if (!clientId) throw new _OAuthError("invalid_client", "client_id is required", 401);
    if (clientId === NATIVE_CLIENT_ID && !secret) return { clientId, confidential: false };
    const guard = this.#shield.clients;
    const account = clientId.slice(0, 128);
    const verdict = guard.check(account, addr);
    if (!verdict.allowed) {
      const secs = Math.ceil(verdict.retryAfterMs / 1000);
      this.#shield.audit.record("client.auth.locked", {
        client: account,
        addr,
        retry_after_s: secs,
      });
      throw new _OAuthError(
        "invalid_client",
        `too many failed client authentications; retry in ${secs} s`,
        429,
        { "retry-after": String(secs) },
      );
    }
    const client = this.#store.getClient(clientId);
    if (!client || !secret || !safeEqual(sha256Hex(secret), client.secret_hash)) {
      guard.fail(account, addr);
      this.#shield.locksChanged();
      this.#shield.audit.record("client.auth.failure", { client: account, addr });
      throw new _OAuthError("invalid_client", "unknown client or wrong client secret", 401);
    }
    guard.succeed(account, addr);
    return { clientId, confidential: true };
  }

  async #token(req: Request, addr: string): Promise<Response> {
    const form = await this.#formOrJson(req);
    const grant = form.get("grant_type") ?? "";
    const client = this.#client(req, form, addr);
    switch (grant) {
      case "authorization_code":
        return this.#tokenFromCode(form, client.clientId, addr);
      case "refresh_token":
        return this.#tokenFromRefresh(form, client.clientId, addr);
      case DEVICE_GRANT:
        return this.#tokenFromDevice(form, client.clientId, addr);
      case "client_credentials": {
        if (!client.confidential) {
          throw new _OAuthError(
            "unauthorized_client",
            "client_credentials needs a confidential client (see `service add-client`)",
          );
        }
        const c = this.#store.getClient(client.clientId)!;
        const scope = _normalizeScope(form.get("scope") ?? FUNCX_SCOPE);
        const t = this.#store.issueTokens({
          userId: c.user_id,
          clientId: c.client_id,
          scope,
          lifetime: this.#lifetime,
          refresh: false,
        });
        this.#log.info("auth", "client %s got a token (client_credentials)", c.name);
        this.#auditIssued(t, { client: c.client_id, grant, addr, scope });
        return this.#tokenResponse(t, scope);
      }
      default:
        throw new _OAuthError(
          "unsupported_grant_type",
          `grant_type must be authorization_code, refresh_token, client_credentials or ${DEVICE_GRANT}, got ${
            JSON.stringify(grant)
          }`,
        );
    }
  }

  #auditIssued(
    t: { accessToken: string; refreshToken?: string },
    fields: Record<string, unknown>,
  ): void {
    this.#shield.audit.record("token.issued", {
      ...fields,
      token_ref: tokenRef(t.accessToken),
      refresh_ref: t.refreshToken ? tokenRef(t.refreshToken) : undefined,
    });
  }

  #tokenFromCode(form: URLSearchParams, clientId: string, addr: string): Response {
    const code = form.get("code") ?? "";
    const verifier = form.get("code_verifier") ?? "";
    if (!code) throw new _OAuthError("invalid_request", "code is required");
    if (!verifier) throw new _OAuthError("invalid_request", "code_verifier is required (PKCE)");
    const row = this.#store.consumeAuthCode(code); // single use, even when the exchange fails
    if (!row || row.expires_at < Date.now() / 1000) {
      throw new _OAuthError("invalid_grant", "authorization code is invalid, expired or used");
    }
    if (row.client_id !== clientId) {
      throw new _OAuthError("invalid_grant", "authorization code was issued to another client");
    }
    if ((form.get("redirect_uri") ?? "") !== row.redirect_uri) {
      throw new _OAuthError("invalid_grant", "redirect_uri does not match the authorize request");
    }
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) {
      throw new _OAuthError(
        "invalid_request",
        "code_verifier must be 43-128 characters of [A-Za-z0-9._~-]",
      );
    }
    if (!safeEqual(pkceChallenge(verifier), row.code_challenge)) {
      this.#log.warn("auth", "PKCE verifier mismatch for client %s", clientId);
      throw new _OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
    }
    const t = this.#store.issueTokens({
      userId: row.user_id,
      clientId,
      scope: row.scope,
      lifetime: this.#lifetime,
      refresh: true,
    });
    const user = this.#store.getUser(row.user_id)?.username;
    this.#auditIssued(t, {
      user,
      client: clientId,
      grant: "authorization_code",
      addr,
      scope: row.scope,
    });
    return this.#tokenResponse(t, row.scope);
  }

  #tokenFromRefresh(form: URLSearchParams, clientId: string, addr: string): Response {
    const refresh = form.get("refresh_token") ?? "";
    if (!refresh) throw new _OAuthError("invalid_request", "refresh_token is required");
    const info = this.#store.lookupToken(refresh, "refresh");
    if (!info || info.clientId !== clientId) {
      throw new _OAuthError("invalid_grant", "refresh token is invalid or revoked");
    }
    let scope = info.scope;
    const asked = form.get("scope");
    if (asked) {
      scope = _normalizeScope(asked);
      const granted = new Set(info.scope.split(" "));
      if (!scope.split(" ").every((s) => granted.has(s))) {
        throw new _OAuthError("invalid_scope", "requested scope exceeds the granted scope");
      }
    }
    const t = this.#store.issueTokens({
      userId: info.userId,
      clientId,
      scope,
      lifetime: this.#lifetime,
      refresh: false,
    });
    this.#auditIssued(t, {
      user: info.username,
      client: clientId,
      grant: "refresh_token",
      addr,
      scope,
    });
    return this.#tokenResponse({ ...t, refreshToken: refresh }, scope);
  }

  #tokenResponse(
    t: { accessToken: string; refreshToken?: string; expiresAt: number },
    scope: string,
  ): Response {
    const body: Record<string, unknown> = {
      access_token: t.accessToken,
      token_type: "Bearer",
      expires_in: Math.max(0, Math.round(t.expiresAt - Date.now() / 1000)),
      scope,
      resource_server: scope.split(" ").includes(FUNCX_SCOPE) ? "funcx_service" : "auth.globus.org",
      other_tokens: [],
    };
    if (t.refreshToken) body.refresh_token = t.refreshToken;
    return json(body);
  }

  // ------------------------------------------------------------------ device grant

  async #deviceAuthorization(req: Request, addr: string): Promise<Response> {
    const form = await this.#formOrJson(req);
    const client = this.#client(req, form, addr);
    const scope = _normalizeScope(form.get("scope") ?? FUNCX_SCOPE);
    const g = this.#devices.create(client.clientId, scope);
    if (!g) {
      throw new _OAuthError(
        "temporarily_unavailable",
        "too many logins are pending; try again later",
        503,
      );
    }
    const verify = new URL("/auth/v2/device", req.url);
    const complete = new URL(verify);
    complete.searchParams.set("user_code", g.userCode);
    return json(
      {
        device_code: g.deviceCode,
        user_code: g.userCode,
        verification_uri: verify.toString(),
        verification_uri_complete: complete.toString(),
        expires_in: g.expiresIn,
        interval: g.interval,
      },
      200,
      { "cache-control": "no-store" },
    );
  }

  /** The approval page: the same CSRF token and cookie as the login form. */
  #deviceForm(
    req: Request,
    p: URLSearchParams,
    error = "",
    status = 200,
    extraHeaders: Record<string, string> = {},
  ): Response {
    const code = normalizeUserCode(p.get("user_code") ?? "");
    const pending = code ? this.#devices.pending(code) : undefined;
    const csrf = this.#shield.csrf.issue(req);
    const err = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : "";
    const what = pending
      ? `<p>A program asks to act as you on this funcX service, with access to:</p>
${_scopeList(pending.scope)}
<p>Approve only if you started <code>funcx-endpoint login</code> yourself and it shows this code.</p>`
      : "<p>Enter the code that <code>funcx-endpoint login</code> printed.</p>";
    return html(
      _page(
        "Approve a funcX login",
        `<h1>Approve a funcX login</h1>
${what}
${err}
<form method="post" action="device">
<input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(csrf.field)}">
<p><label>Code <input name="user_code" id="user_code" value="${
          escapeHtml(code)
        }" autocomplete="off" required></label></p>
<p><label>User name <input name="username" id="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit" name="action" value="approve" id="approve">Approve</button>
<button type="submit" name="action" value="deny" id="deny" formnovalidate>Deny</button></p>
</form>`,
      ),
      status,
      { "set-cookie": csrf.cookie, ...extraHeaders },
    );
  }

  /** Approve (user name and password, under the sign-in limits) or deny a device login. */
  async #deviceSubmit(req: Request, addr: string): Promise<Response> {
    const form = new URLSearchParams(await readBody(req, _FORM_LIMIT));
    const csrfProblem = this.#shield.csrf.verify(req, form.get(CSRF_FIELD));
    if (csrfProblem) {
      this.#log.warn("auth", "device approval refused from %s: %s", addr, csrfProblem);
      return this.#deviceForm(req, form, `Approval refused: ${csrfProblem}.`, 403);
    }
    const code = normalizeUserCode(form.get("user_code") ?? "");
    if (!this.#devices.pending(code)) {
      return this.#deviceForm(req, form, "Unknown or expired code: start the login again.", 400);
    }
    if (form.get("action") === "deny") {
      this.#devices.deny(code);
      this.#log.info("auth", "device login %s denied from %s", code, addr);
      return html(_page("Login denied", `<h1>Login denied</h1><p id="done">Denied.</p>`));
    }
    const signIn = await this.#checkPassword(form, addr, "device", "device login");
    if ("retryAfter" in signIn) {
      return this.#deviceForm(
        req,
        form,
        `Too many failed sign-ins; try again in ${signIn.retryAfter} s.`,
        429,
        { "retry-after": String(signIn.retryAfter) },
      );
    }
    const user = signIn.user;
    if (!user) {
      const denied = this.#devices.failed(code);
      return this.#deviceForm(
        req,
        form,
        denied
          ? "Too many wrong passwords: this login was denied. Start it again."
          : "Invalid user name or password.",
        401,
      );
    }
    this.#devices.approve(code, { id: user.id, username: user.username });
    this.#log.info("auth", "user %s approved device login %s", user.username, code);
    return html(
      _page(
        "Login approved",
        `<h1>Login approved</h1><p id="done">Approved: return to the terminal.</p>`,
      ),
    );
  }

  /**
   * The password check both sign-in forms share: the guard's lock first, the hash off the
   * API thread, then the guard, `locks.json` and the audit log told of the outcome.
   */
  async #checkPassword(
    form: URLSearchParams,
    addr: string,
    client: string,
    what: string,
  ): Promise<{ retryAfter: number } | { user?: { id: number; username: string } }> {
    const username = (form.get("username") ?? "").slice(0, 128);
    const guard = this.#shield.users;
    const verdict = guard.check(username, addr);
    if (!verdict.allowed) {
      const secs = Math.ceil(verdict.retryAfterMs / 1000);
      this.#shield.audit.record("signin.locked", { user: username, addr, retry_after_s: secs });
      return { retryAfter: secs };
    }
    const rec = this.#store.passwordRecord(username);
    const ok = await this.#shield.hasher.verify(form.get("password") ?? "", rec?.record);
    const user = ok ? rec?.user : undefined;
    if (!user) {
      guard.fail(username, addr);
      this.#shield.locksChanged();
      this.#shield.audit.record("signin.failure", { user: username, addr });
      this.#log.warn("auth", "failed %s for user %s from %s", what, JSON.stringify(username), addr);
      return {};
    }
    guard.succeed(username, addr);
    this.#shield.locksChanged();
    this.#shield.audit.record("signin.success", { user: user.username, addr, client });
    return { user };
  }

  #tokenFromDevice(form: URLSearchParams, clientId: string, addr: string): Response {
    const deviceCode = form.get("device_code") ?? "";
    if (!deviceCode) throw new _OAuthError("invalid_request", "device_code is required");
    const r = this.#devices.poll(deviceCode, clientId);
    switch (r.kind) {
      case "pending":
        throw new _OAuthError("authorization_pending", "the login is not approved yet");
      case "slow_down":
        throw new _OAuthError("slow_down", "polling too fast; wait longer between requests");
      case "denied":
        throw new _OAuthError("access_denied", "the login was denied");
      case "expired":
        throw new _OAuthError("expired_token", "the device code expired; start again");
      case "invalid":
        throw new _OAuthError("invalid_grant", "unknown device code or another client's");
    }
    const t = this.#store.issueTokens({
      userId: r.user.id,
      clientId,
      scope: r.scope,
      lifetime: this.#lifetime,
      refresh: true,
    });
    this.#auditIssued(t, {
      user: r.user.username,
      client: clientId,
      grant: DEVICE_GRANT,
      addr,
      scope: r.scope,
    });
    return this.#tokenResponse(t, r.scope);
  }

  // ------------------------------------------------------------------ introspect etc.

  async #introspect(req: Request, addr: string): Promise<Response> {
    const form = await this.#formOrJson(req);
    // The caller is a confidential client (Basic) or holds a valid token itself.
    const header = req.headers.get("authorization") ?? "";
    if (/^Basic\s/i.test(header)) this.#client(req, form, addr);
    else if (/^Bearer\s/i.test(header)) {
      try {
        this.#bearer(req);
      } catch {
        throw new _OAuthError("invalid_client", "introspection needs a valid token", 401);
      }
    } else {
      throw new _OAuthError("invalid_client", "introspection needs client or bearer auth", 401);
    }
    const token = form.get("token") ?? "";
    const info = this.#store.lookupToken(token, "access") ??
      this.#store.lookupToken(token, "refresh");
    if (!info || info.expiresAt <= Date.now() / 1000) return json({ active: false });
    return json({
      active: true,
      scope: info.scope,
      client_id: info.clientId,
      sub: userSub(info.username),
      username: info.username,
      token_type: "Bearer",
      iat: Math.floor(info.issuedAt),
      exp: Number.isFinite(info.expiresAt) ? Math.floor(info.expiresAt) : null,
      aud: ["funcx_service"],
      iss: "funcx-local-auth",
    });
  }

  async #revoke(req: Request, addr: string): Promise<Response> {
    const form = await this.#formOrJson(req);
    const client = this.#client(req, form, addr);
    const token = form.get("token") ?? "";
    const info = this.#store.lookupToken(token, "access") ??
      this.#store.lookupToken(token, "refresh");
    this.#store.revokeToken(token);
    if (info) {
      this.#shield.audit.record("token.revoked", {
        user: info.username,
        client: client.clientId,
        addr,
        token_ref: tokenRef(token),
      });
    }
    return json({ active: false });
  }

  #userinfo(req: Request): Response {
    let info: TokenInfo;
    try {
      info = this.#bearer(req);
    } catch (e) {
      return json(
        { error: "invalid_token", error_description: (e as ApiError).reason ?? "invalid token" },
        401,
        { "www-authenticate": 'Bearer error="invalid_token"' },
      );
    }
    const scopes = info.scope.split(" ");
    const body: Record<string, unknown> = {
      sub: userSub(info.username),
      preferred_username: info.username,
      name: info.username,
      identity_provider: "funcx-local",
      // only a token granted the email scope may read the address
      email: scopes.includes("email")
        ? (this.#store.sharing.identity(info.userId)?.email ?? null)
        : null,
      scope: info.scope,
    };
    return json(body);
  }
}

function _normalizeScope(raw: string): string {
  const parts = raw.split(/[\s+]+/).filter(Boolean);
  if (parts.length === 0) throw new _OAuthError("invalid_scope", "scope must not be empty");
  for (const s of parts) {
    if (!KNOWN_SCOPES.has(s)) {
      throw new _OAuthError(
        "invalid_scope",
        `unknown scope ${JSON.stringify(s)}; known: ${[...KNOWN_SCOPES].join(", ")}`,
      );
    }
  }
  return [...new Set(parts)].join(" ");
}

/**
 * Redirect URIs: this server's own paste-the-code page (on any loopback host or the
 * host the request came to) or an http loopback URL (native apps with a local server).
 */
function _checkRedirectUri(uri: string, req: Request): void {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new _OAuthError("invalid_request", `redirect_uri ${JSON.stringify(uri)} is not a URL`);
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
  const sameHost = u.host === new URL(req.url).host;
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new _OAuthError("invalid_request", "redirect_uri must be an http(s) URL");
  }
  if (u.pathname === "/auth/v2/web/auth-code" && (loopback || sameHost)) return;
  if (u.pathname === "/dashboard/callback" && sameHost) return; // the web dashboard
  if (loopback && u.protocol === "http:") return;
  throw new _OAuthError(
    "invalid_request",
    `redirect_uri ${
      JSON.stringify(uri)
    } is not allowed; use <auth_address>/v2/web/auth-code or an http loopback URL`,
  );
}

/** The `<ul id="scopes">` of a consent page: each scope in plain words, then its name. */
function _scopeList(scope: string): string {
  const items = scope.split(" ").map((s) =>
    `<li class="scope" data-scope="${escapeHtml(s)}">${
      escapeHtml(SCOPE_DESCRIPTIONS.get(s) ?? s)
    } <small><code>${escapeHtml(s)}</code></small></li>`
  );
  return `<ul id="scopes">\n${items.join("\n")}\n</ul>`;
}
function _page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}code{font-size:1.1em;word-break:break-all}#error{color:#b00}</style>
</head><body>
${body}
</body></html>
`;
}

function _errorPage(message: string): Response {
  return html(
    _page("funcX login error", `<h1>Login error</h1><p id="error">${escapeHtml(message)}</p>`),
    400,
  );
}
