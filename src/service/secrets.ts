/**
 * Password hashing, token generation and constant-time comparison for the local service.
 *
 * Passwords use scrypt (node:crypto) with a random salt; bearer tokens, refresh tokens,
 * authorization codes, client secrets and endpoint secrets are random and only their
 * SHA-256 is stored.
 *
 * @example
 * ```ts
 * import { hashPassword, verifyPassword, newToken, sha256Hex } from "./secrets.ts";
 * const h = hashPassword("hunter2");
 * verifyPassword("hunter2", h); // true
 * const t = newToken("fxa");    // "fxa_..." (43 random base64url chars)
 * sha256Hex(t).length;          // 64
 * ```
 * @module
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";

const _N = 16384;
const _R = 8;
const _P = 1;
const _KEYLEN = 32;

/**
 * Hash a password as `scrypt$N$r$p$<salt b64>$<hash b64>`.
 *
 * @example
 * ```ts
 * hashPassword("pw").startsWith("scrypt$"); // true
 * ```
 */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, _KEYLEN, { N: _N, r: _R, p: _P });
  return `scrypt$${_N}$${_R}$${_P}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/**
 * Check a password against a {@linkcode hashPassword} record (constant time).
 *
 * @example
 * ```ts
 * verifyPassword("pw", hashPassword("pw")); // true
 * ```
 */
export function verifyPassword(password: string, record: string): boolean {
  const parts = record.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], "base64");
  const want = Buffer.from(parts[5], "base64");
  const got = scryptSync(password, salt, want.length, { N: n, r, p, maxmem: 256 * n * r });
  return timingSafeEqual(got, want);
}

/**
 * A random secret with a recognisable prefix (`fxa` access, `fxr` refresh, `fxc` code,
 * `fxs` client/endpoint secret). 32 random bytes, base64url.
 *
 * @example
 * ```ts
 * newToken("fxr").startsWith("fxr_"); // true
 * ```
 */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

/**
 * Lower-case hex SHA-256 of a string (how secrets are stored).
 *
 * @example
 * ```ts
 * sha256Hex("abc").slice(0, 8); // "ba7816bf"
 * ```
 */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * base64url(SHA-256(verifier)): the PKCE S256 code challenge of a verifier.
 *
 * @example
 * ```ts
 * pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
 * // "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
 * ```
 */
export function pkceChallenge(verifier: string): string {
  return createHash("sha256").update(verifier).digest("base64url");
}

/**
 * Constant-time string equality.
 *
 * @example
 * ```ts
 * safeEqual("a", "a"); // true
 * ```
 */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
