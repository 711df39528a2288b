/**
 * Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 4 bytes ↔ 5 characters. Pure.
 *
 * @example
 * ```ts
 * import { z85Decode, z85Encode } from "./z85.ts";
 * const text = z85Encode(new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]));
 * text; // "HelloWorld"
 * z85Decode(text).length; // 8
 * ```
 * @module
 */

const _ALPHABET =
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
const _DECODE = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < _ALPHABET.length; i++) t[_ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/**
 * Z85-encode bytes (length a multiple of 4), as libzmq's `zmq_z85_encode`.
 *
 * @example
 * ```ts
 * import { z85Encode } from "./z85.ts";
 * z85Encode(new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])); // "HelloWorld"
 * ```
 */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError("z85: length must be a multiple of 4");
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    let v = ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chunk = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chunk[j] = _ALPHABET[v % 85];
      v = Math.floor(v / 85);
    }
    out += chunk.join("");
  }
  return out;
}

/**
 * Decode Z85 text (length a multiple of 5), as libzmq's `zmq_z85_decode`. Throws a
 * `RangeError` naming the problem for any other input.
 *
 * @example
 * ```ts
 * import { z85Decode } from "./z85.ts";
 * z85Decode("HelloWorld"); // Uint8Array [0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]
 * ```
 */
export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) throw new RangeError("z85: length must be a multiple of 5");
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const c = text.charCodeAt(i + j);
      const d = c < 128 ? _DECODE[c] : -1;
      if (d < 0) throw new RangeError(`z85: invalid character at ${i + j}`);
      v = v * 85 + d;
    }
    if (v > 0xffffffff) throw new RangeError(`z85: value out of range at ${i}`);
    out[o] = v >>> 24;
    out[o + 1] = (v >>> 16) & 0xff;
    out[o + 2] = (v >>> 8) & 0xff;
    out[o + 3] = v & 0xff;
  }
  return out;
}
