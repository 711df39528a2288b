/**
 * Receiving and sending on zeromq.js sockets under Deno 2.9: one module for every process
 * (service forwarder, endpoint channels, interchange, manager).
 *
 * **Why this exists.** zeromq.js waits for a socket with a libuv `uv_poll` on ZMQ_FD, which
 * is edge-triggered: it fires when *any* libzmq command reaches the socket, not only a
 * message. Deno's N-API libuv shim delivers one callback per `uv_poll_start`
 * (denoland/deno#36317); zeromq.js only re-arms the poll when a wait starts from idle. So when
 * the first edge after `receive()` started is not a message — a peer connecting, the
 * ZMTP/CURVE handshake finishing, a peer leaving, or our own send pipe leaving its high-water
 * mark — zeromq.js validates, sees no message, and keeps waiting on a poll that will never
 * fire again: the `receive()` hangs until the socket is closed. Measured on Deno 2.9.6: a
 * ROUTER whose `receive()` is pending before its first peer connects hangs 10 times in 10
 * (same process or another process); once connected, 600 of 600 request/reply receives woke
 * normally, also inside a Web Worker, with a signal listener or with child processes.
 *
 * **What this module does.** It keeps a real pending `receive()` (woken by the socket, so
 * no per-message timer or poll back-off) and repairs the one failure mode: `send([])` with
 * `sendTimeout: 0` sends nothing but makes zeromq.js re-check the socket and resolve a
 * pending `receive()` whose message is already there. One shared timer per isolate, only
 * while some loop is waiting, applies it to every waiting socket: every
 * {@linkcode RESCUE_BUSY_MS} ms while messages flow (missed wake-ups were measured in about
 * 0.8 % of steady-state receives too, not only after connection events), every
 * {@linkcode RESCUE_IDLE_MS} ms after a second without any. A missed wake-up thus costs at
 * most that interval, and nothing ever blocks.
 * Closing the socket ends its loop without touching the closed socket again.
 *
 * **Closing safely.** Deno's shim runs each `uv_poll_start` as a thread that polls ZMQ_FD in
 * 10 ms slices and, once the descriptor turns readable, queues zeromq.js' poll callback to the
 * JavaScript thread. That callback reads the socket's poller: a socket closed after the
 * callback was queued but before it ran is freed memory, a segfault in
 * `zmq::Poller::Callback`. A peer closing makes the descriptor readable, so "peer closes, then
 * we do" hits it; deferring our close by one macrotask (~2 ms) still crashed 6 test runs in 20
 * with both cores busy (the poll thread is descheduled between seeing the edge and queuing the
 * callback). So a close — {@linkcode closeSocket} or a plain `close()` of any socket this
 * module received on — stops watching, rescues a message already there and waits
 * {@linkcode CLOSE_DRAIN_MS} before the real close: a poll thread that saw an edge has queued
 * its callback and it ran on a live poller (it fires once per start; zeromq.js starts none
 * while its receive still waits). Real closes happen one at a time, that long apart: two
 * peers in one process closed together would otherwise still crash (1 run in 20), the edge
 * from one close landing on the other just before its own. (zeromq.js' receive timeout cannot
 * bound the wait instead: Deno's `uv_timer_init` clears the handle's `data`, and the timeout
 * callback then crashes.)
 *
 * Sockets used here must have `sendTimeout: 0` (see {@linkcode SOCKET_OPTIONS}); sends
 * never wait inside libzmq (that wait has the same poll problem). A send that meets a full
 * pipe (EAGAIN) is retried by {@linkcode sendWhenReady} / {@linkcode SendQueue}.
 *
 * @example
 * ```ts
 * import * as zmq from "zeromq";
 * import { receiveLoop, SOCKET_OPTIONS } from "./zmq.ts";
 * const router = new zmq.Router(SOCKET_OPTIONS);
 * await router.bind("tcp://127.0.0.1:0");
 * const loop = receiveLoop(router, ([id, body]) => console.log(id, body));
 * router.close();
 * await loop.done;
 * ```
 * @module
 */

import { setImmediate } from "node:timers";
import * as zmq from "zeromq";

