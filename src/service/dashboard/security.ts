/**
 * Browser-facing security pieces of the dashboard. The headers and cookie parsing are the
 * service's (`page_security.ts`) with a CSP that lets the page run its own script; the
 * session cookie (HttpOnly, SameSite=Strict, Secure and `__Host-` on https) and the CSRF
 * check are the dashboard's, because its token is bound to the signed-in session (a
 * synchronizer token in the form + same-origin `Origin`/`Sec-Fetch-Site`).
 *
 * @example
 * ```ts
 * import { cookieHeader, readCookie, securityHeaders } from "./security.ts";
 * const h = securityHeaders({ tls: false });
 * const set = cookieHeader("sid", "abc", { secure: false, maxAge: 3600 });
 * readCookie(new Request("http://x/", { headers: { cookie: "sid=abc" } }), "sid"); // "abc"
 * ```
 * @module
 */
import { safeEqual } from "../secrets.ts";
import { cookieValue, securityHeaders as pageHeaders } from "../page_security.ts";

/** The dashboard's CSP: its own script, stylesheet and JSON only; no inline anything. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * Headers every dashboard response carries: the service's page headers
 * (`page_security.ts`: frame-ancestors, no-referrer, nosniff, HSTS over TLS) with the
 * dashboard's CSP.
 *
 * @example
 * ```ts
 * securityHeaders({ tls: false })["referrer-policy"]; // "no-referrer"
 * ```
 */
export function securityHeaders(opts: { tls?: boolean } = {}): Record<string, string> {
  return { ...pageHeaders(opts), "content-security-policy": DASHBOARD_CSP };
}

/** Is the request served over https (directly)? */
export function isHttps(req: Request): boolean {
  return new URL(req.url).protocol === "https:";
}

/**
 * The cookie name: `__Host-` prefixed on https (browser-enforced Secure, no Domain, Path=/).
 *
 * @example
 * ```ts
 * cookieName("funcx_session", true); // "__Host-funcx_session"
 * ```
 */
export function cookieName(base: string, secure: boolean): string {
  return secure ? `__Host-${base}` : base;
}

/**
 * A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when `secure`.
 * `maxAge` 0 deletes the cookie.
 *
 * @example
 * ```ts
 * cookieHeader("sid", "", { secure: false, maxAge: 0 }); // "sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
 * ```
 */
export function cookieHeader(
  name: string,
  value: string,
  opts: { secure: boolean; maxAge: number },
): string {
  return `${name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(opts.maxAge))}; HttpOnly; ` +
    `SameSite=Strict${opts.secure ? "; Secure" : ""}`;
}

/**
 * A cookie of the request, or undefined.
 *
 * @example
 * ```ts
 * readCookie(new Request("http://x/", { headers: { cookie: "a=1; b=2" } }), "b"); // "2"
 * ```
 */
export function readCookie(req: Request, name: string): string | undefined {
  return cookieValue(req, name);
}

/**
 * May this state-changing request proceed? The form's CSRF token must equal the session's,
 * and a browser-sent `Origin` / `Sec-Fetch-Site` must say same origin. Returns the reason
 * when not.
 *
 * @example
 * ```ts ignore
 * csrfProblem(req, "token-from-session", form.get("csrf")); // null when fine
 * ```
 */
export function csrfProblem(
  req: Request,
  expected: string,
  given: string | null | undefined,
): string | null {
  const origin = req.headers.get("origin");
  // A page under `Referrer-Policy: no-referrer` makes the browser send `Origin: null` even
  // for its own forms; then Sec-Fetch-Site and the token decide.
  if (origin !== null && origin !== "null" && origin !== new URL(req.url).origin) {
    return `cross-origin request from ${origin}`;
  }
  const site = req.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    return `cross-site request (${site})`;
  }
  if (!given || !safeEqual(given, expected)) return "missing or wrong CSRF token";
  return null;
}
