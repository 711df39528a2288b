/**
 * Browser-facing protections shared by every HTML page of the service: security headers
 * (CSP with `frame-ancestors 'none'`, `X-Frame-Options`, `Referrer-Policy: no-referrer`,
 * `nosniff`, HSTS over TLS) and CSRF tokens for forms (a random nonce in a `SameSite=Strict`,
 * `HttpOnly` cookie, its HMAC in a hidden field, and a same-origin check of `Origin` /
 * `Sec-Fetch-Site`).
 *
 * @example
 * ```ts ignore
 * import { CsrfGuard, securityHeaders } from "./page_security.ts";
 * const csrf = new CsrfGuard();
 * const { field, cookie } = csrf.issue(req);           // put `field` in the form, set `cookie`
 * const problem = csrf.verify(req, form.get(CSRF_FIELD)); // undefined when the POST is genuine
 * new Response(page, { headers: { ...securityHeaders(), "set-cookie": cookie } });
 * ```
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Name of the hidden form field carrying the CSRF token. */
export const CSRF_FIELD = "csrf_token";
/** Name of the CSRF cookie. */
export const CSRF_COOKIE = "funcx_csrf";

/**
 * Security headers for an HTML page. `tls` adds HSTS.
 *
 * @example
 * ```ts
 * securityHeaders()["x-content-type-options"]; // "nosniff"
 * ```
 */
export function securityHeaders(opts: { tls?: boolean } = {}): Record<string, string> {
  const h: Record<string, string> = {
    "content-security-policy":
      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; " +
      "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
  };
  if (opts.tls) h["strict-transport-security"] = "max-age=31536000";
  return h;
}

/** The value of cookie `name` in a request, if any. */
export function cookieValue(req: Request, name: string): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Issues and checks CSRF tokens; one key per service run (tokens die with a restart). */
export class CsrfGuard {
  #key: Buffer;

  constructor(key: Uint8Array = randomBytes(32)) {
    this.#key = Buffer.from(key);
  }

  #mac(nonce: string): string {
    return createHmac("sha256", this.#key).update(`csrf:${nonce}`).digest("base64url");
  }

  /**
   * A token for a form: reuses the request's cookie nonce when it has a valid one.
   * `field` goes in the hidden input, `cookie` in a `Set-Cookie` header.
   *
   * @example
   * ```ts ignore
   * const { field, cookie } = csrf.issue(req);
   * ```
   */
  issue(req: Request): { field: string; cookie: string } {
    let nonce = cookieValue(req, CSRF_COOKIE);
    if (!nonce || !/^[A-Za-z0-9_-]{22,64}$/.test(nonce)) {
      nonce = randomBytes(18).toString("base64url");
    }
    const secure = new URL(req.url).protocol === "https:" ? "; Secure" : "";
    return {
      field: this.#mac(nonce),
      cookie: `${CSRF_COOKIE}=${nonce}; Path=/auth; HttpOnly; SameSite=Strict${secure}`,
    };
  }

  /**
   * Why a form POST is not genuine, or `undefined` when it is: the origin must be this
   * service (when the browser says), the cookie present, and the field its HMAC.
   *
   * @example
   * ```ts ignore
   * csrf.verify(req, form.get(CSRF_FIELD)); // "the form was not sent from this site"
   * ```
   */
  verify(req: Request, field: string | null | undefined): string | undefined {
    const url = new URL(req.url);
    const origin = req.headers.get("origin");
    if (origin && origin !== "null" && origin !== url.origin) {
      return "the form was not sent from this site (Origin mismatch)";
    }
    const site = req.headers.get("sec-fetch-site");
    // Under `Referrer-Policy: no-referrer` a browser sends `Origin: null` even for the page's
    // own form; then only its `Sec-Fetch-Site: same-origin` (which no page can set) vouches.
    if (origin === "null" && site !== "same-origin") {
      return "the form was not sent from this site (opaque Origin)";
    }
    if (site && site !== "same-origin" && site !== "none") {
      return `the form was not sent from this site (Sec-Fetch-Site: ${site})`;
    }
    const nonce = cookieValue(req, CSRF_COOKIE);
    if (!nonce) return "the form's session cookie is missing; reload the login page";
    if (!field) return "the form has no CSRF token; reload the login page";
    const want = Buffer.from(this.#mac(nonce));
    const got = Buffer.from(field);
    if (want.length !== got.length || !timingSafeEqual(want, got)) {
      return "the form's CSRF token does not match; reload the login page";
    }
    return undefined;
  }
}
