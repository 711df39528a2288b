/**
 * ZMTP security mechanisms as handshake state machines, pure (no I/O): the connection feeds
 * each received command in and sends what comes out. This module has the common types,
 * the checks both mechanisms share, and NULL (RFC 37 §NULL); CURVE is in `curve.ts`.
 *
 * @example
 * ```ts
 * import { NullMechanism } from "./mechanism.ts";
 * const m = new NullMechanism({ socketType: "DEALER", identity: new Uint8Array(), peerAddress: "127.0.0.1:5555" });
 * m.start().length; // 1 (READY)
 * ```
 * @module
 */
import {
  type Command,
  decodeCommand,
  decodeMetadata,
  encodeCommand,
  encodeMetadata,
} from "./codec.ts";

/** Socket types this transport implements. */
export type SocketType = "DEALER" | "ROUTER";

/** Why a handshake failed (see {@linkcode HandshakeError}). */
export type HandshakeFailure =
  /** The peer uses another security mechanism. */
  | "mechanism-mismatch"
  /** The server did not accept our HELLO: we hold a wrong server public key (CURVE client). */
  | "server-key"
  /** A box did not open, a cookie or vouch did not match: keys or a broken peer. */
  | "crypto"
  /** Our authorizer refused the client (its key or address). */
  | "unauthorized"
  /** The peer sent ERROR (e.g. it refused our key). */
  | "refused-by-peer"
  /** The peer's socket type cannot talk to ours. */
  | "socket-type"
  /** Malformed commands, wrong order, wrong version. */
  | "protocol"
  /** No complete handshake within the handshake timeout. */
  | "timeout"
  /** The connection closed during the handshake. */
  | "closed";

/** A failed handshake; `failure` says why, the message says it for a person. */
export class HandshakeError extends Error {
  override name = "HandshakeError";
  /** The kind of failure. */
  readonly failure: HandshakeFailure;
  /** @param failure the kind @param message what happened, for logs */
  constructor(failure: HandshakeFailure, message: string) {
    super(message);
    this.failure = failure;
  }
}

/** What an authorizer is asked about a peer (the server side of a handshake). */
export interface AuthRequest {
  /** "NULL" or "CURVE". */
  mechanism: string;
  /** The client's long-term CURVE public key (raw 32 bytes); CURVE only. */
  clientKey?: Uint8Array;
  /** The peer's address (`host:port`). */
  address: string;
  /** The peer's `Identity` property (may be empty). */
  identity: Uint8Array;
}

/**
 * Decides whether a peer may complete the handshake: `true` admits it, a string refuses it
 * with that reason (sent to the peer in an ERROR command, and reported locally).
 */
export type Authorizer = (req: AuthRequest) => true | string | Promise<true | string>;

/** What a mechanism needs to know about our side. */
export interface HandshakeContext {
  /** Our socket type (sent as `Socket-Type`). */
  socketType: SocketType;
  /** Our routing id (sent as `Identity`). */
  identity: Uint8Array;
  /** The peer's address, for the authorizer and messages. */
  peerAddress: string;
  /** Server side: admission check (ZAP's role). */
  authorize?: Authorizer;
}

/** The outcome of feeding one command to a mechanism. */
export interface HandshakeStep {
  /** Command bodies to send, in order. */
  send: Uint8Array[];
  /** The handshake is complete (after sending `send`). */
  done?: boolean;
  /** Send `send`, then fail with this error (the peer was refused). */
  fail?: HandshakeError;
}

