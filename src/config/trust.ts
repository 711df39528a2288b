/**
 * Which certificate authorities HTTPS requests to the funcX service and auth server trust,
 * and one-line explanations of certificate failures.
 *
 * The CA bundle comes from `ca_file` in the global `config.yaml`, else the first of the
 * environment variables `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` that is set;
 * it is trusted in addition to the system roots. Without one, the system roots only.
 *
 * @example
 * ```ts
 * import { setTrustHome, trustedFetch } from "./trust.ts";
 * setTrustHome("/home/u/.funcx");          // once, at start-up (the CLI does it)
 * const res = await trustedFetch("https://funcx.site.edu/v2/version");
 * ```
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { X509Certificate } from "node:crypto";

/** Environment variables naming a CA bundle, in the order they are looked at. */
export const CA_ENV_VARS: readonly string[] = [
  "SSL_CERT_FILE",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
];

/** A CA bundle that cannot be used (a one-line message naming the file). */
export class TrustError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrustError";
  }
}

/**
 * Where the CA bundle comes from: `caFile` (from the config, relative to `home`), else
 * the environment. Pure.
 *
 * @example
 * ```ts
 * caSource({ caFile: null, env: { SSL_CERT_FILE: "/etc/site-ca.pem" } });
 * // { path: "/etc/site-ca.pem", from: "SSL_CERT_FILE" }
 * ```
 */
export function caSource(
  input: { caFile?: string | null; home?: string; env: Record<string, string | undefined> },
): { path: string; from: string } | undefined {
  if (input.caFile) {
    const path = isAbsolute(input.caFile) || !input.home
      ? input.caFile
      : join(input.home, input.caFile);
    return { path, from: "ca_file in config.yaml" };
  }
  for (const name of CA_ENV_VARS) {
    const v = input.env[name];
    if (v) return { path: resolve(v), from: name };
  }
  return undefined;
}

/**
 * The PEM certificates of a bundle file; {@linkcode TrustError} when it is unreadable or
 * holds no valid certificate.
 *
 * @example
 * ```ts
 * readCaBundle("/etc/site-ca.pem", "SSL_CERT_FILE").length; // 1
 * ```
 */
export function readCaBundle(path: string, from: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new TrustError(`CA bundle ${path} (${from}) cannot be read: ${(e as Error).message}`);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) {
    throw new TrustError(`CA bundle ${path} (${from}) holds no PEM certificate`);
  }
  for (const [i, pem] of pems.entries()) {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw new TrustError(
        `CA bundle ${path} (${from}): certificate ${i + 1} is not valid: ${(e as Error).message}`,
      );
    }
  }
  return pems;
}

/**
 * One line saying why an HTTPS connection to `url` failed, or `undefined` when `error` is
 * not a certificate problem. Pure.
 *
 * @example
 * ```ts
 * describeTlsError(new Error("invalid peer certificate: UnknownIssuer"), "https://h/v2");
 * // "TLS: the certificate of h is signed by an unknown CA; ..."
 * ```
 */
export function describeTlsError(error: unknown, url: string): string | undefined {
  const text = _chain(error);
  let host = url;
  try {
    host = new URL(url).host;
  } catch { /* keep url */ }
  const fix = `set ca_file in config.yaml or ${CA_ENV_VARS[0]} to the site's CA bundle`;
  if (/certificate expired|Expired/.test(text)) {
    const m = /not valid after (\d+)/.exec(text);
    const when = m ? ` on ${new Date(Number(m[1]) * 1000).toISOString()}` : "";
    return `TLS: the certificate of ${host} expired${when}; the service must renew it`;
  }
  if (/NotValidYet|not valid before/.test(text)) {
    return `TLS: the certificate of ${host} is not valid yet; check the clocks`;
  }
  if (/not valid for name|NotValidForName|CertNotValidForName/.test(text)) {
    const m = /valid for (.*)$/m.exec(text.slice(text.indexOf("only valid")));
    const names = m ? ` (it is for ${m[1].replace(/DnsName|IpAddress|[()"]/g, "")})` : "";
    return `TLS: the certificate does not name host ${host}${names}; use the name it was issued for`;
  }
  if (/UnknownIssuer|unknown issuer|self.signed|UnknownCA/i.test(text)) {
    return `TLS: the certificate of ${host} is signed by an unknown CA; ${fix}`;
  }
  if (/invalid peer certificate|certificate/i.test(text) && /tls|certificate/i.test(text)) {
    const m = /invalid peer certificate: ([^\n]*)/.exec(text);
    return `TLS: the certificate of ${host} was refused${m ? `: ${m[1]}` : ""}`;
  }
  return undefined;
}

function _chain(e: unknown): string {
  const parts: string[] = [];
  for (let x = e, i = 0; x && i < 5; x = (x as { cause?: unknown }).cause, i++) {
    parts.push(String((x as Error).message ?? x));
  }
  return parts.join("\n");
}

let _home: string | undefined;
let _client: Deno.HttpClient | null | undefined; // null = system roots only

/**
 * Record the funcX home whose `config.yaml` may name `ca_file` (read on first use).
 *
 * @example
 * ```ts ignore
 * setTrustHome(ctx.home);
 * ```
 */
export function setTrustHome(home: string): void {
  _home = home;
  _client?.close();
  _client = undefined;
}

function _globalCaFile(home: string): string | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(join(home, "config.yaml"));
  } catch {
    return null;
  }
  // Full validation is the config loader's job; only the one key is needed here.
  const m = /^ca_file:\s*(?:"([^"]*)"|'([^']*)'|([^#\s][^#]*?))\s*(?:#.*)?$/m.exec(text);
  const v = m ? (m[1] ?? m[2] ?? m[3]) : undefined;
  return v && v !== "null" && v !== "~" ? v : null;
}

/**
 * An HTTP client trusting the configured CA bundle in addition to the system roots, or
 * `undefined` when none is configured. Throws {@linkcode TrustError} for a bad bundle.
 *
 * @example
 * ```ts
 * const client = trustClient(); // Deno.HttpClient | undefined
 * ```
 */
export function trustClient(): Deno.HttpClient | undefined {
  if (_client === undefined) {
    const src = caSource({
      caFile: _home ? _globalCaFile(_home) : null,
      home: _home,
      env: Deno.env.toObject(),
    });
    _client = src ? Deno.createHttpClient({ caCerts: readCaBundle(src.path, src.from) }) : null;
  }
  return _client ?? undefined;
}

/**
 * An HTTP client trusting the CA certificates in `caFile` (plus the system roots).
 *
 * @example
 * ```ts
 * const c = clientForCaFile("/etc/site-ca.pem");
 * await fetch("https://h/", { client: c });
 * ```
 */
export function clientForCaFile(caFile: string): Deno.HttpClient {
  return Deno.createHttpClient({ caCerts: readCaBundle(caFile, "caFile") });
}

/**
 * `fetch` with the configured CA bundle; a certificate failure becomes an `Error` whose
 * message is one line naming the problem (expired, wrong host, unknown CA).
 *
 * @example
 * ```ts
 * const res = await trustedFetch("https://funcx.site.edu/v2/version");
 * ```
 */
export async function trustedFetch(
  url: string | URL,
  init: RequestInit & { client?: Deno.HttpClient } = {},
): Promise<Response> {
  const client = init.client ?? (String(url).startsWith("https:") ? trustClient() : undefined);
  try {
    return await fetch(url, client ? { ...init, client } : init);
  } catch (e) {
    const tls = describeTlsError(e, String(url));
    if (tls) throw new Error(tls, { cause: e });
    throw e;
  }
}
