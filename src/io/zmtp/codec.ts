/**
 * ZMTP 3.1 wire format (ZeroMQ RFC 37), pure: the greeting, frames (short and long),
 * commands and their metadata properties, and an incremental frame decoder that refuses a
 * frame over a size limit before allocating it.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./codec.ts";
 * const d = new FrameDecoder(1024);
 * const frames = d.push(encodeFrame(new TextEncoder().encode("hi"), false));
 * frames[0].body.length; // 2
 * ```
 * @module
 */

/** Frame flag: more frames of this message follow. */
export const FLAG_MORE = 0x01;
/** Frame flag: 8-byte size. */
export const FLAG_LONG = 0x02;
/** Frame flag: a command frame. */
export const FLAG_COMMAND = 0x04;

/** Length of the ZMTP 3.x greeting. */
export const GREETING_SIZE = 64;

/** A protocol violation by the peer; the connection is closed with this message. */
export class ZmtpProtocolError extends Error {
  override name = "ZmtpProtocolError";
}

/** What a peer's greeting says. */
export interface Greeting {
  /** Major and minor version (3.0 or 3.1 for the peers we accept). */
  major: number;
  minor: number;
  /** Mechanism name, e.g. "NULL" or "CURVE". */
  mechanism: string;
  /** The as-server bit. */
  asServer: boolean;
}

/**
 * Our 64-byte greeting: signature, version 3.1, mechanism, as-server.
 *
 * @example
 * ```ts
 * import { encodeGreeting } from "./codec.ts";
 * encodeGreeting("NULL", false).length; // 64
 * ```
 */
export function encodeGreeting(mechanism: string, asServer: boolean): Uint8Array {
  const g = new Uint8Array(GREETING_SIZE);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 1;
  for (let i = 0; i < mechanism.length && i < 20; i++) g[12 + i] = mechanism.charCodeAt(i);
  g[32] = asServer ? 1 : 0;
  return g;
}

/**
 * Check the first 10 bytes of a peer's greeting (the signature). Throws
 * {@linkcode ZmtpProtocolError} when the peer does not speak ZMTP 3.
 *
 * @example
 * ```ts
 * import { checkSignature, encodeGreeting } from "./codec.ts";
 * checkSignature(encodeGreeting("NULL", false));
 * ```
 */
export function checkSignature(b: Uint8Array): void {
  if (b[0] !== 0xff || (b[9] & 1) !== 1) {
    throw new ZmtpProtocolError("not a ZMTP peer (bad greeting signature)");
  }
}

/**
 * Parse a peer's full 64-byte greeting. Throws {@linkcode ZmtpProtocolError} for a bad
 * signature or a version below 3.0.
 *
 * @example
 * ```ts
 * import { encodeGreeting, parseGreeting } from "./codec.ts";
 * parseGreeting(encodeGreeting("CURVE", true)).mechanism; // "CURVE"
 * ```
 */
export function parseGreeting(b: Uint8Array): Greeting {
  checkSignature(b);
  const major = b[10];
  const minor = b[11];
  if (major < 3) {
    throw new ZmtpProtocolError(`peer speaks ZMTP ${major}.${minor}; 3.0 or later is required`);
  }
  let end = 12;
  while (end < 32 && b[end] !== 0) end++;
  let mechanism = "";
  for (let i = 12; i < end; i++) mechanism += String.fromCharCode(b[i]);
  return { major, minor, mechanism, asServer: b[32] === 1 };
}

/**
 * One frame on the wire: flags, size (1 byte if ≤ 255, else 8 bytes big-endian), body.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./codec.ts";
 * encodeFrame(new Uint8Array(256), false).length; // 1 + 8 + 256
 * ```
 */
export function encodeFrame(body: Uint8Array, more: boolean, command = false): Uint8Array {
  const head = frameHeaderSize(body.length);
  const out = new Uint8Array(head + body.length);
  writeFrameHeader(out, 0, body.length, more, command);
  out.set(body, head);
  return out;
}

/**
 * Size of a frame header for a body of `n` bytes (2 or 9).
 *
 * @example
 * ```ts
 * import { frameHeaderSize } from "./codec.ts";
 * frameHeaderSize(255); // 2
 * ```
 */
export function frameHeaderSize(n: number): number {
  return n > 255 ? 9 : 2;
}

/**
 * Write a frame header into `out` at `at`; returns the header's size.
 *
 * @example
 * ```ts
 * import { writeFrameHeader } from "./codec.ts";
 * const b = new Uint8Array(2);
 * writeFrameHeader(b, 0, 3, true, false); // 2; b = [1, 3]
 * ```
 */
