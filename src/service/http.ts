/**
 * Small HTTP helpers of the local service: JSON responses, a size-capped body reader
 * (5 MiB like upstream), HTML escaping and a tiny path router.
 *
 * @example
 * ```ts
 * import { json, readBody, MAX_BODY } from "./http.ts";
 * const res = json({ ok: true });           // 200 application/json
 * const text = await readBody(new Request("http://x/", { method: "POST", body: "{}" }));
 * ```
 * @module
 */
import { ApiError, ErrorCode } from "./errors.ts";
import { securityHeaders } from "./page_security.ts";

/** Largest accepted request body (bytes), as upstream's SDK limit. */
export const MAX_BODY = 5 * 1024 * 1024;

/**
 * A JSON response.
 *
 * @example
 * ```ts
 * json({ a: 1 }, 201).status; // 201
 * ```
 */
export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

/**
 * An HTML response with the security headers of every page (see page_security.ts).
 *
 * @example
 * ```ts
 * html("<p>hi</p>").headers.get("content-type"); // "text/html; charset=utf-8"
 * ```
 */
export function html(body: string, status = 200, headers: HeadersInit = {}): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      ...securityHeaders(),
      ...headers,
    },
  });
}

/**
 * Escape text for HTML content and attribute values.
 *
 * @example
 * ```ts
 * escapeHtml('<a href="x">'); // "&lt;a href=&quot;x&quot;&gt;"
 * ```
 */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/**
 * Read a request body as text, refusing more than `limit` bytes (413 error record).
 *
 * @example
 * ```ts
 * await readBody(new Request("http://x/", { method: "POST", body: "abc" })); // "abc"
 * ```
 */
export async function readBody(req: Request, limit = MAX_BODY): Promise<string> {
  const tooBig = () =>
    new ApiError(
      ErrorCode.RequestMalformed,
      `Request body exceeds the ${limit} byte limit`,
      [limit],
      413,
    );
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) {
    await req.body?.cancel().catch(() => {});
    throw tooBig();
  }
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooBig();
    }
    chunks.push(value);
  }
  const buf = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    buf.set(c, off);
    off += c.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new ApiError(ErrorCode.RequestMalformed, "Request body is not valid UTF-8");
  }
}

/**
 * Read and parse a JSON object body; clear errors for bad JSON or a non-object.
 *
 * @example
 * ```ts
 * await readJsonObject(new Request("http://x/", { method: "POST", body: '{"a":1}' })); // {a: 1}
 * ```
 */
export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(
      ErrorCode.RequestMalformed,
      `Request body is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError(ErrorCode.RequestMalformed, "Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** A route handler: gets the request and the path parameters. */
export type Handler = (req: Request, params: string[]) => Response | Promise<Response>;

/** Method + path pattern → handler. Patterns use `:param` segments. */
export class Router {
  #routes: { method: string; re: RegExp; handler: Handler }[] = [];

  /**
   * Add a route.
   *
   * @example
   * ```ts
   * const r = new Router();
   * r.add("GET", "/tasks/:id", (_req, [id]) => json({ id }));
   * ```
   */
  add(method: string, pattern: string, handler: Handler): this {
    const re = new RegExp(
      "^" + pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[a-z_]+/g, "([^/]+)") +
        "/?$",
    );
    this.#routes.push({ method, re, handler });
    return this;
  }

  /** Find the handler; `allowed` lists methods of paths that matched another method. */
  match(
    method: string,
    path: string,
  ): { handler: Handler; params: string[] } | { allowed: string[] } {
    const allowed: string[] = [];
    for (const r of this.#routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.method !== method) {
        allowed.push(r.method);
        continue;
      }
      const params = m.slice(1).map((x) => {
        try {
          return decodeURIComponent(x);
        } catch {
          throw new ApiError(
            ErrorCode.RequestMalformed,
            `Malformed percent-encoding in the path: ${JSON.stringify(x.slice(0, 100))}`,
          );
        }
      });
      return { handler: r.handler, params };
    }
    return { allowed };
  }
}
