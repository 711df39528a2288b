/**
 * ZeroMQ sockets on our own ZMTP 3.1 connections (`connection.ts`): {@linkcode Dealer} and
 * {@linkcode Router}, binding and connecting over TCP, NULL or CURVE, wire-compatible with
 * libzmq.
 *
 * What they do, as libzmq does: multipart messages; ROUTER routing ids from the peer's
 * `Identity` (or a generated 5-byte id starting with 0), mandatory routing (a send to an
 * unknown id throws {@linkcode HostUnreachableError}), optional handover; DEALER round-robin
 * sends and fair receives; ZMTP heartbeats (PING with a TTL, PONG) with a timeout;
 * reconnect with exponential back-off for connecting sockets. What they add: connection
 * events as callbacks (`connect`, `disconnect` with its reason, `handshakeFailed` with its
 * {@linkcode HandshakeError}, `connectFailed`), a server-side {@linkcode Authorizer} (ZAP's
 * role), the {@linkcode Peer} behind every received message, and back-pressure as a promise:
 * `send()` waits while the peer's queue is at its high-water mark and nothing is ever
 * dropped silently.
 *
 * @example
 * ```ts
 * import { Dealer, Router } from "./socket.ts";
 * const router = new Router();
 * const address = await router.bind("tcp://127.0.0.1:0");
 * const dealer = new Dealer({ routingId: "d1" });
 * dealer.connect(address);
 * await dealer.send([new TextEncoder().encode("hi")]);
 * const [id, body] = await router.receive();
 * await router.send([id, body]);
 * await dealer.receive();
 * await dealer.close();
 * await router.close();
 * ```
 * @module
 */
import { sleep } from "../../util/sleep.ts";
import { curvePublicKey, rawKey } from "./box.ts";
import { Connection } from "./connection.ts";
import { CurveClient, CurveServer } from "./curve.ts";
import {
  type Authorizer,
  type HandshakeContext,
  HandshakeError,
  type Mechanism,
  NullMechanism,
  type SocketType,
} from "./mechanism.ts";

/** Options of a socket. Keys are raw 32 bytes or 40 Z85 characters. */
export interface SocketOptions {
  /** Our routing id, sent as the `Identity` property (at most 255 bytes). */
  routingId?: string | Uint8Array;
  /** Be the CURVE server (needs `curveSecretKey`). */
  curveServer?: boolean;
  /** Our long-term CURVE secret key (server, or client with `curveServerKey`). */
  curveSecretKey?: string | Uint8Array;
  /** Our long-term CURVE public key (derived from the secret key when absent). */
  curvePublicKey?: string | Uint8Array;
  /** The server's public key: makes this socket a CURVE client. */
  curveServerKey?: string | Uint8Array;
  /** Server side: admit or refuse each peer at the end of its handshake. */
  authorize?: Authorizer;
  /** Largest message accepted from a peer, bytes (default 64 MiB); larger closes that peer. */
  maxMessageSize?: number;
  /** Messages queued per peer before `send()` waits (default 1000; 0 = no limit). */
  sendHighWaterMark?: number;
  /** Messages queued for `receive()` before peers stop being read (default 1000; 0 = no limit). */
  receiveHighWaterMark?: number;
  /** Send a PING to every peer this often, ms (default 0 = off). */
  heartbeatInterval?: number;
  /** Close a peer silent for this long, ms (default 3 × `heartbeatInterval`). */
  heartbeatTimeout?: number;
  /** Fail a handshake not done within this many ms (default 30 000, as libzmq). */
  handshakeTimeout?: number;
  /** First reconnect delay, ms (default 100). */
  reconnectInterval?: number;
  /** Largest reconnect delay; delays double up to it (default 5 000). */
  reconnectIntervalMax?: number;
  /** ROUTER: throw {@linkcode HostUnreachableError} for an unknown routing id (default true). */
  mandatory?: boolean;
  /** ROUTER: a new peer with a routing id in use takes it over (default false: it gets a generated id). */
  handover?: boolean;
  /** Monotonic clock in ms (default `performance.now`), for heartbeats. */
  clock?: () => number;
}