export function writeFrameHeader(
  out: Uint8Array,
  at: number,
  n: number,
  more: boolean,
  command: boolean,
): number {
  let flags = (more ? FLAG_MORE : 0) | (command ? FLAG_COMMAND : 0);
  if (n > 255) {
    flags |= FLAG_LONG;
    out[at] = flags;
    const hi = Math.floor(n / 0x100000000);
    const lo = n >>> 0;
    out[at + 1] = hi >>> 24;
    out[at + 2] = (hi >>> 16) & 0xff;
    out[at + 3] = (hi >>> 8) & 0xff;
    out[at + 4] = hi & 0xff;
    out[at + 5] = lo >>> 24;
    out[at + 6] = (lo >>> 16) & 0xff;
    out[at + 7] = (lo >>> 8) & 0xff;
    out[at + 8] = lo & 0xff;
    return 9;
  }
  out[at] = flags;
  out[at + 1] = n;
  return 2;
}

/**
 * The body of a command frame: name length, name, data.
 *
 * @example
 * ```ts
 * import { encodeCommand } from "./codec.ts";
 * encodeCommand("PING", new Uint8Array([0, 0])).length; // 1 + 4 + 2
 * ```
 */
export function encodeCommand(name: string, data: Uint8Array = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(1 + name.length + data.length);
  out[0] = name.length;
  for (let i = 0; i < name.length; i++) out[1 + i] = name.charCodeAt(i);
  out.set(data, 1 + name.length);
  return out;
}

/** A decoded command. */
export interface Command {
  name: string;
  data: Uint8Array;
}

/**
 * Split a command frame's body into name and data. Throws {@linkcode ZmtpProtocolError}
 * for a malformed one.
 *
 * @example
 * ```ts
 * import { decodeCommand, encodeCommand } from "./codec.ts";
 * decodeCommand(encodeCommand("READY")).name; // "READY"
 * ```
 */
export function decodeCommand(body: Uint8Array): Command {
  if (body.length < 1 || body[0] === 0 || body.length < 1 + body[0]) {
    throw new ZmtpProtocolError("malformed command frame");
  }
  let name = "";
  for (let i = 1; i <= body[0]; i++) name += String.fromCharCode(body[i]);
  return { name, data: body.subarray(1 + body[0]) };
}

const _enc = new TextEncoder();

/**
 * Metadata properties (READY / INITIATE): name length (1), name, value length (4, big
 * endian), value; in the given order.
 *
 * @example
 * ```ts
 * import { encodeMetadata } from "./codec.ts";
 * encodeMetadata([["Socket-Type", "DEALER"]]).length; // 1 + 11 + 4 + 6
 * ```
 */
export function encodeMetadata(props: [string, string | Uint8Array][]): Uint8Array {
  const parts = props.map(([k, v]) => [_enc.encode(k), typeof v === "string" ? _enc.encode(v) : v]);
  const size = parts.reduce((n, [k, v]) => n + 1 + k.length + 4 + v.length, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const [k, v] of parts) {
    out[at++] = k.length;
    out.set(k, at);
    at += k.length;
    new DataView(out.buffer).setUint32(at, v.length);
    at += 4;
    out.set(v, at);
    at += v.length;
  }
  return out;
}

/**
 * Parse metadata properties; names are case-insensitive (kept as sent, looked up
 * lower-cased). Throws {@linkcode ZmtpProtocolError} for a truncated or malformed list.
 *
 * @example
 * ```ts
 * import { decodeMetadata, encodeMetadata } from "./codec.ts";
 * const m = decodeMetadata(encodeMetadata([["Identity", "abc"]]));
 * new TextDecoder().decode(m.get("identity")); // "abc"
 * ```
 */
