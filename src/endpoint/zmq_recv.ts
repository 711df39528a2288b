/**
 * A receive loop for zeromq.js sockets that does not depend on the socket's readiness
 * notifications.
 *
 * Under Deno, zeromq.js' `for await (const msg of socket)` can stall forever: the N-API libuv
 * shim stops a `uv_poll` handle after its first callback, so a receive (or send) waiting on
 * the readiness poller may never resolve (measured: about 1 run in 3 of a ROUTER receiving
 * from a DEALER in another process stalls until the socket is closed; a positive
 * `receiveTimeout` crashed the process).
 * Polling the `readable` flag (ZMQ_EVENTS) and receiving only when a message is there never
 * waits on the notification, so it cannot stall. While messages flow it receives back to
 * back (yielding to the event loop every `yieldEvery` messages); when idle it sleeps with a
 * small backoff (1 ms doubling up to `maxIdleMs`).
 *
 * @example
 * ```ts
 * import * as zmq from "zeromq";
 * import { receiveLoop } from "./zmq_recv.ts";
 * const sock = new zmq.Dealer();
 * sock.connect("tcp://127.0.0.1:5555");
 * const done = receiveLoop(sock, (frames) => console.log(frames.length));
 * sock.close();
 * await done;
 * ```
 * @module
 */

/**
 * Send one multipart message on a socket created with `sendTimeout: 0`: retried with a small
 * backoff (1 ms doubling to 20 ms) while ZeroMQ answers EAGAIN, so it never waits on the
 * readiness poller. Gives up (returns false) once `cancelled()` says so or the socket closed.
 *
 * @example
 * ```ts
 * await sendNonBlocking(dealer, [new TextEncoder().encode("HEARTBEAT")]);
 * ```
 */
export async function sendNonBlocking(
  sock: { readonly closed: boolean; send(frames: Uint8Array[]): Promise<void> },
  frames: Uint8Array[],
  cancelled: () => boolean = () => false,
): Promise<boolean> {
  let delay = 1;
  while (!sock.closed && !cancelled()) {
    try {
      await sock.send(frames);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code !== "EAGAIN") throw e;
    }
    await _sleep(delay);
    delay = Math.min(20, delay * 2);
  }
  return false;
}

/** What {@linkcode receiveLoop} needs of a socket (every readable zeromq.js socket has it). */
export interface ReceivableSocket {
  readonly closed: boolean;
  readonly readable: boolean;
  receive(): Promise<Uint8Array[]>;
}

/** Options of {@linkcode receiveLoop}. */
export interface ReceiveLoopOptions {
  /** Longest idle sleep (ms), default 10. */
  maxIdleMs?: number;
  /** Yield to the event loop after this many back-to-back messages, default 256. */
  yieldEvery?: number;
}

const _sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Receive until the socket is closed, calling `onMessage` for every multipart message
 * (awaited when it returns a promise). Resolves when the socket is closed; rejects on a
 * receive error of an open socket.
 *
 * @example
 * ```ts
 * await receiveLoop(router, ([identity, body]) => handle(identity, body));
 * ```
 */
export async function receiveLoop(
  sock: ReceivableSocket,
  onMessage: (frames: Uint8Array[]) => void | Promise<void>,
  opts: ReceiveLoopOptions = {},
): Promise<void> {
  const maxIdle = opts.maxIdleMs ?? 10;
  const yieldEvery = opts.yieldEvery ?? 256;
  let idle = 0;
  let burst = 0;
  while (!sock.closed) {
    let ready: boolean;
    try {
      ready = sock.readable;
    } catch (e) {
      if (sock.closed) return;
      throw e;
    }
    if (!ready) {
      burst = 0;
      idle = idle === 0 ? 1 : Math.min(maxIdle, idle * 2);
      await _sleep(idle);
      continue;
    }
    idle = 0;
    let frames: Uint8Array[];
    try {
      frames = await sock.receive();
    } catch (e) {
      if (sock.closed) return;
      if ((e as { code?: string }).code === "EAGAIN") continue; // receiveTimeout 0, raced
      throw e;
    }
    const r = onMessage(frames);
    if (r instanceof Promise) await r;
    if (++burst >= yieldEvery) {
      burst = 0;
      await _sleep(0);
    }
  }
}
