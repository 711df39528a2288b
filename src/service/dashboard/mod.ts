/**
 * The web dashboard under `/dashboard/`: sign-in through the service's own OAuth2 server
 * (authorization code + PKCE, the dashboard is the client and keeps the tokens server-side),
 * a session cookie, sign-out, and the pages of `pages.ts` over the data of `data.ts`.
 * Every route applies the HTTP API's ownership and sharing rules; a task or endpoint the
 * viewer may not see answers 404, exactly like one that does not exist.
 *
 * @example
 * ```ts ignore
 * // in the service's HTTP handler (service.ts)
 * import { Dashboard } from "./dashboard/mod.ts";
 * const dash = new Dashboard({ store, auth, forwarder, log });
 * if (path === "/dashboard" || path.startsWith("/dashboard/")) return dash.handle(req, info);
 * ```
 * @module
 */
import { FUNCX_SCOPE, NATIVE_CLIENT_ID } from "../../config/types.ts";
import type { Logger } from "../../daemon/log.ts";
import type { AuthServer } from "../auth.ts";
import type { Forwarder } from "../forwarder.ts";
import { readBody } from "../http.ts";
import type { ServiceStore } from "../store.ts";
import { DASHBOARD_CSS, DASHBOARD_JS } from "./assets.ts";
import { functionNames, visibleEndpoint, visibleEndpoints, visibleTask } from "./data.ts";
import { endpointSeries } from "./metrics.ts";
import {
  BASE,
  endpointPage,
  messagePage,
  overviewPage,
  type TaskListQuery,
  taskPage,
  tasksPage,
  type Viewer,
} from "./pages.ts";
import {
  cookieHeader,
  cookieName,
  csrfProblem,
  isHttps,
  readCookie,
  securityHeaders,
} from "./security.ts";
import { LOGIN_MAX_AGE, type Session, SessionStore } from "./session.ts";

/** Options of {@linkcode Dashboard}. */
export interface DashboardOptions {
  store: ServiceStore;
  auth: AuthServer;
  forwarder: Forwarder;
  log: Logger;
  /** Served over TLS (adds HSTS). */
  tls?: boolean;
  /** Clock, epoch seconds (default: the wall clock). */
  now?: () => number;
}

/** Tasks per page of the task list. */
export const PAGE_SIZE = 50;
const _UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const _WINDOW = 3600;
const _STEP = 60;

/** The dashboard. */
export class Dashboard {
  #store: ServiceStore;
  #auth: AuthServer;
  #fwd: Forwarder;
  #log: Logger;
  #now: () => number;
  #sessions: SessionStore;
  #headers: Record<string, string>;

  constructor(opts: DashboardOptions) {
    this.#headers = securityHeaders({ tls: opts.tls });
    this.#store = opts.store;
    this.#auth = opts.auth;
    this.#fwd = opts.forwarder;
    this.#log = opts.log;
    this.#now = opts.now ?? (() => Date.now() / 1000);
    this.#sessions = new SessionStore({ now: this.#now });
  }

  /** Does `path` belong to the dashboard? */
  static owns(path: string): boolean {
    return path === BASE || path.startsWith(BASE + "/");
  }

  /** Routes anyone may hit without a session (rate-limited like the sign-in pages). */
  static isSignInRoute(path: string): boolean {
    return path === `${BASE}/login` || path === `${BASE}/callback`;
  }