export function decodeMetadata(b: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  while (at < b.length) {
    const n = b[at++];
    if (n === 0 || at + n + 4 > b.length) throw new ZmtpProtocolError("malformed metadata");
    let name = "";
    for (let i = 0; i < n; i++) {
      const c = b[at + i];
      // RFC 37: name characters are alphanumerics and - _ . +
      if (
        !((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 ||
          c === 95 || c === 46 || c === 43)
      ) throw new ZmtpProtocolError("malformed metadata property name");
      name += String.fromCharCode(c);
    }
    at += n;
    const len = view.getUint32(at);
    at += 4;
    if (at + len > b.length) throw new ZmtpProtocolError("malformed metadata value");
    out.set(name.toLowerCase(), b.slice(at, at + len));
    at += len;
  }
  return out;
}

/** A frame as read. */
export interface Frame {
  /** More frames of the same message follow. */
  more: boolean;
  /** A command frame. */
  command: boolean;
  /** The body (its own copy). */
  body: Uint8Array;
}

/**
 * Turns a byte stream into frames. {@linkcode FrameDecoder.push} accepts any chunking; a
 * frame whose declared size is over the limit throws {@linkcode ZmtpProtocolError} before
 * any of it is buffered.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./codec.ts";
 * const d = new FrameDecoder(100);
 * const f = encodeFrame(new Uint8Array(3), true);
 * d.push(f.subarray(0, 1)).length; // 0
 * d.push(f.subarray(1))[0].more; // true
 * ```
 */
export class FrameDecoder {
  #max: number;
  /** Header bytes collected so far. */
  #head = new Uint8Array(9);
  #headLen = 0;
  /** Input held back at an over-limit header that followed frames of the same chunk. */
  #held: Uint8Array | undefined;
  /** Body being filled, and how much of it is. */
  #body: Uint8Array | undefined;
  #bodyLen = 0;
  #flags = 0;

  /** `maxFrame`: the largest frame body accepted. */
  constructor(maxFrame: number) {
    this.#max = maxFrame;
  }

  /** Change the size limit (e.g. once a handshake is done). */
  set maxFrame(n: number) {
    this.#max = n;
  }

  /**
   * Bytes are held back: a header over the limit came after frames of the same chunk.
   * Handle the frames returned (a handshake may raise the limit), then `push()` again (an
   * empty chunk will do): the header is then checked against the limit of that time.
   */
  get held(): boolean {
    return this.#held !== undefined;
  }

  /** Feed bytes; returns the frames completed by them, in order (see {@linkcode held}). */
  push(chunk: Uint8Array): Frame[] {
    if (this.#held) {
      const joined = new Uint8Array(this.#held.length + chunk.length);
      joined.set(this.#held);
      joined.set(chunk, this.#held.length);
      chunk = joined;
      this.#held = undefined;
    }
    const out: Frame[] = [];
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.#body === undefined) {
        // collect the header
        if (this.#headLen === 0) {
          const flags = chunk[at];
          if (flags & 0xf8) {
            throw new ZmtpProtocolError(`invalid frame flags 0x${flags.toString(16)}`);
          }
          // fast path: a whole short header in this chunk
          if (!(flags & FLAG_LONG) && at + 1 < end) {
            const n = chunk[at + 1];
            if (n > this.#max) {
              if (out.length > 0) return this.#hold(out, chunk, at);
              this.#tooBig(n);
            }
            at += 2;
            if (end - at >= n) {
              out.push({
                more: (flags & FLAG_MORE) !== 0,
                command: (flags & FLAG_COMMAND) !== 0,
                body: chunk.slice(at, at + n),
              });
              at += n;
              continue;
            }
            this.#flags = flags;
            this.#body = new Uint8Array(n);
            this.#bodyLen = 0;
            continue;
          }
        }
        this.#head[this.#headLen++] = chunk[at++];
        const flags = this.#head[0];
        if (flags & 0xf8) {
          throw new ZmtpProtocolError(`invalid frame flags 0x${flags.toString(16)}`);
        }
        const need = flags & FLAG_LONG ? 9 : 2;
        if (this.#headLen < need) continue;
        let n: number;
        if (need === 2) n = this.#head[1];
        else {
          const h = this.#head;
          const hi = ((h[1] << 24) >>> 0) + (h[2] << 16) + (h[3] << 8) + h[4];
          const lo = ((h[5] << 24) >>> 0) + (h[6] << 16) + (h[7] << 8) + h[8];
          n = hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
        }
        if (n > this.#max) {
          // frames came before this header in this chunk, so all of it is in this chunk
          if (out.length > 0) {
            this.#headLen = 0;
            return this.#hold(out, chunk, at - need);
          }
          this.#tooBig(n);
        }
        this.#flags = flags;
        this.#headLen = 0;
        this.#body = new Uint8Array(n);
        this.#bodyLen = 0;
        if (n === 0) this.#emit(out);
        continue;
      }
      const take = Math.min(this.#body.length - this.#bodyLen, end - at);
      this.#body.set(chunk.subarray(at, at + take), this.#bodyLen);
      this.#bodyLen += take;
      at += take;
      if (this.#bodyLen === this.#body.length) this.#emit(out);
    }
    if (this.#body !== undefined && this.#bodyLen === this.#body.length) this.#emit(out);
    return out;
  }

  #emit(out: Frame[]) {
    out.push({
      more: (this.#flags & FLAG_MORE) !== 0,
      command: (this.#flags & FLAG_COMMAND) !== 0,
      body: this.#body!,
    });
    this.#body = undefined;
    this.#bodyLen = 0;
  }

  #hold(out: Frame[], chunk: Uint8Array, from: number): Frame[] {
    this.#held = chunk.slice(from);
    return out;
  }

  #tooBig(n: number): never {
    throw new ZmtpProtocolError(
      `frame of ${
        n === Number.MAX_SAFE_INTEGER ? "over 2^53" : n
      } bytes exceeds the limit of ${this.#max} bytes`,
    );
  }
}
