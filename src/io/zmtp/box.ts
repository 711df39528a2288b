/**
 * The NaCl primitives CurveZMQ is defined on, from libsodium (the audited C library libzmq
 * itself uses), compiled to WebAssembly (`libsodium-wrappers`): `crypto_box_keypair`,
 * `crypto_scalarmult_base`, `crypto_box_beforenm` and boxes under a precomputed key
 * (XSalsa20-Poly1305: 16-byte tag, then ciphertext). Nothing here is hand-written crypto.
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
import sodium from "libsodium-wrappers";
import { z85Decode, z85Encode } from "../../protocol/z85.ts";

await sodium.ready;

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
  const kp = sodium.crypto_box_keypair();
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
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
    return z85Encode(sodium.crypto_scalarmult_base(z85Decode(secretKey)));
  }
  return sodium.crypto_scalarmult_base(secretKey);
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
  return sodium.crypto_box_beforenm(publicKey, secretKey);
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
  return sodium.crypto_box_easy_afternm(plain, nonce, key);
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
  const box = sodium.crypto_box_easy_afternm(out.subarray(32), nonce, key);
  out.set(box, 16);
  return out.subarray(16);
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
    return sodium.crypto_box_open_easy_afternm(sealed, nonce, key);
  } catch {
    return undefined;
  }
}