/** A send to a routing id no peer holds (ROUTER, mandatory routing). */
export class HostUnreachableError extends Error {
  override name = "HostUnreachableError";
  /** Node-style code, as zeromq.js reports it. */
  readonly code = "EHOSTUNREACH";
}

/** An operation on a closed socket. */
export class SocketClosedError extends Error {
  override name = "SocketClosedError";
}

/** A connected, handshaken peer of a socket. */
export interface Peer {
  /** Unique per connection in this process. */
  readonly id: number;
  /** ROUTER: the routing id messages from this peer carry. */
  readonly routingId: Uint8Array;
  /** The peer's `Identity` property as sent (may be empty). */
  readonly identity: Uint8Array;
  /** `host:port` of the peer. */
  readonly address: string;
  /** The peer's long-term CURVE public key (raw), when CURVE. */
  readonly curveKey?: Uint8Array;
  /** The peer's socket type. */
  readonly socketType: string;
  /** False once disconnected. */
  readonly connected: boolean;
  /** Messages queued for this peer and not yet written. */
  readonly queued: number;
  /** Queue a message for exactly this peer now; false if it is gone or at its high-water mark. */
  trySend(frames: Uint8Array[]): boolean;
  /** Close this peer's connection. */
  close(reason?: string): void;
}

/** Events of a socket and their listeners' arguments. */
export interface SocketEvents {
  /** A peer finished its handshake. */
  connect: [peer: Peer];
  /** A peer's connection ended, after its last message was delivered. */
  disconnect: [peer: Peer, reason: string];
  /** A connection's handshake failed (wrong key, refused, mechanism mismatch, …). */
  handshakeFailed: [address: string, error: HandshakeError];
  /** A connecting socket could not reach `address`; it tries again after `retryMs`. */
  connectFailed: [address: string, error: Error, retryMs: number];
}

type _Listener<K extends keyof SocketEvents> = (...args: SocketEvents[K]) => void;

const _dec = new TextDecoder();
const _enc = new TextEncoder();

function _bytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? _enc.encode(v) : v;
}

/** Latin-1 key of a routing id (a Map key that is unique per byte string). */
export function routingKey(id: Uint8Array): string {
  let s = "";
  for (let i = 0; i < id.length; i++) s += String.fromCharCode(id[i]);
  return s;
}

/** `tcp://host:port` → hostname and port (`*` means every interface / any port). */
export function parseTcpAddress(address: string): { hostname: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\*|\d{1,5})$/.exec(address);
  if (!m) throw new TypeError(`invalid address "${address}": expected tcp://host:port`);
  let hostname = m[1];
  if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
  if (hostname === "*") hostname = "0.0.0.0";
  const port = m[2] === "*" ? 0 : Number(m[2]);
  if (port > 65535) throw new TypeError(`invalid address "${address}": port out of range`);
  return { hostname, port };
}

class _Peer implements Peer {
  readonly id: number;
  routingId: Uint8Array;
  readonly identity: Uint8Array;
  readonly address: string;
  readonly curveKey?: Uint8Array;
  readonly socketType: string;
  conn: Connection;
  #socket: _Socket;

  constructor(socket: _Socket, conn: Connection, routingId: Uint8Array) {
    this.#socket = socket;
    this.conn = conn;
    this.id = conn.id;
    this.routingId = routingId;
    const meta = conn.mechanism.peerMetadata;
    this.identity = meta.get("identity") ?? new Uint8Array();
    this.socketType = _dec.decode(meta.get("socket-type") ?? new Uint8Array());
    this.address = conn.address;
    if (conn.mechanism.name === "CURVE" && conn.mechanism.asServer) {
      this.curveKey = conn.mechanism.peerKey;
    }
  }

  get connected(): boolean {
    return this.conn.ready;
  }

  get queued(): number {
    return this.conn.queued;
  }