/** Options every socket used with this module is created with (or a superset of them). */
export const SOCKET_OPTIONS = { linger: 0, sendTimeout: 0 } as const;

/**
 * How often (ms) a waiting receive is re-checked while messages flow. 1 ms (≥ 2.2 ms with
 * Deno's timers here) gave the best ZeroMQ ping-pong tails (p99.9 6–8 ms vs 11–15 ms at 10
 * ms) but cost the idle daemon ~2.5 % of a core more (heartbeats keep it "busy") with no
 * visible gain in the loaded end-to-end bench; 5 ms is the compromise.
 */
export const RESCUE_BUSY_MS = 5;
/** How often (ms) a waiting receive is re-checked after a second without messages. */
export const RESCUE_IDLE_MS = 20;
/** How long (ms) a closing socket rests before the real close (see the module doc). */
export const CLOSE_DRAIN_MS = 50;

/** What this module needs of a zeromq.js socket (every Router/Dealer/Pair has it). */
export interface ZmqSocket {
  readonly closed: boolean;
  readonly readable: boolean;
  readonly writable: boolean;
  sendTimeout: number;
  receiveTimeout: number;
  receive(): Promise<Uint8Array[]>;
  send(frames: Uint8Array[] | Uint8Array | string): Promise<void>;
}

/** A running receive loop (see {@linkcode receiveLoop}). */
export interface ReceiveLoop {
  /** Resolves when the loop ended (socket closed, {@linkcode ReceiveLoop.stop} or error). */
  readonly done: Promise<void>;
  /**
   * Stop handing messages to the handler. The socket is not closed; a receive that is already
   * waiting stays with zeromq.js until the caller closes the socket (its message, if any, is
   * dropped). Resolves once the handler is not running any more.
   */
  stop(): Promise<void>;
}

/** Options of {@linkcode receiveLoop}. */
export interface ReceiveLoopOptions {
  /** Called once when receiving fails on an open socket; the loop then ends. Default: ignore. */
  onError?: (e: unknown) => void;
  /** Yield to the event loop after this many back-to-back messages (default 256). */
  yieldEvery?: number;
}

/** @internal sockets with a receive waiting, for the shared rescue timer */
const _waiting = new Set<ZmqSocket>();
/** @internal sockets this module has received on (their close is made safe) */
const _used = new WeakSet<object>();
let _rescueTimer: ReturnType<typeof setTimeout> | undefined;
/** @internal messages received in this isolate (tells the rescue timer traffic flows) */
let _received = 0;
let _receivedAtTick = 0;
let _lastTraffic = 0;

function _code(e: unknown): string | undefined {
  return (e as { code?: string } | undefined)?.code;
}

/**
 * Make zeromq.js re-check `sock` now: resolves a pending `receive()` whose message is already
 * there (a no-op otherwise). Never throws; does nothing on a closed socket.
 *
 * @example
 * ```ts
 * kick(router); // after something that may have left a receive without its wake-up
 * ```
 */
export function kick(sock: ZmqSocket): void {
  if (sock.closed) return;
  try {
    // sendTimeout 0 → zeromq.js' synchronous path: zero parts sent, then TriggerReadable()
    sock.send([]).catch(() => {});
  } catch { /* closed in between */ }
}

let _rescued = 0;

/**
 * How many missed wake-ups the rescue timer has repaired in this isolate (a waiting receive
 * whose message was already there). Diagnostics only.
 *
 * @example
 * ```ts
 * console.log(rescuedWakeups());
 * ```
 */
export function rescuedWakeups(): number {
  return _rescued;
}

function _rescueTick(): void {
  _rescueTimer = undefined;
  const now = performance.now();
  if (_received !== _receivedAtTick) {
    _receivedAtTick = _received;
    _lastTraffic = now;
  }
  for (const s of _waiting) {
    if (s.closed) {
      _waiting.delete(s);
      continue;
    }
    try {
      if (s.readable) _rescued++;
    } catch { /* closing */ }
    kick(s);
  }
  if (_waiting.size > 0) _schedule(now - _lastTraffic < 1000 ? RESCUE_BUSY_MS : RESCUE_IDLE_MS);
}

