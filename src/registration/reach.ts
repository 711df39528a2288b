/**
 * Can the funcX service be reached, and if not, why: name not found, connection refused,
 * TLS, timeout or an HTTP status, in one line (instead of `fetch failed`).
 *
 * @example
 * ```ts
 * import { probeService } from "./reach.ts";
 * const problem = await probeService("http://127.0.0.1:8400/v2", 5000);
 * if (problem) console.error(problem); // "connection refused by 127.0.0.1:8400 ..."
 * ```
 * @module
 */
import { trustedFetch } from "../config/trust.ts";

/**
 * The real cause of a failed `fetch` to `url`, in one line.
 *
 * @example
 * ```ts ignore
 * describeFetchError(err, "http://nope.invalid/v2"); // 'host "nope.invalid" not found (DNS)'
 * ```
 */
export function describeFetchError(e: unknown, url: string): string {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch { /* shown as given */ }
  const host = u?.hostname ?? url;
  const hostPort = u ? `${u.hostname}:${u.port || (u.protocol === "https:" ? 443 : 80)}` : url;
  const err = e as Error & { cause?: unknown };
  // trustedFetch already named a certificate problem (expired, wrong host, unknown CA)
  if (typeof err?.message === "string" && err.message.startsWith("TLS: ")) return err.message;
  if (err?.name === "TimeoutError" || err?.name === "AbortError") {
    return `no answer from ${hostPort} (timed out)`;
  }
  const detail = [err?.message, (err?.cause as Error)?.message ?? err?.cause]
    .filter((x) => typeof x === "string" && x && x !== "fetch failed").join(": ");
  const d = detail.toLowerCase();
  if (/dns error|failed to lookup|name or service not known|no address associated/.test(d)) {
    return `host "${host}" not found (DNS lookup failed)`;
  }
  if (/connection refused/.test(d)) {
    return `connection refused by ${hostPort}: nothing listens there`;
  }
  if (/timed out|timeout/.test(d)) return `no answer from ${hostPort} (timed out)`;
  if (/unreachable/.test(d)) return `${hostPort} is unreachable: ${_tail(detail)}`;
  if (/certificate|tls|ssl|handshake|invalidcontenttype|corrupt message/.test(d)) {
    return `TLS handshake with ${hostPort} failed: ${_tail(detail)}`;
  }
  return detail ? _tail(detail) : String(e);
}

/** The innermost part of a chained error text ("a: b: c" -> "c" for long chains). */
function _tail(detail: string): string {
  const parts = detail.split(/: (?=[a-z])/i);
  return parts.length > 2 ? parts.slice(-2).join(": ") : detail;
}

/**
 * `GET {serviceAddress}/version` within `timeoutMs` (with the configured CA bundle): `undefined` when the service answers,
 * else why not (one line).
 *
 * @example
 * ```ts
 * await probeService("http://127.0.0.1:8400/v2", 5000); // undefined when it is up
 * ```
 */
export async function probeService(
  serviceAddress: string,
  timeoutMs: number,
): Promise<string | undefined> {
  const url = `${serviceAddress.replace(/\/+$/, "")}/version`;
  let res: Response;
  try {
    res = await trustedFetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    return describeFetchError(e, url);
  }
  await res.body?.cancel();
  if (res.ok) return undefined;
  return `HTTP ${res.status} ${res.statusText} from ${url}` +
    (res.status === 404 ? " (is it a funcX service address ending in /v2?)" : "");
}
