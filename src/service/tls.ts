/**
 * TLS of the service's HTTP listener: loading and checking a certificate/key pair, and the
 * rule that a non-loopback address is only served over plain HTTP when forced.
 *
 * @example
 * ```ts ignore
 * import { checkExposure, loadTlsPair } from "./tls.ts";
 * checkExposure("0.0.0.0", true, false);           // fine: TLS
 * const pair = await loadTlsPair({ certFile: "/etc/fx/cert.pem", keyFile: "/etc/fx/key.pem" });
 * Deno.serve({ ...pair, port: 8400 }, handler);
 * ```
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

/** Paths of the PEM certificate chain and private key. */
export interface TlsFiles {
  /** Certificate chain (server certificate first). */
  certFile: string;
  /** Private key. */
  keyFile: string;
}

/** The PEM texts `Deno.serve` takes. */
export interface TlsPair {
  /** Certificate chain. */
  cert: string;
  /** Private key. */
  key: string;
}

/** The flag that forces plain HTTP on a non-loopback address. */
export const PLAIN_HTTP_FLAG = "--insecure-plain-http";

/**
 * True for loopback hosts (127.0.0.0/8, ::1, localhost).
 *
 * @example
 * ```ts
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0");   // false
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Refuse to serve plain HTTP on a non-loopback address unless forced (one-line error).
 *
 * @example
 * ```ts
 * checkExposure("10.0.0.5", false, false); // throws: ... use --tls-cert/--tls-key ...
 * ```
 */
export function checkExposure(host: string, tls: boolean, forcePlain: boolean): void {
  if (tls || forcePlain || isLoopback(host)) return;
  throw new Error(
    `refusing to serve plain HTTP on ${host}: passwords, tokens and endpoint secrets would ` +
      `cross the network in clear text; use --tls-cert/--tls-key, bind 127.0.0.1, or pass ` +
      `${PLAIN_HTTP_FLAG} to accept that`,
  );
}

/**
 * Read and check a pair: both PEM, the key matching the certificate. The certificate being
 * expired or not yet valid is an error too (clients would refuse it).
 *
 * @example
 * ```ts
 * const { cert, key } = await loadTlsPair({ certFile: "c.pem", keyFile: "k.pem" });
 * ```
 */
export async function loadTlsPair(files: TlsFiles, now = Date.now()): Promise<TlsPair> {
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      throw new Error(`${what} ${path} cannot be read: ${(e as Error).message}`);
    }
  };
  const cert = await read(files.certFile, "--tls-cert");
  const key = await read(files.keyFile, "--tls-key");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(
      `--tls-cert ${files.certFile} is not a PEM certificate: ${(e as Error).message}`,
    );
  }
  let pk;
  try {
    pk = createPrivateKey(key);
  } catch (e) {
    throw new Error(`--tls-key ${files.keyFile} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!x509.checkPrivateKey(pk)) {
    throw new Error(`--tls-key ${files.keyFile} does not match the certificate ${files.certFile}`);
  }
  if (Date.parse(x509.validTo) < now) {
    throw new Error(`--tls-cert ${files.certFile} expired on ${x509.validTo}`);
  }
  if (Date.parse(x509.validFrom) > now) {
    throw new Error(`--tls-cert ${files.certFile} is not valid before ${x509.validFrom}`);
  }
  return { cert, key };
}