  trySend(frames: Uint8Array[]): boolean {
    if (frames.length === 0) throw new TypeError("a message needs at least one frame");
    if (!this.conn.ready || this.#socket.full(this.conn)) return false;
    this.conn.write(frames);
    return true;
  }

  close(reason = "closed by us"): void {
    this.conn.close(reason);
  }
}

/** What both socket types share: transport, peers, events, receiving. */
abstract class _Socket {
  abstract readonly type: SocketType;
  protected opts: Required<
    Pick<
      SocketOptions,
      | "maxMessageSize"
      | "sendHighWaterMark"
      | "receiveHighWaterMark"
      | "heartbeatInterval"
      | "heartbeatTimeout"
      | "handshakeTimeout"
      | "reconnectInterval"
      | "reconnectIntervalMax"
      | "mandatory"
      | "handover"
    >
  >;
  #identity: Uint8Array;
  #curve?: {
    server: boolean;
    publicKey: Uint8Array;
    secretKey: Uint8Array;
    serverKey?: Uint8Array;
  };
  #authorize?: Authorizer;
  #clock: () => number;
  #listeners: { [K in keyof SocketEvents]?: _Listener<K>[] } = {};
  #servers: Deno.Listener[] = [];
  #conns = new Set<Connection>();
  protected peers = new Map<Connection, _Peer>();
  #queue: { frames: Uint8Array[]; peer: Peer }[] = [];
  #queueHead = 0;
  #receivers: { resolve: (f: Uint8Array[]) => void; reject: (e: Error) => void }[] = [];
  #handler?: (frames: Uint8Array[], peer: Peer) => void | Promise<void>;
  #waitingSends: {
    frames: Uint8Array[];
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  #readPaused: (() => void)[] = [];
  #heartbeatTimer?: ReturnType<typeof setInterval>;
  #closed = false;
  #stopConnecting = new AbortController();
  #connecting: Promise<void>[] = [];
  /** Accept loops: a listener's port is only free once its pending accept has returned. */
  #accepting: Promise<void>[] = [];
  /** The address of the last `bind`, with the port chosen. */
  lastEndpoint?: string;

  constructor(opts: SocketOptions = {}) {
    this.opts = {
      maxMessageSize: opts.maxMessageSize ?? 64 * 1024 * 1024,
      sendHighWaterMark: opts.sendHighWaterMark ?? 1000,
      receiveHighWaterMark: opts.receiveHighWaterMark ?? 1000,
      heartbeatInterval: opts.heartbeatInterval ?? 0,
      heartbeatTimeout: opts.heartbeatTimeout ?? 3 * (opts.heartbeatInterval ?? 0),
      handshakeTimeout: opts.handshakeTimeout ?? 30_000,
      reconnectInterval: opts.reconnectInterval ?? 100,
      reconnectIntervalMax: opts.reconnectIntervalMax ?? 5_000,
      mandatory: opts.mandatory ?? true,
      handover: opts.handover ?? false,
    };
    this.#identity = _bytes(opts.routingId ?? new Uint8Array());
    if (this.#identity.length > 255) throw new RangeError("routingId: at most 255 bytes");
    if (opts.curveServer || opts.curveServerKey) {
      if (!opts.curveSecretKey) throw new TypeError("curveSecretKey is required for CURVE");
      const secretKey = rawKey(opts.curveSecretKey, "curveSecretKey");
      const publicKey = opts.curvePublicKey
        ? rawKey(opts.curvePublicKey, "curvePublicKey")
        : curvePublicKey(secretKey);
      this.#curve = {
        server: !!opts.curveServer,
        publicKey,
        secretKey,
        serverKey: opts.curveServerKey ? rawKey(opts.curveServerKey, "curveServerKey") : undefined,
      };
      if (!opts.curveServer && !this.#curve.serverKey) {
        throw new TypeError("curveServerKey is required for a CURVE client");
      }
    }
    this.#authorize = opts.authorize;
    this.#clock = opts.clock ?? (() => performance.now());
  }

  /** True once {@linkcode _Socket.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The handshaken peers, in connection order. */
  connectedPeers(): Peer[] {
    return [...this.peers.values()];
  }

