/**
 * ZPL CURVE certificate files as pyzmq's `zmq.auth.create_certificates` writes them and
 * `zmq.auth.load_certificate` reads them (`<name>.key` public, `<name>.key_secret` both keys).
 * Pure text in, text out; the caller does the file I/O (and the 0600 mode).
 *
 * @example
 * ```ts
 * import { formatCertificate, parseCertificate } from "./zpl.ts";
 * const pub = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
 * const text = formatCertificate({ publicKey: pub });
 * parseCertificate(text).publicKey === pub; // true
 * ```
 * @module
 */
import { ProtocolError } from "./errors.ts";

/** A CURVE key pair as Z85 text (40 characters each). */
export interface CurveCertificate {
  /** Z85 public key. */
  publicKey: string;
  /** Present in `*.key_secret` files only. */
  secretKey: string | null;
}

/** Options of {@linkcode formatCertificate}. */
export interface FormatCertificateOptions {
  /** Z85 public key. */
  publicKey: string;
  /** When given, a secret certificate (`*.key_secret`) is written. */
  secretKey?: string | null;
  /** Extra `metadata` entries (`key = value` lines). */
  metadata?: Record<string, string>;
  /** Time for the banner (default now). */
  date?: Date;
}

const _Z85_RE = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/**
 * True for a 40-character Z85 string (a 32-byte CURVE key).
 *
 * @example
 * ```ts
 * import { isZ85Key } from "./zpl.ts";
 * isZ85Key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"); // true
 * ```
 */
export function isZ85Key(s: string): boolean {
  return typeof s === "string" && _Z85_RE.test(s);
}

function _pyDate(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
}

/**
 * The text of a pyzmq certificate file: banner comment, `metadata` section, `curve`
 * section with `public-key` (and `secret-key`). Throws {@linkcode ProtocolError} for keys
 * that are not 40-character Z85.
 *
 * @example
 * ```ts
 * import { formatCertificate } from "./zpl.ts";
 * formatCertificate({
 *   publicKey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
 *   secretKey: "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6",
 * });
 * ```
 */
export function formatCertificate(opts: FormatCertificateOptions): string {
  if (!isZ85Key(opts.publicKey)) {
    throw new ProtocolError("certificate: public key must be 40 Z85 characters");
  }
  if (opts.secretKey != null && !isZ85Key(opts.secretKey)) {
    throw new ProtocolError("certificate: secret key must be 40 Z85 characters");
  }
  const date = _pyDate(opts.date ?? new Date());
  let out = opts.secretKey != null
    ? `#   ****  Generated on ${date} by pyzmq  ****\n` +
      "#   ZeroMQ CURVE **Secret** Certificate\n" +
      "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
    : `#   ****  Generated on ${date} by pyzmq  ****\n` +
      "#   ZeroMQ CURVE Public Certificate\n" +
      "#   Exchange securely, or use a secure mechanism to verify the contents\n" +
      "#   of this file after exchange. Store public certificates in your home\n" +
      "#   directory, in the .curve subdirectory.\n\n";
  out += "metadata\n";
  for (const [k, v] of Object.entries(opts.metadata ?? {})) {
    if (/[\n\r=]/.test(k) || /[\n\r]/.test(v)) {
      throw new ProtocolError(`certificate: metadata ${JSON.stringify(k)} has a newline or '='`);
    }
    out += `    ${k} = ${v}\n`;
  }
  out += "curve\n";
  out += `    public-key = "${opts.publicKey}"\n`;
  if (opts.secretKey != null) out += `    secret-key = "${opts.secretKey}"\n`;
  return out;
}

const _STRIP = new Set([" ", "\t", "'", '"']);

/** The value after the first `=`, stripped of blanks and quotes (Python `strip(b' \t\'"')`). */
function _keyValue(line: string): string {
  let a = line.indexOf("=") + 1;
  let b = line.length;
  while (a < b && _STRIP.has(line[a])) a++;
  while (b > a && _STRIP.has(line[b - 1])) b--;
  return line.slice(a, b);
}

/**
 * Read a certificate the way `zmq.auth.load_certificate` does: skip `#` comments, take the
 * first `public-key` and `secret-key` lines (value after `=`, stripped of blanks and quotes).
 * Throws {@linkcode ProtocolError} (naming `file` when given) if there is no public key or a
 * key is not 40 Z85 characters.
 *
 * @example
 * ```ts
 * import { parseCertificate } from "./zpl.ts";
 * parseCertificate('curve\n    public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"\n').secretKey; // null
 * ```
 */
export function parseCertificate(text: string, file = "certificate"): CurveCertificate {
  let publicKey: string | null = null;
  let secretKey: string | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#")) continue;
    if (line.startsWith("public-key") && line.includes("=")) publicKey = _keyValue(line);
    if (line.startsWith("secret-key") && line.includes("=")) secretKey = _keyValue(line);
    if (publicKey && secretKey) break;
  }
  if (publicKey === null) throw new ProtocolError(`${file}: no public key found`);
  if (!isZ85Key(publicKey)) {
    throw new ProtocolError(`${file}: public-key is not a 40-character Z85 CURVE key`);
  }
  if (secretKey !== null && !isZ85Key(secretKey)) {
    throw new ProtocolError(`${file}: secret-key is not a 40-character Z85 CURVE key`);
  }
  return { publicKey, secretKey };
}
