/**
 * The NaCl primitives CurveZMQ is defined on, built only from audited libraries:
 * X25519 (`@noble/curves`), HSalsa20 and XSalsa20-Poly1305 (`@noble/ciphers`).
 * `crypto_box_beforenm(pk, sk)` is HSalsa20 of the X25519 shared point with a zero nonce
 * (as in NaCl), and a box is XSalsa20-Poly1305 under that key: 16-byte tag, then ciphertext.
 *
 * @example
 * ```ts
 * import { boxKey, curveKeyPair, openBox, sealBox } from "./box.ts";
 * const a = curveKeyPair(), b = curveKeyPair();
 * const nonce = new Uint8Array(24);
 * const sealed = sealBox(boxKey(b.publicKey, a.secretKey), nonce, new Uint8Array([1, 2]));
 * openBox(boxKey(a.publicKey, b.secretKey), nonce, sealed); // Uint8Array [1, 2]
 * ```
 * @module
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { hsalsa, xsalsa20poly1305 } from "@noble/ciphers/salsa.js";
import { z85Decode, z85Encode } from "../../protocol/z85.ts";

/** A CURVE key pair, raw 32-byte keys. */
export interface RawKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/**
 * A fresh key pair (what `crypto_box_keypair` makes).
 *
 * @example
 * ```ts
 * import { curveKeyPair } from "./box.ts";
 * curveKeyPair().publicKey.length; // 32
 * ```
 */
export function curveKeyPair(): RawKeyPair {
  const secretKey = crypto.getRandomValues(new Uint8Array(32));
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/**
 * A fresh key pair as Z85 text (what libzmq's `zmq_curve_keypair` returns).
 *
 * @example
 * ```ts
 * import { curveKeyPairZ85 } from "./box.ts";
 * curveKeyPairZ85().publicKey.length; // 40
 * ```
 */
export function curveKeyPairZ85(): { publicKey: string; secretKey: string } {
  const kp = curveKeyPair();
  return { publicKey: z85Encode(kp.publicKey), secretKey: z85Encode(kp.secretKey) };
}

/**
 * The public key of a secret key (`crypto_scalarmult_base`), raw or Z85 as given.
 *
 * @example
 * ```ts
 * import { curveKeyPairZ85, curvePublicKey } from "./box.ts";
 * const kp = curveKeyPairZ85();
 * curvePublicKey(kp.secretKey) === kp.publicKey; // true
 * ```
 */
export function curvePublicKey(secretKey: string): string;
export function curvePublicKey(secretKey: Uint8Array): Uint8Array;
export function curvePublicKey(secretKey: string | Uint8Array): string | Uint8Array {
  if (typeof secretKey === "string") {
    return z85Encode(x25519.getPublicKey(z85Decode(secretKey)));
  }
  return x25519.getPublicKey(secretKey);
}

/**
 * A 32-byte key given as raw bytes or 40 Z85 characters, as raw bytes. Throws a
 * `RangeError` naming `what` for anything else.
 *
 * @example
 * ```ts
 * import { rawKey } from "./box.ts";
 * rawKey(new Uint8Array(32), "curveServerKey").length; // 32
 * ```
 */
export function rawKey(k: string | Uint8Array, what: string): Uint8Array {
  if (typeof k === "string") {
    if (k.length !== 40) throw new RangeError(`${what}: a Z85 key has 40 characters`);
    return z85Decode(k);
  }
  if (k.length !== 32) throw new RangeError(`${what}: a raw key has 32 bytes`);
  return k;
}

// "expand 32-byte k" as little-endian words (HSalsa20's sigma)
const _SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function _words(b: Uint8Array): Uint32Array {
  const w = new Uint32Array(b.length / 4);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < w.length; i++) w[i] = v.getUint32(i * 4, true);
  return w;
}

/**
 * The shared key of a box between `publicKey` and `secretKey` (`crypto_box_beforenm`).
 * Throws when the peer's key is a low-order point (the shared secret would be zero).
 *
 * @example
 * ```ts
 * import { boxKey, curveKeyPair } from "./box.ts";
 * const a = curveKeyPair(), b = curveKeyPair();
 * boxKey(a.publicKey, b.secretKey).length; // 32
 * ```
 */
export function boxKey(publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const shared = x25519.getSharedSecret(secretKey, publicKey);
  const out = new Uint32Array(8);
  hsalsa(_SIGMA, _words(shared), new Uint32Array(4), out);
  const key = new Uint8Array(32);
  const v = new DataView(key.buffer);
  for (let i = 0; i < 8; i++) v.setUint32(i * 4, out[i], true);
  return key;
}

/**
 * Seal `plain` under `key` and a 24-byte nonce: tag (16) then ciphertext.
 *
 * @example
 * ```ts
 * import { sealBox } from "./box.ts";
 * sealBox(new Uint8Array(32), new Uint8Array(24), new Uint8Array(3)).length; // 19
 * ```
 */
export function sealBox(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array): Uint8Array {
  return xsalsa20poly1305(key, nonce).encrypt(plain);
}

/**
 * Seal in place: `out` is 32 bytes of scratch followed by the plaintext; on return
 * `out.subarray(16)` is the box (tag, then ciphertext) and the first 16 bytes are garbage
 * the caller overwrites. Saves the copies of {@linkcode sealBox} on the message path.
 *
 * @example
 * ```ts
 * import { sealBoxInto } from "./box.ts";
 * const out = new Uint8Array(32 + 3);
 * sealBoxInto(new Uint8Array(32), new Uint8Array(24), out).length; // 19
 * ```
 */
export function sealBoxInto(key: Uint8Array, nonce: Uint8Array, out: Uint8Array): Uint8Array {
  return xsalsa20poly1305(key, nonce).encrypt(out.subarray(32), out);
}

/**
 * Open a box sealed by {@linkcode sealBox}; `undefined` when it does not authenticate.
 *
 * @example
 * ```ts
 * import { openBox } from "./box.ts";
 * openBox(new Uint8Array(32), new Uint8Array(24), new Uint8Array(16)); // undefined
 * ```
 */
export function openBox(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < 16) return undefined;
  try {
    return xsalsa20poly1305(key, nonce).decrypt(sealed);
  } catch {
    return undefined;
  }
}