/** A security mechanism (one per connection). */
export interface Mechanism {
  /** Its name in the greeting. */
  readonly name: string;
  /** The greeting's as-server bit. */
  readonly asServer: boolean;
  /** Command bodies to send once the greetings are exchanged. */
  start(): Uint8Array[];
  /** Handle one handshake command from the peer (throws {@linkcode HandshakeError}). */
  onCommand(body: Uint8Array): HandshakeStep | Promise<HandshakeStep>;
  /** The peer's metadata, lower-cased names (complete once done). */
  readonly peerMetadata: Map<string, Uint8Array>;
  /** The peer's long-term CURVE key, if any (complete once done). */
  readonly peerKey?: Uint8Array;
  /** Whether message parts travel as plain frames (NULL) or must go through the two below. */
  readonly plain: boolean;
  /** One message part as a wire frame (CURVE: a MESSAGE command box). */
  encode(body: Uint8Array, more: boolean, command: boolean): Uint8Array;
  /** A wire command frame's body after the handshake → the part inside (CURVE). */
  decode(commandBody: Uint8Array): { body: Uint8Array; more: boolean; command: boolean };
}

const _PEERS: Record<SocketType, string[]> = {
  DEALER: ["DEALER", "ROUTER", "REP"],
  ROUTER: ["DEALER", "REQ", "ROUTER"],
};

const _dec = new TextDecoder();

/**
 * The metadata we send: `Socket-Type` and `Identity`, as libzmq does for DEALER and ROUTER.
 *
 * @example
 * ```ts
 * import { ourMetadata } from "./mechanism.ts";
 * ourMetadata({ socketType: "ROUTER", identity: new Uint8Array(), peerAddress: "" }).length > 0; // true
 * ```
 */
export function ourMetadata(ctx: HandshakeContext): Uint8Array {
  return encodeMetadata([["Socket-Type", ctx.socketType], ["Identity", ctx.identity]]);
}

/**
 * Parse the peer's metadata and check its socket type against ours; throws
 * {@linkcode HandshakeError}.
 *
 * @example
 * ```ts
 * import { checkPeerMetadata } from "./mechanism.ts";
 * import { encodeMetadata } from "./codec.ts";
 * checkPeerMetadata(encodeMetadata([["Socket-Type", "ROUTER"]]), "DEALER").size; // 1
 * ```
 */
export function checkPeerMetadata(raw: Uint8Array, ours: SocketType): Map<string, Uint8Array> {
  let meta: Map<string, Uint8Array>;
  try {
    meta = decodeMetadata(raw);
  } catch (e) {
    throw new HandshakeError("protocol", (e as Error).message);
  }
  const t = meta.get("socket-type");
  if (!t) throw new HandshakeError("protocol", "peer sent no Socket-Type");
  const type = _dec.decode(t);
  if (!_PEERS[ours].includes(type)) {
    throw new HandshakeError("socket-type", `a ${type} peer cannot talk to a ${ours} socket`);
  }
  return meta;
}

/**
 * The reason in a peer's ERROR command.
 *
 * @example
 * ```ts
 * import { errorReason } from "./mechanism.ts";
 * errorReason(new Uint8Array([3, 52, 48, 48])); // "400"
 * ```
 */