function _schedule(ms: number): void {
  const t = setTimeout(_rescueTick, ms);
  // never keeps a process alive on its own
  Deno.unrefTimer(t);
  _rescueTimer = t;
}

function _watch(sock: ZmqSocket): void {
  _waiting.add(sock);
  if (_rescueTimer === undefined) _schedule(RESCUE_BUSY_MS);
}

function _unwatch(sock: ZmqSocket): void {
  _waiting.delete(sock);
  if (_waiting.size === 0 && _rescueTimer !== undefined) {
    clearTimeout(_rescueTimer);
    _rescueTimer = undefined;
  }
}

/** @internal zeromq.js' own `Socket.prototype.close` */
const _realClose: (this: object) => void = zmq.Socket.prototype.close;

/**
 * A plain `sock.close()` of a socket this module received on is made safe (callers outside
 * this module close sockets directly; zeromq.js sockets are sealed, so this is done once on
 * `Socket.prototype`): such a close ends the loop at once and does the real close
 * {@linkcode CLOSE_DRAIN_MS} later, like {@linkcode closeSocket}. Any other close happens
 * immediately.
 */
zmq.Socket.prototype.close = function (this: zmq.Socket): void {
  const sock = this as unknown as ZmqSocket;
  if (!_used.has(sock) || sock.closed) return _realClose.call(this);
  void _deferClose(sock);
};

/** @internal the deferred close of each socket whose close was asked for */
const _closes = new WeakMap<object, Promise<void>>();
/** @internal the last real close queued: real closes run one at a time, CLOSE_DRAIN_MS apart */
let _closeChain: Promise<void> = Promise.resolve();

/**
 * Stop watching `sock`, rescue a message already there, rest {@linkcode CLOSE_DRAIN_MS} and only
 * then really close it (see the module doc). Idempotent: a second call returns the first one's
 * promise.
 */
function _deferClose(sock: ZmqSocket): Promise<void> {
  const running = _closes.get(sock);
  if (running) return running;
  const done = _closeChain.then(async () => {
    await new Promise((r) => setTimeout(r, CLOSE_DRAIN_MS));
    try {
      if (!sock.closed) _realClose.call(sock);
    } catch { /* closed meanwhile */ }
  });
  _closeChain = done;
  _closes.set(sock, done); // the socket counts as gone from here on (see _gone)
  _unwatch(sock);
  kick(sock);
  return done;
}

function _checkOptions(sock: ZmqSocket): void {
  if (sock.sendTimeout !== 0) {
    throw new Error(
      `zmq socket: sendTimeout is ${sock.sendTimeout}, must be 0 (create it with SOCKET_OPTIONS)`,
    );
  }
  // a pending receive must wait for the socket (0 would make receive() fail with EAGAIN; a
  // timeout crashes, see the module doc)
  if (sock.receiveTimeout !== -1) sock.receiveTimeout = -1;
  _used.add(sock);
}

/** Is the socket closed, or its (deferred) close asked for? */
function _gone(sock: ZmqSocket): boolean {
  return sock.closed || _closes.has(sock);
}

/**
 * Call `onMessage` for every multipart message arriving on `sock`, in order, until the
 * socket is closed or the loop is stopped. A handler that returns a promise is awaited before
 * the next message. An exception thrown by the handler ends the loop through `onError`.
 *
 * @example
 * ```ts
 * const loop = receiveLoop(dealer, ([frame]) => handle(frame), { onError: (e) => log(e) });
 * // ...
 * dealer.close();
 * await loop.done;
 * ```
 */
