/**
 * The forwarder's stable CURVE keypair, kept as pyzmq-style ZPL certificates in
 * `service/curve/server.key` (public) and `server.key_secret` (secret, 0600).
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
import { curveKeyPairZ85 } from "../io/zmtp/mod.ts";
import { z85Encode } from "../protocol/z85.ts";
import { formatCertificate, parseCertificate } from "../protocol/zpl.ts";

/** Z85-encode bytes (re-exported for the forwarder's log lines). */
export { z85Encode };

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
    const kp = curveKeyPairZ85();
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
