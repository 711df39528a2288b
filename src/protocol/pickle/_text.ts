/**
 * Text arguments of pickle opcodes: UTF-8 with `surrogatepass` (protocol 1+ `str`), latin-1,
 * and the protocol 0 literals (`UNICODE` raw-unicode-escape, `STRING` quoted, `FLOAT`).
 * @module
 */
import { ProtocolError } from "../errors.ts";

/** Where a text decoder reports malformed input (the unpickler, with its offset). */
export interface Failer {
  fail(msg: string): never;
}

const _utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** `b[start, end)` as UTF-8 `surrogatepass` (how pickle stores `str`). */
export function decodeUtf8(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n < 48) {
    // Short ASCII strings are the common case (dict keys, task ids): skip TextDecoder.
    let s = "";
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c >= 0x80) return _decodeUtf8Slow(b, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return _decodeUtf8Slow(b, start, end);
}

function _decodeUtf8Slow(b: Uint8Array, start: number, end: number): string {
  try {
    return _utf8.decode(b.subarray(start, end));
  } catch {
    return _decodeUtf8Surrogatepass(b, start, end);
  }
}

/** Strict UTF-8 that also accepts encoded surrogates (Python's `surrogatepass`). */
function _decodeUtf8Surrogatepass(b: Uint8Array, start: number, end: number): string {
  const units: number[] = [];
  let out = "";
  let i = start;
  while (i < end) {
    const c = b[i];
    let cp: number;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if (c >= 0xc2 && c < 0xe0 && i + 1 < end && (b[i + 1] & 0xc0) === 0x80) {
      cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
      i += 2;
    } else if (
      c >= 0xe0 && c < 0xf0 && i + 2 < end && (b[i + 1] & 0xc0) === 0x80 &&
      (b[i + 2] & 0xc0) === 0x80
    ) {
      cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      if (cp < 0x800) throw new ProtocolError("pickle: invalid UTF-8 in str (overlong)");
      i += 3;
    } else if (
      c >= 0xf0 && c < 0xf5 && i + 3 < end && (b[i + 1] & 0xc0) === 0x80 &&
      (b[i + 2] & 0xc0) === 0x80 && (b[i + 3] & 0xc0) === 0x80
    ) {
      cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) |
        (b[i + 3] & 0x3f);
      if (cp < 0x10000 || cp > 0x10ffff) {
        throw new ProtocolError("pickle: invalid UTF-8 in str (code point out of range)");
      }
      i += 4;
    } else {
      throw new ProtocolError(`pickle: invalid UTF-8 in str at byte ${i - start}`);
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      units.push(cp);
    }
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

/** `b[start, end)` as latin-1 (each byte one code unit). */
export function latin1(b: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode(...b.subarray(i, Math.min(end, i + 4096)));
  }
  return out;
}

/** The bytes of a latin-1 string (a protocol 0 `bytes` literal); above U+00FF fails. */
export function latin1Bytes(s: string, u: Failer): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) u.fail("latin-1 bytes literal contains a character above U+00FF");
    out[i] = c;
  }
  return out;
}

const _FLOAT_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A protocol 0 `FLOAT` argument (a Python float literal). */
export function parseFloatLiteral(t: string, u: Failer): number {
  const s = t.trim().toLowerCase();
  if (_FLOAT_RE.test(s)) return Number(s);
  const sign = s.startsWith("-") ? -1 : 1;
  const body = s.replace(/^[+-]/, "");
  if (body === "inf" || body === "infinity") return sign * Infinity;
  if (body === "nan") return NaN;
  u.fail(`invalid float literal ${JSON.stringify(t.slice(0, 20))}`);
}

function _hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Protocol 0 `UNICODE`: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, else latin-1). */
export function rawUnicodeEscape(b: Uint8Array, s: number, e: number, u: Failer): string {
  const units: number[] = [];
  let out = "";
  let i = s;
  while (i < e) {
    const c = b[i];
    if (c === 0x5c) {
      let j = i;
      while (j < e && b[j] === 0x5c) j++;
      const run = j - i;
      const esc = j < e ? b[j] : 0;
      if (run % 2 === 1 && (esc === 0x75 || esc === 0x55)) {
        for (let k = 0; k < run - 1; k++) units.push(0x5c);
        const digits = esc === 0x75 ? 4 : 8;
        if (j + 1 + digits > e) u.fail("truncated \\u escape in UNICODE");
        let cp = 0;
        for (let k = 0; k < digits; k++) {
          const h = _hexVal(b[j + 1 + k]);
          if (h < 0) u.fail("invalid \\u escape in UNICODE");
          cp = cp * 16 + h;
        }
        if (cp > 0x10ffff) u.fail("\\U escape out of range in UNICODE");
        if (cp >= 0x10000) {
          cp -= 0x10000;
          units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else units.push(cp);
        i = j + 1 + digits;
      } else {
        for (let k = 0; k < run; k++) units.push(0x5c);
        i = j;
      }
    } else {
      units.push(c);
      i++;
    }
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

/** Protocol 0 `STRING`: a quoted Python 2 str literal, decoded as latin-1. */
export function pyStringLiteral(b: Uint8Array, s: number, e: number, u: Failer): string {
  if (e - s < 2 || b[s] !== b[e - 1] || (b[s] !== 0x27 && b[s] !== 0x22)) {
    u.fail("STRING opcode argument must be quoted");
  }
  const units: number[] = [];
  let out = "";
  let i = s + 1;
  const end = e - 1;
  while (i < end) {
    let c = b[i++];
    if (c === 0x5c) {
      if (i >= end) u.fail("trailing backslash in STRING");
      const d = b[i++];
      switch (d) {
        case 0x6e:
          c = 0x0a;
          break;
        case 0x74:
          c = 0x09;
          break;
        case 0x72:
          c = 0x0d;
          break;
        case 0x61:
          c = 0x07;
          break;
        case 0x62:
          c = 0x08;
          break;
        case 0x66:
          c = 0x0c;
          break;
        case 0x76:
          c = 0x0b;
          break;
        case 0x5c:
        case 0x27:
        case 0x22:
          c = d;
          break;
        case 0x0a:
          continue;
        case 0x78: {
          const h1 = i < end ? _hexVal(b[i]) : -1;
          const h2 = i + 1 < end ? _hexVal(b[i + 1]) : -1;
          if (h1 < 0 || h2 < 0) u.fail("invalid \\x escape in STRING");
          c = h1 * 16 + h2;
          i += 2;
          break;
        }
        default:
          if (d >= 0x30 && d <= 0x37) {
            let v = d - 0x30;
            for (let k = 0; k < 2 && i < end && b[i] >= 0x30 && b[i] <= 0x37; k++) {
              v = v * 8 + (b[i++] - 0x30);
            }
            c = v & 0xff;
          } else {
            units.push(0x5c);
            c = d;
          }
      }
    }
    units.push(c);
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}
