/**
 * Receive loop for zeromq.js sockets that does not depend on a pending `receive()` being
 * woken up.
 *
 * Under Deno, a `receive()` that is already waiting when a peer connects (or finishes a
 * CURVE/ZAP handshake) is sometimes never resolved: the edge-triggered ZMQ_FD readiness is
 * lost (measured: ~1 in 3 runs hang). Reading the socket's `readable` state
 * (getsockopt ZMQ_EVENTS) processes libzmq's pending commands and is reliable, so this
 * loop checks `readable` on a short adaptive timer (1 ms while busy, up to `maxDelayMs`
 * when idle) and only calls `receive()` when a message is already there.
 *
 * @example
 * ```ts
 * import * as zmq from "zeromq";
 * import { pollReceive } from "./zmq_poll.ts";
 * const sock = new zmq.Router();
 * const loop = pollReceive(sock, (frames) => console.log(frames.length));
 * // ...
 * loop.stop();
 * ```
 * @module
 */
import type * as zmq from "zeromq";

/** A running receive loop. */
export interface PollLoop {
  /** Stop polling (the socket is not closed). Resolves when the current batch is done. */
  stop(): Promise<void>;
  /** Check right now (e.g. after sending a request). */
  kick(): void;
}

/** Options of {@linkcode pollReceive}. */
export interface PollOptions {
  /** Longest idle delay between checks (default 10 ms). */
  maxDelayMs?: number;
  /** Most messages handled per check before yielding (default 1000). */
  batch?: number;
  /** Called when receiving throws (socket closed, ...); the loop stops. */
  onError?: (e: unknown) => void;
}

/**
 * Call `onMessage` for every multipart message arriving on `sock` (in order). A handler
 * that returns a promise is awaited before the next message.
 *
 * @example
 * ```ts
 * const loop = pollReceive(dealer, ([frame]) => handle(frame), { maxDelayMs: 5 });
 * ```
 */
export function pollReceive(
  sock: zmq.Socket & { receive(): Promise<Uint8Array[]> },
  onMessage: (frames: Uint8Array[]) => void | Promise<void>,
  opts: PollOptions = {},
): PollLoop {
  const maxDelay = opts.maxDelayMs ?? 10;
  const batch = opts.batch ?? 1000;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let delay = 1;
  let running: Promise<void> = Promise.resolve();
  const schedule = (ms: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      running = tick();
    }, ms);
  };
  const tick = async () => {
    let n = 0;
    try {
      while (!stopped && !sock.closed && n < batch && sock.readable) {
        const frames = await sock.receive();
        n++;
        await onMessage(frames);
      }
    } catch (e) {
      if (!stopped && !sock.closed) opts.onError?.(e);
      stopped = true;
      return;
    }
    if (sock.closed) {
      stopped = true;
      return;
    }
    delay = n > 0 ? 0 : Math.min(maxDelay, Math.max(1, delay * 2));
    schedule(delay);
  };
  schedule(0);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    kick() {
      if (!stopped && timer !== undefined) {
        delay = 1;
        schedule(0);
      }
    },
  };
}

/**
 * Send once the socket is writable, checking `writable` on a short timer rather than
 * leaving a pending `send()` to be woken (see the module doc). Rejects after `timeoutMs`
 * (default: wait forever) or when the socket is closed.
 *
 * @example
 * ```ts
 * await pollSend(dealer, [payload], 5000);
 * ```
 */
export async function pollSend(
  sock: zmq.Socket & { send(frames: Uint8Array[] | Uint8Array | string): Promise<void> },
  frames: Uint8Array[] | Uint8Array | string,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (!sock.writable) {
    if (sock.closed) throw new Error("socket is closed");
    if (Date.now() >= deadline) throw new Error(`socket not writable within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(20, delay * 2);
  }
  await sock.send(frames);
}
