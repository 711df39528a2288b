/**
 * CurveZMQ (ZeroMQ RFC 26) as libzmq speaks it: the client's HELLO / INITIATE and the
 * server's WELCOME (with a cookie only the server can open) / READY, short-term keys per
 * connection, strictly increasing 8-byte nonces per direction, the vouch that binds the
 * client's long-term key to its short-term key, metadata inside INITIATE and READY, and
 * every message part afterwards in a MESSAGE box (its first byte: 1 = more, 2 = command).
 * The primitives come from `box.ts` (audited libraries only).
 *
 * @example
 * ```ts
 * import { CurveClient, CurveServer } from "./curve.ts";
 * import { curveKeyPair } from "./box.ts";
 * const s = curveKeyPair(), c = curveKeyPair();
 * const client = new CurveClient({ socketType: "DEALER", identity: new Uint8Array(), peerAddress: "" }, { ...c, serverKey: s.publicKey });
 * const server = new CurveServer({ socketType: "ROUTER", identity: new Uint8Array(), peerAddress: "" }, s);
 * const [hello] = client.start();
 * const { send: [welcome] } = await server.onCommand(hello);
 * ```
 * @module
 */
import { boxKey, curveKeyPair, openBox, type RawKeyPair, sealBox, sealBoxInto } from "./box.ts";
import { encodeCommand, frameHeaderSize, writeFrameHeader } from "./codec.ts";
import {
  authorizeWith,
  checkPeerMetadata,
  errorCommand,
  errorReason,
  explainReason,
  handshakeCommand,
  type HandshakeContext,
  HandshakeError,
  type HandshakeStep,
  type Mechanism,
  ourMetadata,
  REFUSED_REASON,
} from "./mechanism.ts";

const _enc = new TextEncoder();
const _P = {
  hello: _enc.encode("CurveZMQHELLO---"),
  welcome: _enc.encode("WELCOME-"),
  cookie: _enc.encode("COOKIE--"),
  initiate: _enc.encode("CurveZMQINITIATE"),
  vouch: _enc.encode("VOUCH---"),
  ready: _enc.encode("CurveZMQREADY---"),
  messageC: _enc.encode("CurveZMQMESSAGEC"),
  messageS: _enc.encode("CurveZMQMESSAGES"),
};
const _MESSAGE = _enc.encode("\x07MESSAGE");

function _nonce(prefix: Uint8Array, suffix: Uint8Array): Uint8Array {
  const n = new Uint8Array(24);
  n.set(prefix);
  n.set(suffix, prefix.length);
  return n;
}

/** Write `n` (< 2^53) as 8 bytes big-endian at `at`. */
function _putU64(b: Uint8Array, at: number, n: number): void {
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  b[at] = hi >>> 24;
  b[at + 1] = (hi >>> 16) & 0xff;
  b[at + 2] = (hi >>> 8) & 0xff;
  b[at + 3] = hi & 0xff;
  b[at + 4] = lo >>> 24;
  b[at + 5] = (lo >>> 16) & 0xff;
  b[at + 6] = (lo >>> 8) & 0xff;
  b[at + 7] = lo & 0xff;
}

function _u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  _putU64(b, 0, n);
  return b;
}

/** 8 bytes big-endian at `at`; `Infinity` past 2^53 (never a valid next nonce of ours). */
function _readU64(b: Uint8Array, at: number): number {
  const hi = ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
  const lo = ((b[at + 4] << 24) >>> 0) + (b[at + 5] << 16) + (b[at + 6] << 8) + b[at + 7];
  return hi > 0x1fffff ? Number.POSITIVE_INFINITY : hi * 0x100000000 + lo;
}