export function receiveLoop(
  sock: ZmqSocket,
  onMessage: (frames: Uint8Array[]) => void | Promise<void>,
  opts: ReceiveLoopOptions = {},
): ReceiveLoop {
  _checkOptions(sock);
  const yieldEvery = opts.yieldEvery ?? 256;
  let stopped = false;
  const run = async () => {
    let burst = 0;
    while (true) {
      const frames = await _next(sock, () => stopped);
      if (!frames || stopped || _gone(sock)) return; // stopped or closing: like closed, drop
      const r = onMessage(frames);
      if (r instanceof Promise) await r;
      if (++burst >= yieldEvery) {
        burst = 0;
        // a macrotask turn (~25 µs; setTimeout(0) is ≥ 2 ms here) so timers and I/O run
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  };
  const done = run().catch((e) => {
    if (!stopped && !_gone(sock)) opts.onError?.(e);
  }).finally(() => _unwatch(sock));
  return {
    done,
    async stop() {
      stopped = true;
      // a handler still running finishes first; a receive still waiting is left to close()
      await Promise.race([done, Promise.resolve()]);
    },
  };
}

/**
 * Close a socket that may have a receive waiting, safely. Deno 2.9.6's poll shim can deliver
 * a readiness callback queued just before `close()` to the freed zeromq.js poller (a
 * segfault in `Poller::Callback`, seen about once in 1,500 closes right after the peer
 * closed). So: stop watching it, rescue a message already there, let one macrotask run (any
 * queued callback then reaches a live poller), and only then close. Idempotent.
 *
 * @example
 * ```ts
 * loop.stop();
 * await closeSocket(router);
 * await loop.done;
 * ```
 */
export async function closeSocket(sock: ZmqSocket & { close(): void }): Promise<void> {
  if (!sock.closed) await _deferClose(sock);
}

/**
 * Incoming messages of `sock` as an async iterable (ends when the socket is closed). Same
 * wake-up and rescue as {@linkcode receiveLoop}; a receive error on an open socket is thrown.
 *
 * @example
 * ```ts
 * for await (const [id, ...frames] of messages(router)) handle(id, frames);
 * ```
 */
export async function* messages(sock: ZmqSocket): AsyncGenerator<Uint8Array[]> {
  _checkOptions(sock);
  try {
    yield* _messages(sock);
  } finally {
    _unwatch(sock);
  }
}

async function* _messages(sock: ZmqSocket): AsyncGenerator<Uint8Array[]> {
  for (let frames; (frames = await _next(sock));) yield frames;
}

/**
 * The next message with the rescue timer watching the wait, or `undefined` once the socket is
 * closed/closing or `stopped()` (closing rejects the waiting receive: a clean end); EAGAIN
 * (a spurious wake-up) waits again.
 */
async function _next(
  sock: ZmqSocket,
  stopped: () => boolean = () => false,
): Promise<Uint8Array[] | undefined> {
  while (!stopped() && !_gone(sock)) {
    try {
      const p = sock.receive();
      _watch(sock);
      try {
        const frames = await p;
        _received++;
        return frames;
      } finally {
        _waiting.delete(sock);
      }
    } catch (e) {
      if (stopped() || _gone(sock)) return undefined;
      if (_code(e) !== "EAGAIN") throw e;
    }
  }
  return undefined;
}

/**
 * Hand one multipart message to ZeroMQ right now if the socket can take it (`writable`, i.e.
 * ZMQ_POLLOUT: a peer is there and its pipe has room). Returns false, without sending, when it
 * cannot or the socket is closed. No promise is awaited; a send that still fails (a race with
 * the pipe filling up, EAGAIN) is reported to `onError` afterwards.
 *
 * @example
 * ```ts
 * if (!trySend(router, [id, body], (e) => log.warn(e))) queue.push([id, body]);
 * ```
 */
export function trySend(
  sock: ZmqSocket,
  frames: Uint8Array[],
  onError: (e: unknown) => void = () => {},
): boolean {
  if (sock.closed || !sock.writable) return false;
  sock.send(frames).catch(onError);
  return true;
}

/**
 * Send one multipart message, retrying with a short back-off (1 ms doubling to 20 ms) while
 * ZeroMQ answers EAGAIN. Returns false when `cancelled()` says so, the socket closed, or
 * `giveUpMs` passed without the socket accepting it; throws on other send errors.
 *
 * @example
 * ```ts
 * await sendWhenReady(dealer, [registration], { cancelled: () => closing });
 * ```
 */
export async function sendWhenReady(
  sock: ZmqSocket,
  frames: Uint8Array[],
  opts: { cancelled?: () => boolean; giveUpMs?: number } = {},
): Promise<boolean> {
  const cancelled = opts.cancelled ?? (() => false);
  const deadline = Date.now() + (opts.giveUpMs ?? Number.POSITIVE_INFINITY);
  let delay = 1;
  while (!sock.closed && !cancelled()) {
    try {
      await sock.send(frames);
      return true;
    } catch (e) {
      if (sock.closed) return false;
      if (_code(e) !== "EAGAIN") throw e;
    }
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(20, delay * 2);
  }
  return false;
}

/** Options of {@linkcode SendQueue}. */
export interface SendQueueOptions {
  /** Drop a message the socket has not accepted for this long (ms, default 30 s). */
  giveUpMs?: number;
  /** Called when a message is dropped (send gave up, failed, or the socket closed). */
  onDrop?: (reason: string) => void;
}

/**
 * Ordered, non-blocking sends: messages go out immediately while the socket accepts them (no
 * promise awaited per message) and wait in order behind the first one it does not.
 *
 * @example
 * ```ts
 * const q = new SendQueue(dealer, { onDrop: (why) => log.warn(why) });
 * q.send([type, body]);
 * await q.flushed();
 * ```
 */
export class SendQueue {
  #sock: ZmqSocket;
  #giveUp: number;
  #onDrop: (reason: string) => void;
  #queue: Uint8Array[][] = [];
  #head = 0;
  #retrying: Promise<void> | undefined;

  /** `sock` must have `sendTimeout: 0` ({@linkcode SOCKET_OPTIONS}). */
  constructor(sock: ZmqSocket, opts: SendQueueOptions = {}) {
    this.#sock = sock;
    this.#giveUp = opts.giveUpMs ?? 30_000;
    this.#onDrop = opts.onDrop ?? (() => {});
  }

  /** Messages queued and not yet handed to ZeroMQ. */
  get pendingSends(): number {
    return this.#queue.length - this.#head;
  }

  /** Send `frames` now if nothing is waiting and the socket takes it, else queue it in order. */
  send(frames: Uint8Array[]): void {
    if (this.#retrying === undefined && !this.#sock.closed) {
      // fast path, no readiness check: a socket that cannot take it (EAGAIN) hands the
      // message back through #failed, which queues it for the retry loop
      try {
        this.#sock.send(frames).catch((e) => this.#failed(frames, e, false));
      } catch (e) {
        this.#onDrop(`send failed: ${(e as Error).message}`);
      }
      return;
    }
    if (this.#sock.closed) return this.#onDrop("socket closed");
    this.#queue.push(frames);
    this.#retrying ??= this.#drain();
  }

  /** Resolves when every queued message was handed to ZeroMQ (or dropped). */
  async flushed(): Promise<void> {
    while (this.#retrying) await this.#retrying;
  }

  #trySend(frames: Uint8Array[]): boolean {
    try {
      if (trySend(this.#sock, frames, (e) => this.#failed(frames, e))) return true;
    } catch (e) {
      this.#onDrop(`send failed: ${(e as Error).message}`);
      return true;
    }
    if (!this.#sock.closed) return false;
    this.#onDrop("socket closed");
    return true;
  }

  /**
   * A send ZeroMQ did not take (reported just after it). EAGAIN: queue it for the retry
   * loop — in send order for fast-path sends (their failures arrive in order), first for the
   * retry loop's own message (it was at the head).
   */
  #failed(frames: Uint8Array[], e: unknown, head = true): void {
    if (this.#sock.closed) return this.#onDrop("socket closed");
    if (_code(e) !== "EAGAIN") return this.#onDrop(`send failed: ${(e as Error).message}`);
    if (head) this.#queue.splice(this.#head, 0, frames);
    else this.#queue.push(frames);
    this.#retrying ??= this.#drain();
  }

  async #drain(): Promise<void> {
    let delay = 1;
    let since = Date.now();
    while (this.#head < this.#queue.length) {
      if (this.#trySend(this.#queue[this.#head])) {
        this.#head++;
        delay = 1;
        since = Date.now();
        continue;
      }
      if (Date.now() - since > this.#giveUp) {
        this.#head++;
        this.#onDrop(`peer not accepting messages for ${Math.round(this.#giveUp / 1000)}s`);
        since = Date.now();
        continue;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(20, delay * 2);
    }
    this.#queue = [];
    this.#head = 0;
    this.#retrying = undefined;
  }
}
