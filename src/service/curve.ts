/**
 * The forwarder's stable CURVE keypair, kept as pyzmq-style ZPL certificates in
 * `service/curve/server.key` (public) and `server.key_secret` (secret, 0600), plus a Z85
 * encoder for the raw 32-byte keys the ZAP handler receives.
 *
 * @example
 * ```ts
 * import { loadOrCreateServerKeys } from "./curve.ts";
 * const keys = await loadOrCreateServerKeys("/home/u/.funcx/service/curve");
 * keys.publicKey.length; // 40
 * ```
 * @module
 */
import { join } from "node:path";
import * as zmq from "zeromq";
import { formatCertificate, parseCertificate } from "../protocol/zpl.ts";

const _Z85 =
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/**
 * Z85-encode bytes (length a multiple of 4), as libzmq's `zmq_z85_encode`.
 *
 * @example
 * ```ts
 * z85Encode(new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])); // "HelloWorld"
 * ```
 */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new Error("z85: length must be a multiple of 4");
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    let v = ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chunk = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chunk[j] = _Z85[v % 85];
      v = Math.floor(v / 85);
    }
    out += chunk.join("");
  }
  return out;
}

/** The server keypair. */
export interface ServerKeys {
  /** Z85 public key. */
  publicKey: string;
  /** Z85 secret key. */
  secretKey: string;
  /** ZPL text of the public certificate (what registration returns as `forwarder_pubkey`). */
  publicCertificate: string;
}

function _zpl(publicKey: string, secretKey?: string): string {
  return formatCertificate({ publicKey, secretKey: secretKey ?? null });
}

/**
 * Load the keypair from `dir`, creating it (dir 0700, secret 0600) on first use.
 *
 * @example
 * ```ts
 * const k = await loadOrCreateServerKeys("/tmp/curve");
 * ```
 */
export async function loadOrCreateServerKeys(dir: string): Promise<ServerKeys> {
  const pubFile = join(dir, "server.key");
  const secFile = join(dir, "server.key_secret");
  let secretText: string | undefined;
  try {
    secretText = await Deno.readTextFile(secFile);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (secretText === undefined) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const kp = zmq.curveKeyPair();
    await Deno.writeTextFile(`${secFile}.tmp`, _zpl(kp.publicKey, kp.secretKey), { mode: 0o600 });
    await Deno.rename(`${secFile}.tmp`, secFile);
    await _replaceFile(pubFile, _zpl(kp.publicKey));
    return { ...kp, publicCertificate: _zpl(kp.publicKey) };
  }
  await Deno.chmod(secFile, 0o600).catch(() => {});
  const cert = parseCertificate(secretText, secFile);
  if (!cert.secretKey) throw new Error(`${secFile}: no secret-key found`);
  const { publicKey, secretKey } = { publicKey: cert.publicKey, secretKey: cert.secretKey };
  let publicCertificate: string;
  try {
    publicCertificate = await Deno.readTextFile(pubFile);
    if (parseCertificate(publicCertificate, pubFile).publicKey !== publicKey) throw new Error();
  } catch {
    publicCertificate = _zpl(publicKey);
    await _replaceFile(pubFile, publicCertificate);
  }
  return { publicKey, secretKey, publicCertificate };
}

/** Write via a fresh temp file + rename, so a symlink planted at `path` is replaced, not followed. */
async function _replaceFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode: 0o644, createNew: true });
  await Deno.rename(tmp, path);
}