export function errorReason(data: Uint8Array): string {
  const n = data[0] ?? 0;
  return _dec.decode(data.subarray(1, 1 + n)).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * The ERROR reason sent to a peer our authorizer refused: the ZAP status code "400", which
 * libzmq reports as an authentication failure (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`). The
 * authorizer's own text stays in our `handshakeFailed` event and is not sent.
 */
export const REFUSED_REASON = "400";

/**
 * A peer's ERROR reason for a person: ZAP status codes get their meaning.
 *
 * @example
 * ```ts
 * import { explainReason } from "./mechanism.ts";
 * explainReason("400"); // "not authorized (our key or address was refused; ZAP status 400)"
 * ```
 */
export function explainReason(reason: string): string {
  if (reason === "400") return "not authorized (our key or address was refused; ZAP status 400)";
  if (reason === "300") return "temporary failure (ZAP status 300)";
  if (reason === "500") return "the server's authenticator failed (ZAP status 500)";
  return reason;
}

/**
 * An ERROR command body with `reason` (at most 255 bytes).
 *
 * @example
 * ```ts
 * import { errorCommand } from "./mechanism.ts";
 * errorCommand("400").length; // 1 + 5 + 1 + 3
 * ```
 */
export function errorCommand(reason: string): Uint8Array {
  const r = new TextEncoder().encode(reason).subarray(0, 255);
  const data = new Uint8Array(1 + r.length);
  data[0] = r.length;
  data.set(r, 1);
  return encodeCommand("ERROR", data);
}

/**
 * Decode a handshake command body; throws {@linkcode HandshakeError} ("protocol").
 *
 * @example
 * ```ts
 * import { handshakeCommand } from "./mechanism.ts";
 * import { encodeCommand } from "./codec.ts";
 * handshakeCommand(encodeCommand("READY")).name; // "READY"
 * ```
 */
export function handshakeCommand(body: Uint8Array): Command {
  try {
    return decodeCommand(body);
  } catch (e) {
    throw new HandshakeError("protocol", (e as Error).message);
  }
}

/**
 * Run the authorizer (if any) and turn its answer into an error, or `undefined` if admitted.
 *
 * @example
 * ```ts
 * import { authorizeWith } from "./mechanism.ts";
 * await authorizeWith(undefined, { mechanism: "NULL", address: "", identity: new Uint8Array() }); // undefined
 * ```
 */
export async function authorizeWith(
  authorize: Authorizer | undefined,
  req: AuthRequest,
): Promise<HandshakeError | undefined> {
  if (!authorize) return undefined;
  let verdict: true | string;
  try {
    verdict = await authorize(req);
  } catch (e) {
    verdict = `authorizer failed: ${(e as Error).message}`;
  }
  if (verdict === true) return undefined;
  return new HandshakeError("unauthorized", verdict || "refused");
}

/**
 * ZMTP's NULL mechanism: both sides send READY with their metadata. The server side runs
 * the authorizer (if any) before its READY and sends ERROR instead when refused.
 *
 * @example
 * ```ts
 * import { NullMechanism } from "./mechanism.ts";
 * new NullMechanism({ socketType: "ROUTER", identity: new Uint8Array(), peerAddress: "" }).name; // "NULL"
 * ```
 */
export class NullMechanism implements Mechanism {
  readonly name = "NULL";
  readonly asServer: boolean;
  readonly plain = true;
  peerMetadata = new Map<string, Uint8Array>();
  #ctx: HandshakeContext;
  #sentReady = false;

  /** `asServer`: run the authorizer and answer (a bound socket). */
  constructor(ctx: HandshakeContext, asServer = false) {
    this.#ctx = ctx;
    this.asServer = asServer;
  }

  start(): Uint8Array[] {
    if (this.#ctx.authorize) return []; // READY only once admitted
    this.#sentReady = true;
    return [encodeCommand("READY", ourMetadata(this.#ctx))];
  }

  async onCommand(body: Uint8Array): Promise<HandshakeStep> {
    const cmd = handshakeCommand(body);
    if (cmd.name === "ERROR") {
      throw new HandshakeError(
        "refused-by-peer",
        `peer refused us: ${explainReason(errorReason(cmd.data))}`,
      );
    }
    if (cmd.name !== "READY") {
      throw new HandshakeError("protocol", `unexpected ${cmd.name} command in a NULL handshake`);
    }
    this.peerMetadata = checkPeerMetadata(cmd.data, this.#ctx.socketType);
    if (this.#sentReady) return { send: [], done: true };
    const refused = await authorizeWith(this.#ctx.authorize, {
      mechanism: "NULL",
      address: this.#ctx.peerAddress,
      identity: this.peerMetadata.get("identity") ?? new Uint8Array(),
    });
    if (refused) return { send: [errorCommand(REFUSED_REASON)], fail: refused };
    this.#sentReady = true;
    return { send: [encodeCommand("READY", ourMetadata(this.#ctx))], done: true };
  }

  encode(): Uint8Array {
    throw new Error("NULL message parts are plain frames");
  }

  decode(): never {
    throw new HandshakeError("protocol", "unexpected command after a NULL handshake");
  }
}