  /** Handle a request below `/dashboard`. */
  async handle(req: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.slice(BASE.length).replace(/\/+$/, "") || "/";
    try {
      const addr = (info.remoteAddr as Deno.NetAddr).hostname ?? "unknown";
      if (req.method === "POST" && path === "/logout") return await this.#logout(req, addr);
      if (req.method !== "GET" && req.method !== "HEAD") {
        return this.#html(
          messagePage(null, "Not allowed", `${req.method} is not allowed here.`),
          405,
          {
            allow: "GET, HEAD",
          },
        );
      }
      if (url.pathname === BASE) return this.#redirect(`${BASE}/`);
      if (path === "/static/dashboard.js") {
        return this.#asset(DASHBOARD_JS, "text/javascript; charset=utf-8");
      }
      if (path === "/static/dashboard.css") {
        return this.#asset(DASHBOARD_CSS, "text/css; charset=utf-8");
      }
      if (path === "/login") return this.#login(req);
      if (path === "/callback") return await this.#callback(req, url, addr);
      const session = this.#session(req);
      const viewer: Viewer | null = session
        ? { username: session.username, csrf: session.csrf }
        : null;
      if (path === "/") return this.#overview(info, session, viewer);
      if (!session || !viewer) {
        if (path.startsWith("/api/")) return this.#json({ error: "sign in first" }, 401);
        return this.#redirect(`${BASE}/login`);
      }
      if (path === "/tasks") return this.#tasks(url, session, viewer);
      if (path === "/api/metrics") return this.#metrics(url, session);
      let m = /^\/tasks\/([^/]+)$/.exec(path);
      if (m) return this.#task(_decode(m[1]), session, viewer);
      m = /^\/endpoints\/([^/]+)$/.exec(path);
      if (m) return this.#endpoint(_decode(m[1]), session, viewer);
      return this.#html(messagePage(viewer, "Not found", "No such page."), 404);
    } catch (e) {
      this.#log.error("dashboard", "error on %s: %s", url.pathname, (e as Error)?.stack ?? e);
      return this.#html(messagePage(null, "Error", "Internal error."), 500);
    }
  }

  // ------------------------------------------------------------------ sessions

  #session(req: Request): Session | undefined {
    const s = this.#sessions.get(readCookie(req, cookieName("funcx_session", isHttps(req))));
    if (!s) return undefined;
    try {
      // the same check as every API call: the token still valid, unrevoked, funcX scope
      this.#auth.authenticate(
        new Request("http://dashboard.invalid/", {
          headers: { authorization: `Bearer ${s.accessToken}` },
        }),
      );
    } catch {
      this.#sessions.delete(s.id);
      return undefined;
    }
    return s;
  }

  #login(req: Request): Response {
    const p = this.#sessions.beginLogin();
    const origin = new URL(req.url).origin;
    const target = new URL(`${origin}/auth/v2/oauth2/authorize`);
    target.searchParams.set("client_id", NATIVE_CLIENT_ID);
    target.searchParams.set("redirect_uri", `${origin}${BASE}/callback`);
    target.searchParams.set("response_type", "code");
    target.searchParams.set("scope", `${FUNCX_SCOPE} openid`);
    target.searchParams.set("state", p.state);
    target.searchParams.set("code_challenge", p.challenge);
    target.searchParams.set("code_challenge_method", "S256");
    return this.#redirect(target.toString(), {
      "set-cookie": cookieHeader(cookieName("funcx_login", isHttps(req)), p.id, {
        secure: isHttps(req),
        maxAge: LOGIN_MAX_AGE,
      }),
    });
  }

  async #callback(req: Request, url: URL, addr: string): Promise<Response> {
    const secure = isHttps(req);
    const loginCookie = cookieName("funcx_login", secure);
    const clear = cookieHeader(loginCookie, "", { secure, maxAge: 0 });
    const pending = this.#sessions.takeLogin(readCookie(req, loginCookie));
    const state = url.searchParams.get("state") ?? "";
    const code = url.searchParams.get("code") ?? "";
    const fail = (why: string) =>
      this.#html(
        messagePage(null, "Sign-in failed", `${why} Start again from the sign-in link.`),
        400,
        { "set-cookie": clear },
      );
    if (!pending) return fail("This sign-in expired or was not started here.");
    if (state !== pending.state) return fail("The sign-in state does not match.");
    if (!code) return fail("No authorization code came back.");
    const origin = url.origin;
    const form = new URLSearchParams({
      grant_type: "authorization_code",
      client_id: NATIVE_CLIENT_ID,
      code,
      code_verifier: pending.verifier,
      redirect_uri: `${origin}${BASE}/callback`,
    });
    // the token endpoint of this very service, called in-process (same code path as HTTP)
    const res = await this.#auth.handle(
      new Request(`${origin}/auth/v2/oauth2/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
      }),
      "/v2/oauth2/token",
      addr,
    );
    const body = await res.json() as Record<string, unknown>;
    if (!res.ok || typeof body.access_token !== "string") {
      return fail(`The code was refused (${String(body.error_description ?? res.status)}).`);
    }
    const access = body.access_token;
    const info = this.#auth.authenticate(
      new Request("http://dashboard.invalid/", { headers: { authorization: `Bearer ${access}` } }),
    );
    const session = this.#sessions.create({
      userId: info.userId,
      username: info.username,
      accessToken: access,
      refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : null,
      expiresAt: info.expiresAt,
    });
    this.#log.info("dashboard", "user %s signed in", info.username);
    const headers = new Headers();
    headers.append("set-cookie", clear);
    headers.append(
      "set-cookie",
      cookieHeader(cookieName("funcx_session", secure), session.id, {
        secure,
        maxAge: this.#sessions.remaining(session),
      }),
    );
    return this.#redirect(`${BASE}/`, headers);
  }

  async #logout(req: Request, addr: string): Promise<Response> {
    const secure = isHttps(req);
    const session = this.#session(req);
    const form = new URLSearchParams(await readBody(req, 16 * 1024));
    if (!session) return this.#redirect(`${BASE}/`);
    const problem = csrfProblem(req, session.csrf, form.get("csrf"));
    if (problem) {
      this.#log.warn("dashboard", "refused sign-out for %s: %s", session.username, problem);
      return this.#html(
        messagePage(null, "Refused", `Sign-out refused: ${problem}.`),
        403,
      );
    }
    // through the auth server's revocation endpoint, in-process (audited like any revocation)
    for (const token of [session.accessToken, session.refreshToken]) {
      if (!token) continue;
      const res = await this.#auth.handle(
        new Request(`${new URL(req.url).origin}/auth/v2/oauth2/token/revoke`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ client_id: NATIVE_CLIENT_ID, token }).toString(),
        }),
        "/v2/oauth2/token/revoke",
        addr,
      );
      await res.body?.cancel();
      if (!res.ok) this.#log.warn("dashboard", "revoking a token at sign-out: HTTP %d", res.status);
    }
    this.#sessions.delete(session.id);
    this.#log.info("dashboard", "user %s signed out", session.username);
    return this.#redirect(`${BASE}/`, {
      "set-cookie": cookieHeader(cookieName("funcx_session", secure), "", { secure, maxAge: 0 }),
    });
  }

  // ------------------------------------------------------------------ pages

  #overview(
    info: Deno.ServeHandlerInfo,
    session: Session | undefined,
    viewer: Viewer | null,
  ): Response {
    if (!session) {
      // anonymous: the service-wide counts, to local users only (as the status page)
      return this.#html(overviewPage({
        user: null,
        counts: this.#store.taskCounts(),
        showCounts: _isLoopback(info),
      }));
    }
    const now = this.#now();
    const endpoints = visibleEndpoints(this.#store, this.#fwd, session.userId, now);
    const recent = this.#store.taskLog.query({ userId: session.userId }, 0, 20).rows;
    return this.#html(overviewPage({
      user: viewer,
      counts: this.#store.taskCounts(session.userId),
      showCounts: true,
      endpoints,
      recent,
      functions: functionNames(this.#store, session.userId, recent.map((t) => t.function_uuid)),
    }));
  }

  #endpoint(id: string, session: Session, viewer: Viewer): Response {
    const ep = _UUID.test(id)
      ? visibleEndpoint(this.#store, this.#fwd, session.userId, id, this.#now())
      : undefined;
    if (!ep) return this.#notFound(viewer, "endpoint");
    const recent = this.#store.taskLog.query({ userId: session.userId, endpoint: ep.uuid }, 0, 20);
    const fns = functionNames(this.#store, session.userId, recent.rows.map((t) => t.function_uuid));
    return this.#html(endpointPage(viewer, ep, recent.rows, fns));
  }

  #tasks(url: URL, session: Session, viewer: Viewer): Response {
    const p = url.searchParams;
    const page = Math.max(1, Math.min(1e6, Math.floor(Number(p.get("page") ?? "1")) || 1));
    const q: TaskListQuery = {
      endpoint: (p.get("endpoint") ?? "").trim().toLowerCase(),
      function: (p.get("function") ?? "").trim().toLowerCase(),
      status: (p.get("status") ?? "").trim(),
      since: (p.get("since") ?? "").trim(),
      page,
    };
    const minutes = Number(q.since);
    const rows = this.#store.taskLog.query(
      {
        userId: session.userId,
        endpoint: q.endpoint || undefined,
        function: q.function || undefined,
        status: q.status || undefined,
        since: q.since && Number.isFinite(minutes) && minutes > 0
          ? this.#now() - minutes * 60
          : undefined,
      },
      (page - 1) * PAGE_SIZE,
      PAGE_SIZE,
    );
    const endpoints = visibleEndpoints(this.#store, this.#fwd, session.userId, this.#now());
    const fns = functionNames(
      this.#store,
      session.userId,
      this.#store.taskLog.functionsOf(session.userId),
    );
    return this.#html(tasksPage(viewer, q, endpoints, rows, PAGE_SIZE, fns));
  }

  #task(id: string, session: Session, viewer: Viewer): Response {
    const v = _UUID.test(id) ? visibleTask(this.#store, session.userId, id) : undefined;
    if (!v) return this.#notFound(viewer, "task");
    return this.#html(taskPage(viewer, v));
  }

  #metrics(url: URL, session: Session): Response {
    const now = this.#now();
    const asked = url.searchParams.get("endpoint");
    let eps;
    if (asked) {
      const ep = _UUID.test(asked)
        ? visibleEndpoint(this.#store, this.#fwd, session.userId, asked, now)
        : undefined;
      if (!ep) return this.#json({ error: `no endpoint ${asked} that you may use` }, 404);
      eps = [ep];
    } else {
      eps = visibleEndpoints(this.#store, this.#fwd, session.userId, now);
    }
    const since = now - _WINDOW;
    const finished = this.#store.taskLog.finishedSince(eps.map((e) => e.uuid), since);
    return this.#json({
      now,
      window: _WINDOW,
      step: _STEP,
      endpoints: eps.map((ep) => ({
        uuid: ep.uuid,
        name: ep.name,
        series: endpointSeries({
          now,
          window: _WINDOW,
          step: _STEP,
          finished: finished.filter((f) => f.endpoint_uuid === ep.uuid),
          reports: this.#store.statusSince(ep.uuid, since),
        }),
      })),
    });
  }

  #notFound(viewer: Viewer, what: string): Response {
    return this.#html(
      messagePage(viewer, "Not found", `No such ${what}, or it is not yours to see.`),
      404,
    );
  }

  #redirect(location: string, headers: HeadersInit = {}): Response {
    const h = new Headers(this.#headers);
    h.set("location", location);
    for (const [k, v] of new Headers(headers)) h.append(k, v);
    return new Response(null, { status: 303, headers: h });
  }

  #json(body: unknown, status = 200): Response {
    return new Response(JSON.stringify(body), {
      status,
      headers: { ...this.#headers, "content-type": "application/json" },
    });
  }

  #asset(text: string, type: string): Response {
    return new Response(text, {
      headers: { ...this.#headers, "content-type": type, "cache-control": "no-cache" },
    });
  }

  #html(body: string, status = 200, headers: HeadersInit = {}): Response {
    const h = new Headers(this.#headers);
    h.set("content-type", "text/html; charset=utf-8");
    for (const [k, v] of new Headers(headers)) h.append(k, v);
    return new Response(body, { status, headers: h });
  }
}

/** A path segment decoded; malformed escapes give "" (then: not found). */
function _decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return "";
  }
}

function _isLoopback(info: Deno.ServeHandlerInfo): boolean {
  const remote = (info.remoteAddr as Deno.NetAddr).hostname ?? "";
  return remote === "::1" || remote.startsWith("127.") || remote === "::ffff:127.0.0.1";
}