  /** Listen for an event; returns a function that stops listening. */
  on<K extends keyof SocketEvents>(
    event: K,
    listener: (...args: SocketEvents[K]) => void,
  ): () => void {
    const list = (this.#listeners[event] ??= []) as _Listener<K>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  protected emit<K extends keyof SocketEvents>(event: K, ...args: SocketEvents[K]): void {
    for (const l of (this.#listeners[event] ?? []) as _Listener<K>[]) {
      try {
        l(...args);
      } catch (e) {
        console.error(`zmtp: a ${event} listener threw:`, e);
      }
    }
  }

  /**
   * Listen on `tcp://host:port` (`*` for any interface or port); resolves to the address
   * actually bound (also in {@linkcode _Socket.lastEndpoint}).
   */
  bind(address: string): Promise<string> {
    try {
      return Promise.resolve(this.#bind(address));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #bind(address: string): string {
    if (this.#closed) throw new SocketClosedError("bind on a closed socket");
    const { hostname, port } = parseTcpAddress(address);
    const listener = Deno.listen({ hostname, port, transport: "tcp" });
    this.#servers.push(listener);
    const a = listener.addr as Deno.NetAddr;
    const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
    this.lastEndpoint = `tcp://${host}:${a.port}`;
    this.#ensureHeartbeat();
    this.#accepting.push(this.#accept(listener));
    return this.lastEndpoint;
  }

  /** Connect to `tcp://host:port`, reconnecting with back-off until closed (returns at once). */
  connect(address: string): void {
    if (this.#closed) throw new SocketClosedError("connect on a closed socket");
    const { hostname, port } = parseTcpAddress(address);
    this.#ensureHeartbeat();
    this.#connecting.push(this.#connectLoop(address, hostname, port));
  }

  /**
   * Deliver every message to `handler` (with its peer) instead of {@linkcode _Socket.receive}.
   * A promise returned by the handler pauses reading from that peer until it settles.
   */
  setHandler(handler: (frames: Uint8Array[], peer: Peer) => void | Promise<void>): void {
    this.#handler = handler;
    const queued = this.#queue.slice(this.#queueHead);
    this.#queue = [];
    this.#queueHead = 0;
    for (const { frames, peer } of queued) void handler(frames, peer);
    for (const r of this.#readPaused.splice(0)) r();
  }

  /** The next message (ROUTER: routing id first). Rejects once the socket is closed. */
  receive(): Promise<Uint8Array[]> {
    if (this.#queueHead < this.#queue.length) {
      const f = this.#queue[this.#queueHead].frames;
      this.#queue[this.#queueHead++] = undefined as unknown as { frames: Uint8Array[]; peer: Peer };
      if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#queueHead);
        this.#queueHead = 0;
      }
      if (this.#readPaused.length > 0 && this.#queued() < this.#rcvHwm()) {
        for (const r of this.#readPaused.splice(0)) r();
      }
      return Promise.resolve(f);
    }
    if (this.#closed) return Promise.reject(new SocketClosedError("socket closed"));
    return new Promise((resolve, reject) => this.#receivers.push({ resolve, reject }));
  }

  /** Messages as they arrive, until the socket closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array[]> {
    while (true) {
      try {
        yield await this.receive();
      } catch (e) {
        if (e instanceof SocketClosedError) return;
        throw e;
      }
    }
  }

  /** Queue `frames` now if possible; false when it would wait (no peer, or at the high-water mark). */
  abstract trySend(frames: Uint8Array[]): boolean;

  /**
   * Send `frames`, waiting while it cannot be queued (no peer yet, or the peer at its
   * high-water mark). Sends complete in the order they were made. Rejects on a closed
   * socket (and, ROUTER, for a routing id no peer holds).
   */
  send(frames: Uint8Array[]): Promise<void> {
    if (this.#waitingSends.length === 0) {
      try {
        if (this.trySend(frames)) return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.#closed) return Promise.reject(new SocketClosedError("send on a closed socket"));
    return new Promise((resolve, reject) => this.#waitingSends.push({ frames, resolve, reject }));
  }

  /** Messages given to {@linkcode _Socket.send} that are still waiting for room. */
  get waitingSends(): number {
    return this.#waitingSends.length;
  }

  /**
   * Close: stop listening and connecting, then close every connection, after up to
   * `linger` ms (default 0) for queued messages to be written.
   */
  async close(opts: { linger?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopConnecting.abort();
    clearInterval(this.#heartbeatTimer);
    for (const l of this.#servers) {
      try {
        l.close();
      } catch { /* already closed */ }
    }
    const linger = opts.linger ?? 0;
    if (linger > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...this.#conns].map((c) => c.flushed())),
        new Promise((r) => timer = setTimeout(r, linger)),
      ]);
      clearTimeout(timer);
    }
    for (const c of [...this.#conns]) c.close("socket closed");
    for (const r of this.#receivers.splice(0)) r.reject(new SocketClosedError("socket closed"));
    for (const w of this.#waitingSends.splice(0)) {
      w.reject(new SocketClosedError("socket closed before the message could be sent"));
    }
    for (const r of this.#readPaused.splice(0)) r();
    await Promise.allSettled([...this.#connecting, ...this.#accepting]);
  }

  // ------------------------------------------------------------------ for subclasses

  /** Is this connection at its send high-water mark? */
  full(conn: Connection): boolean {
    const hwm = this.opts.sendHighWaterMark;
    return hwm > 0 && conn.queued >= hwm;
  }

  /** A peer finished its handshake: its routing id (ROUTER) or `undefined` to refuse it. */
  protected abstract attach(conn: Connection): Uint8Array | undefined;
  /** A peer finished its handshake (before the `connect` event). */
  protected abstract added(peer: _Peer): void;
  /** A peer went away. */
  protected abstract detach(peer: _Peer): void;
  /** Room may have appeared (a peer drained or connected). */
  protected wakeSenders(): void {
    while (this.#waitingSends.length > 0) {
      const w = this.#waitingSends[0];
      try {
        if (!this.trySend(w.frames)) return;
        this.#waitingSends.shift();
        w.resolve();
      } catch (e) {
        this.#waitingSends.shift();
        w.reject(e as Error);
      }
    }
  }
  /** The frames a received message is delivered as. */
  protected abstract incoming(peer: _Peer, frames: Uint8Array[]): Uint8Array[];

  // ------------------------------------------------------------------ internals

  #rcvHwm(): number {
    return this.opts.receiveHighWaterMark || Number.POSITIVE_INFINITY;
  }

  #queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  #mechanism(asServer: boolean, peerAddress: string): Mechanism {
    const ctx: HandshakeContext = {
      socketType: this.type,
      identity: this.#identity,
      peerAddress,
      authorize: asServer ? this.#authorize : undefined,
    };
    const c = this.#curve;
    if (!c) return new NullMechanism(ctx, asServer && !!this.#authorize);
    if (c.server) return new CurveServer(ctx, { publicKey: c.publicKey, secretKey: c.secretKey });
    return new CurveClient(ctx, {
      publicKey: c.publicKey,
      secretKey: c.secretKey,
      serverKey: c.serverKey!,
    });
  }

  #start(tcp: Deno.Conn, asServer: boolean): Connection {
    try {
      (tcp as Deno.TcpConn).setNoDelay(true);
      (tcp as Deno.TcpConn).setKeepAlive(true);
    } catch { /* not TCP */ }
    const a = tcp.remoteAddr as Deno.NetAddr;
    const conn = new Connection(
      tcp,
      this.#mechanism(asServer, `${a.hostname}:${a.port}`),
      { maxMessageSize: this.opts.maxMessageSize, handshakeTimeout: this.opts.handshakeTimeout },
      {
        ready: (c) => this.#onReady(c),
        message: (c, frames) => this.#onMessage(c, frames),
        drained: () => this.wakeSenders(),
        closed: (c, reason, hs) => this.#onClosed(c, reason, hs),
      },
      this.#clock,
    );
    this.#conns.add(conn);
    conn.start();
    return conn;
  }

  async #accept(listener: Deno.Listener) {
    try {
      for await (const tcp of listener) {
        if (this.#closed) {
          tcp.close();
          break;
        }
        this.#start(tcp, true);
      }
    } catch (e) {
      if (!this.#closed) console.error(`zmtp: accepting on ${this.lastEndpoint} stopped:`, e);
    }
  }

  async #connectLoop(address: string, hostname: string, port: number) {
    const signal = this.#stopConnecting.signal;
    let delay = this.opts.reconnectInterval;
    while (!signal.aborted) {
      let tcp: Deno.Conn;
      try {
        tcp = await Deno.connect(
          { hostname, port, transport: "tcp", signal } as Deno.ConnectOptions,
        );
      } catch (e) {
        if (signal.aborted) return;
        this.emit("connectFailed", address, e as Error, delay);
        await sleep(delay, signal);
        delay = Math.min(delay * 2, this.opts.reconnectIntervalMax);
        continue;
      }
      if (signal.aborted) {
        tcp.close();
        return;
      }
      const conn = this.#start(tcp, false);
      await conn.done;
      // a connection that worked is retried at once (after the first interval); one that
      // failed its handshake backs off like a refused connect
      const wasReady = this.#everReady.has(conn);
      await sleep(wasReady ? this.opts.reconnectInterval : delay, signal);
      delay = wasReady
        ? this.opts.reconnectInterval
        : Math.min(delay * 2, this.opts.reconnectIntervalMax);
    }
  }

  #everReady = new WeakSet<Connection>();

  #onReady(conn: Connection) {
    if (this.#closed) return conn.close("socket closed");
    this.#everReady.add(conn);
    const rid = this.attach(conn);
    if (!rid) return;
    const peer = new _Peer(this, conn, rid);
    this.peers.set(conn, peer);
    this.added(peer);
    this.emit("connect", peer);
    this.wakeSenders();
  }

  #onMessage(conn: Connection, frames: Uint8Array[]): void | Promise<void> {
    const peer = this.peers.get(conn);
    if (!peer) return;
    const delivered = this.incoming(peer, frames);
    if (this.#handler) return this.#handler(delivered, peer);
    const r = this.#receivers.shift();
    if (r) return r.resolve(delivered);
    this.#queue.push({ frames: delivered, peer });
    if (this.#queued() >= this.#rcvHwm()) {
      return new Promise<void>((resolve) => this.#readPaused.push(resolve));
    }
  }

  #onClosed(conn: Connection, reason: string, handshake?: HandshakeError) {
    this.#conns.delete(conn);
    const peer = this.peers.get(conn);
    if (peer) {
      this.peers.delete(conn);
      this.detach(peer);
      this.emit("disconnect", peer, reason);
    } else if (handshake && !(this.#closed && handshake.failure === "closed")) {
      this.emit("handshakeFailed", conn.address, handshake);
    }
    this.wakeSenders();
  }

  #ensureHeartbeat() {
    const ivl = this.opts.heartbeatInterval;
    if (ivl <= 0 || this.#heartbeatTimer !== undefined) return;
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), Math.max(10, Math.min(ivl, 1000)));
  }

  #heartbeat() {
    const now = this.#clock();
    const ivl = this.opts.heartbeatInterval;
    const timeout = this.opts.heartbeatTimeout;
    for (const c of this.#conns) {
      if (!c.ready) continue;
      // a peer we stopped reading (back-pressure) is not silent: we are not listening
      const silent = c.readPaused ? 0 : now - c.lastReceived;
      if ((timeout > 0 && silent > timeout) || (c.peerTtl > 0 && silent > c.peerTtl)) {
        c.close(`heartbeat timeout: nothing received for ${Math.round(silent)} ms`);
        continue;
      }
      // a peer we keep sending to (so never idle on our side) but that has nothing to say
      // is asked too: otherwise it would look silent and be closed while alive
      if (now - c.lastSent >= ivl || silent >= ivl) c.ping(timeout);
    }
  }
}

/**
 * A DEALER socket: sends go round-robin to the peers that have room; received messages
 * are delivered as sent. Messages sent before any peer connected wait (see
 * {@linkcode _Socket.send}).
 *
 * @example
 * ```ts
 * import { Dealer } from "./socket.ts";
 * const d = new Dealer({ routingId: "worker-1" });
 * d.trySend([new Uint8Array(1)]); // false: no peer yet
 * await d.close();
 * ```
 */
export class Dealer extends _Socket {
  readonly type = "DEALER" as const;
  #rr: _Peer[] = [];
  #next = 0;

  constructor(opts: SocketOptions = {}) {
    super(opts);
  }

  trySend(frames: Uint8Array[]): boolean {
    if (frames.length === 0) throw new TypeError("a message needs at least one frame");
    if (this.closed) return false;
    const n = this.#rr.length;
    for (let i = 0; i < n; i++) {
      const p = this.#rr[(this.#next + i) % n];
      if (p.conn.ready && !this.full(p.conn)) {
        this.#next = (this.#next + i + 1) % n;
        p.conn.write(frames);
        return true;
      }
    }
    return false;
  }

  protected attach(_conn: Connection): Uint8Array {
    return new Uint8Array();
  }

  protected detach(peer: _Peer): void {
    const i = this.#rr.indexOf(peer);
    if (i >= 0) this.#rr.splice(i, 1);
    if (this.#next >= this.#rr.length) this.#next = 0;
  }

  protected added(peer: _Peer): void {
    this.#rr.push(peer);
  }

  protected incoming(_peer: _Peer, frames: Uint8Array[]): Uint8Array[] {
    return frames;
  }
}

/**
 * A ROUTER socket: every received message starts with the sender's routing id, and a sent
 * message's first frame names the peer it goes to.
 *
 * @example
 * ```ts
 * import { Router } from "./socket.ts";
 * const r = new Router({ mandatory: true });
 * try {
 *   r.trySend([new TextEncoder().encode("nobody"), new Uint8Array(1)]);
 * } catch (e) {
 *   (e as Error).name; // "HostUnreachableError"
 * }
 * await r.close();
 * ```
 */
export class Router extends _Socket {
  readonly type = "ROUTER" as const;
  #byId = new Map<string, _Peer>();
  #nextId = crypto.getRandomValues(new Uint32Array(1))[0];

  constructor(opts: SocketOptions = {}) {
    super(opts);
  }

  /** The peer holding `routingId` now, if any. */
  peer(routingId: Uint8Array): Peer | undefined {
    return this.#byId.get(routingKey(routingId));
  }

  trySend(frames: Uint8Array[]): boolean {
    if (this.closed) return false;
    if (frames.length < 2) throw new TypeError("a ROUTER message needs a routing id and a body");
    const p = this.#byId.get(routingKey(frames[0]));
    if (!p || !p.conn.ready) {
      if (this.opts.mandatory) {
        throw new HostUnreachableError(`no peer with routing id ${_label(frames[0])}`);
      }
      return true; // dropped, as a non-mandatory ROUTER does
    }
    if (this.full(p.conn)) return false;
    p.conn.write(frames.slice(1));
    return true;
  }

  protected attach(conn: Connection): Uint8Array | undefined {
    const identity = conn.mechanism.peerMetadata.get("identity") ?? new Uint8Array();
    // ids starting with a zero byte are ours to generate (as in libzmq)
    if (identity.length > 0 && identity[0] !== 0) {
      const key = routingKey(identity);
      const holder = this.#byId.get(key);
      if (!holder) return identity;
      if (this.opts.handover) {
        this.#byId.delete(key);
        holder.routingId = this.#generate();
        this.#byId.set(routingKey(holder.routingId), holder);
        holder.conn.close("routing id handed over to a new connection");
        return identity;
      }
    }
    return this.#generate();
  }

  #generate(): Uint8Array {
    const id = new Uint8Array(5);
    new DataView(id.buffer).setUint32(1, this.#nextId);
    this.#nextId = (this.#nextId + 1) >>> 0;
    return id;
  }

  protected added(peer: _Peer): void {
    this.#byId.set(routingKey(peer.routingId), peer);
  }

  protected detach(peer: _Peer): void {
    const key = routingKey(peer.routingId);
    if (this.#byId.get(key) === peer) this.#byId.delete(key);
  }

  protected incoming(peer: _Peer, frames: Uint8Array[]): Uint8Array[] {
    return [peer.routingId, ...frames];
  }
}

function _label(id: Uint8Array): string {
  const text = _dec.decode(id);
  return /^[\x20-\x7e]*$/.test(text)
    ? JSON.stringify(text)
    : `0x${[...id].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
