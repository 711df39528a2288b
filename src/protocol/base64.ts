/**
 * Base64 as Python's `codecs.encode(b, "base64")` writes it (MIME: a `\n` after every 76
 * characters and at the end) and as `codecs.decode(s, "base64")` reads it (characters
 * outside the alphabet are skipped, padding is required).
 *
 * @example
 * ```ts
 * import { decodeBase64Lenient, encodeBase64Mime } from "./base64.ts";
 * encodeBase64Mime(new Uint8Array([1, 2, 3])); // "AQID\n"
 * decodeBase64Lenient("AQ\nID\n"); // Uint8Array [1, 2, 3]
 * ```
 * @module
 */
import { ProtocolError } from "./errors.ts";

const _ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const _ENC = new Uint8Array(64);
const _DEC = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  _ENC[i] = _ALPHABET.charCodeAt(i);
  _DEC[_ALPHABET.charCodeAt(i)] = i;
}
const _ascii = new TextDecoder();

/**
 * MIME base64 of `bytes`: lines of 76 characters, each ending in `\n`; `""` for no bytes.
 *
 * @example
 * ```ts
 * import { encodeBase64Mime } from "./base64.ts";
 * encodeBase64Mime(new TextEncoder().encode("hi")); // "aGk=\n"
 * ```
 */
export function encodeBase64Mime(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n === 0) return "";
  const chars = Math.ceil(n / 3) * 4;
  const out = new Uint8Array(chars + Math.ceil(chars / 76));
  let o = 0;
  let col = 0;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = _ENC[v >> 18];
    out[o++] = _ENC[(v >> 12) & 63];
    out[o++] = _ENC[(v >> 6) & 63];
    out[o++] = _ENC[v & 63];
    col += 4;
    if (col === 76) {
      out[o++] = 0x0a;
      col = 0;
    }
  }
  const rest = n - i;
  if (rest > 0) {
    const v = (bytes[i] << 16) | (rest === 2 ? bytes[i + 1] << 8 : 0);
    out[o++] = _ENC[v >> 18];
    out[o++] = _ENC[(v >> 12) & 63];
    out[o++] = rest === 2 ? _ENC[(v >> 6) & 63] : 0x3d;
    out[o++] = 0x3d;
    col += 4;
  }
  if (col > 0) out[o++] = 0x0a;
  return _ascii.decode(out.subarray(0, o));
}

/**
 * Decode base64 text like Python's non-strict `binascii.a2b_base64`: characters outside the
 * alphabet (newlines, spaces) are skipped, decoding stops at the first complete padding, and a
 * group cut short without `=` padding is an error.
 *
 * @example
 * ```ts
 * import { decodeBase64Lenient } from "./base64.ts";
 * decodeBase64Lenient("aGk=\n"); // bytes of "hi"
 * ```
 */
export function decodeBase64Lenient(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let o = 0;
  let acc = 0;
  let q = 0;
  let pads = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d) {
      // padding only counts once at least two characters of a group were seen
      if (q >= 2 && q + ++pads >= 4) {
        if (q === 2) out[o++] = (acc >> 4) & 0xff;
        else {
          out[o++] = (acc >> 10) & 0xff;
          out[o++] = (acc >> 2) & 0xff;
        }
        return out.subarray(0, o); // like CPython, data after the padding is ignored
      }
      continue;
    }
    const d = c < 256 ? _DEC[c] : -1;
    if (d < 0) continue;
    pads = 0;
    acc = (acc << 6) | d;
    if (++q === 4) {
      out[o++] = (acc >> 16) & 0xff;
      out[o++] = (acc >> 8) & 0xff;
      out[o++] = acc & 0xff;
      q = 0;
      acc = 0;
    }
  }
  if (q === 1) {
    throw new ProtocolError(
      "base64: invalid input (number of data characters is 1 more than a multiple of 4)",
    );
  }
  if (q !== 0) throw new ProtocolError("base64: incorrect padding");
  return out.subarray(0, o);
}