function _concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function _equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function _random(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** The part both sides share once the handshake is done: MESSAGE boxes and nonces. */
abstract class _CurveBase implements Mechanism {
  readonly name = "CURVE";
  abstract readonly asServer: boolean;
  readonly plain = false;
  peerMetadata = new Map<string, Uint8Array>();
  peerKey?: Uint8Array;
  protected ctx: HandshakeContext;
  /** Our next short nonce. */
  protected nonce = 1;
  /** The last short nonce the peer used. */
  protected peerNonce = 0;
  /** Box key between the two short-term keys. */
  protected precomputed?: Uint8Array;
  abstract readonly encodePrefix: Uint8Array;
  abstract readonly decodePrefix: Uint8Array;

  constructor(ctx: HandshakeContext) {
    this.ctx = ctx;
  }

  abstract start(): Uint8Array[];
  abstract onCommand(body: Uint8Array): HandshakeStep | Promise<HandshakeStep>;

  protected nextNonce(): Uint8Array {
    return _u64(this.nonce++);
  }

  /** Check and record the peer's next short nonce (strictly increasing). */
  protected takePeerNonce(n: number, what: string): void {
    if (n <= this.peerNonce || n === Number.POSITIVE_INFINITY) {
      throw new HandshakeError("protocol", `${what}: nonce not increasing (replayed message?)`);
    }
    this.peerNonce = n;
  }

  /** Nonce buffers per direction (prefix fixed, the short nonce rewritten per message). */
  #encNonce?: Uint8Array;
  #decNonce?: Uint8Array;

  encode(body: Uint8Array, more: boolean, command: boolean): Uint8Array {
    // one buffer: [frame header][MESSAGE (8)][short nonce (8)][tag (16)][box(flags + body)].
    // The cipher writes its 32-byte scratch + tag from the MESSAGE offset on and encrypts the
    // plaintext in place; MESSAGE and the nonce are written over the scratch afterwards.
    const n = 1 + body.length;
    const wireLen = 32 + n;
    const h = frameHeaderSize(wireLen);
    const out = new Uint8Array(h + wireLen);
    out[h + 32] = (more ? 1 : 0) | (command ? 2 : 0);
    out.set(body, h + 33);
    const nonce = this.#encNonce ??= _nonce(this.encodePrefix, new Uint8Array(8));
    _putU64(nonce, 16, this.nonce++);
    sealBoxInto(this.precomputed!, nonce, out.subarray(h, h + wireLen));
    writeFrameHeader(out, 0, wireLen, false, false);
    out.set(_MESSAGE, h);
    out.set(nonce.subarray(16), h + 8);
    // the part's own flags travel inside the box; the outer frame carries none (as libzmq)
    return out;
  }

  decode(b: Uint8Array): { body: Uint8Array; more: boolean; command: boolean } {
    if (b.length < 33 || !_equal(b.subarray(0, 8), _MESSAGE)) {
      throw new HandshakeError("protocol", "expected a CURVE MESSAGE");
    }
    this.takePeerNonce(_readU64(b, 8), "MESSAGE");
    const nonce = this.#decNonce ??= _nonce(this.decodePrefix, new Uint8Array(8));
    nonce.set(b.subarray(8, 16), 16);
    const plain = openBox(this.precomputed!, nonce, b.subarray(16));
    if (!plain || plain.length < 1) {
      throw new HandshakeError("crypto", "a MESSAGE box did not open");
    }
    return { body: plain.subarray(1), more: (plain[0] & 1) !== 0, command: (plain[0] & 2) !== 0 };
  }
}

/** Keys of a CURVE client: its long-term pair and the server's public key (raw). */
export interface CurveClientKeys extends RawKeyPair {
  serverKey: Uint8Array;
}

/**
 * The client side (a connecting socket with `curveServerKey`).
 *
 * @example
 * ```ts
 * import { CurveClient } from "./curve.ts";
 * import { curveKeyPair } from "./box.ts";
 * const c = curveKeyPair();
 * new CurveClient({ socketType: "DEALER", identity: new Uint8Array(), peerAddress: "" }, { ...c, serverKey: curveKeyPair().publicKey }).start()[0].length; // 200
 * ```
 */
export class CurveClient extends _CurveBase {
  readonly asServer = false;
  readonly encodePrefix = _P.messageC;
  readonly decodePrefix = _P.messageS;
  #keys: CurveClientKeys;
  #short = curveKeyPair();
  #state: "hello" | "welcome" | "ready" | "done" = "hello";

  /** `keys`: our long-term pair and the server's long-term public key. */
  constructor(ctx: HandshakeContext, keys: CurveClientKeys) {
    super(ctx);
    this.#keys = keys;
    this.peerKey = keys.serverKey;
  }

  /** What to say when the server hangs up during the handshake. */
  closedError(): HandshakeError {
    if (this.#state === "welcome") {
      return new HandshakeError(
        "server-key",
        "the server closed the connection after our HELLO: the server public key we hold does not match the server's",
      );
    }
    return new HandshakeError(
      "closed",
      this.#state === "ready"
        ? "the server closed the connection after our INITIATE: it refused our client key"
        : "the connection closed during the CURVE handshake",
    );
  }

  start(): Uint8Array[] {
    const short = this.nextNonce();
    const box = sealBox(
      boxKey(this.#keys.serverKey, this.#short.secretKey),
      _nonce(_P.hello, short),
      new Uint8Array(64),
    );
    this.#state = "welcome";
    // version 1.0, 72 bytes of anti-amplification padding, C', nonce, box
    const data = _concat(
      new Uint8Array([1, 0]),
      new Uint8Array(72),
      this.#short.publicKey,
      short,
      box,
    );
    return [encodeCommand("HELLO", data)];
  }

  onCommand(body: Uint8Array): HandshakeStep {
    const cmd = handshakeCommand(body);
    if (cmd.name === "ERROR") {
      throw new HandshakeError(
        this.#state === "welcome" ? "server-key" : "refused-by-peer",
        `the server refused us: ${explainReason(errorReason(cmd.data))}`,
      );
    }
    if (this.#state === "welcome" && cmd.name === "WELCOME") return this.#welcome(cmd.data);
    if (this.#state === "ready" && cmd.name === "READY") return this.#ready(cmd.data);
    throw new HandshakeError("protocol", `unexpected ${cmd.name} command in the CURVE handshake`);
  }

  #welcome(d: Uint8Array): HandshakeStep {
    if (d.length !== 160) throw new HandshakeError("protocol", "malformed WELCOME");
    const plain = openBox(
      boxKey(this.#keys.serverKey, this.#short.secretKey),
      _nonce(_P.welcome, d.subarray(0, 16)),
      d.subarray(16),
    );
    if (!plain) {
      throw new HandshakeError(
        "server-key",
        "the WELCOME box did not open: wrong server public key",
      );
    }
    const serverShort = plain.subarray(0, 32);
    const cookie = plain.slice(32, 128);
    let vouchKey: Uint8Array;
    try {
      this.precomputed = boxKey(serverShort, this.#short.secretKey);
      vouchKey = boxKey(serverShort, this.#keys.secretKey);
    } catch {
      throw new HandshakeError("crypto", "the server's short-term key is invalid");
    }
    const vouchNonce = _random(16);
    const vouch = sealBox(
      vouchKey,
      _nonce(_P.vouch, vouchNonce),
      _concat(this.#short.publicKey, this.#keys.serverKey),
    );
    const short = this.nextNonce();
    const box = sealBox(
      this.precomputed,
      _nonce(_P.initiate, short),
      _concat(this.#keys.publicKey, vouchNonce, vouch, ourMetadata(this.ctx)),
    );
    this.#state = "ready";
    return { send: [encodeCommand("INITIATE", _concat(cookie, short, box))] };
  }

  #ready(d: Uint8Array): HandshakeStep {
    if (d.length < 8 + 16) throw new HandshakeError("protocol", "malformed READY");
    const n = _readU64(d, 0);
    this.takePeerNonce(n, "READY");
    const plain = openBox(this.precomputed!, _nonce(_P.ready, d.subarray(0, 8)), d.subarray(8));
    if (!plain) throw new HandshakeError("crypto", "the READY box did not open");
    this.peerMetadata = checkPeerMetadata(plain, this.ctx.socketType);
    this.#state = "done";
    return { send: [], done: true };
  }
}

/**
 * The server side (a socket with `curveServer: true`): HELLO → WELCOME, INITIATE → the
 * authorizer → READY (or ERROR).
 *
 * @example
 * ```ts
 * import { CurveServer } from "./curve.ts";
 * import { curveKeyPair } from "./box.ts";
 * new CurveServer({ socketType: "ROUTER", identity: new Uint8Array(), peerAddress: "" }, curveKeyPair()).start(); // []
 * ```
 */
export class CurveServer extends _CurveBase {
  readonly asServer = true;
  readonly encodePrefix = _P.messageS;
  readonly decodePrefix = _P.messageC;
  #keys: RawKeyPair;
  #state: "hello" | "initiate" | "done" = "hello";
  #clientShort?: Uint8Array;
  #short?: RawKeyPair;
  #cookieKey?: Uint8Array;

  /** `keys`: the server's long-term pair. */
  constructor(ctx: HandshakeContext, keys: RawKeyPair) {
    super(ctx);
    this.#keys = keys;
  }

  start(): Uint8Array[] {
    return [];
  }

  async onCommand(body: Uint8Array): Promise<HandshakeStep> {
    const cmd = handshakeCommand(body);
    if (cmd.name === "ERROR") {
      throw new HandshakeError(
        "refused-by-peer",
        `the client sent ERROR: ${errorReason(cmd.data)}`,
      );
    }
    if (this.#state === "hello" && cmd.name === "HELLO") return this.#hello(cmd.data);
    if (this.#state === "initiate" && cmd.name === "INITIATE") {
      return await this.#initiate(cmd.data);
    }
    throw new HandshakeError("protocol", `unexpected ${cmd.name} command in the CURVE handshake`);
  }

  #hello(d: Uint8Array): HandshakeStep {
    if (d.length !== 194) throw new HandshakeError("protocol", "malformed HELLO");
    if (d[0] !== 1 || d[1] !== 0) {
      throw new HandshakeError("protocol", `unsupported CurveZMQ version ${d[0]}.${d[1]}`);
    }
    const clientShort = d.slice(74, 106);
    const short = d.subarray(106, 114);
    this.takePeerNonce(_readU64(short, 0), "HELLO");
    let key: Uint8Array;
    try {
      key = boxKey(clientShort, this.#keys.secretKey);
    } catch {
      throw new HandshakeError("crypto", "the client's short-term key is invalid");
    }
    const plain = openBox(key, _nonce(_P.hello, short), d.subarray(114));
    if (!plain || plain.some((b) => b !== 0)) {
      const e = new HandshakeError(
        "crypto",
        "the HELLO box did not open: the client uses another server public key",
      );
      return { send: [errorCommand("HELLO: wrong server key")], fail: e };
    }
    this.#clientShort = clientShort;
    this.#short = curveKeyPair();
    this.#cookieKey = _random(32);
    const cookieNonce = _random(16);
    const cookie = _concat(
      cookieNonce,
      sealBox(
        this.#cookieKey,
        _nonce(_P.cookie, cookieNonce),
        _concat(clientShort, this.#short.secretKey),
      ),
    );
    const welcomeNonce = _random(16);
    const box = sealBox(
      key,
      _nonce(_P.welcome, welcomeNonce),
      _concat(this.#short.publicKey, cookie),
    );
    this.#state = "initiate";
    return { send: [encodeCommand("WELCOME", _concat(welcomeNonce, box))] };
  }

  async #initiate(d: Uint8Array): Promise<HandshakeStep> {
    if (d.length < 96 + 8 + 16 + 128) throw new HandshakeError("protocol", "malformed INITIATE");
    const cookie = openBox(
      this.#cookieKey!,
      _nonce(_P.cookie, d.subarray(0, 16)),
      d.subarray(16, 96),
    );
    // the cookie key is forgotten at once: a replayed INITIATE cannot be answered again
    this.#cookieKey = new Uint8Array(32);
    if (
      !cookie || !_equal(cookie.subarray(0, 32), this.#clientShort!) ||
      !_equal(cookie.subarray(32, 64), this.#short!.secretKey)
    ) throw new HandshakeError("crypto", "INITIATE carries a cookie that is not ours");
    const short = d.subarray(96, 104);
    this.takePeerNonce(_readU64(short, 0), "INITIATE");
    this.precomputed = boxKey(this.#clientShort!, this.#short!.secretKey);
    const plain = openBox(this.precomputed, _nonce(_P.initiate, short), d.subarray(104));
    if (!plain || plain.length < 128) {
      throw new HandshakeError("crypto", "the INITIATE box did not open");
    }
    const clientKey = plain.slice(0, 32);
    let vouchKey: Uint8Array;
    try {
      vouchKey = boxKey(clientKey, this.#short!.secretKey);
    } catch {
      throw new HandshakeError("crypto", "the client's long-term key is invalid");
    }
    const vouch = openBox(
      vouchKey,
      _nonce(_P.vouch, plain.subarray(32, 48)),
      plain.subarray(48, 128),
    );
    if (
      !vouch || !_equal(vouch.subarray(0, 32), this.#clientShort!) ||
      !_equal(vouch.subarray(32, 64), this.#keys.publicKey)
    ) throw new HandshakeError("crypto", "the client's vouch does not match its keys");
    this.peerMetadata = checkPeerMetadata(plain.subarray(128), this.ctx.socketType);
    this.peerKey = clientKey;
    const refused = await authorizeWith(this.ctx.authorize, {
      mechanism: "CURVE",
      clientKey,
      address: this.ctx.peerAddress,
      identity: this.peerMetadata.get("identity") ?? new Uint8Array(),
    });
    if (refused) return { send: [errorCommand(REFUSED_REASON)], fail: refused };
    const ours = this.nextNonce();
    const box = sealBox(this.precomputed, _nonce(_P.ready, ours), ourMetadata(this.ctx));
    this.#state = "done";
    return { send: [encodeCommand("READY", _concat(ours, box))], done: true };
  }
}
