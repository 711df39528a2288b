/**
 * Deprecated: receiving and sending now live in `src/io/zmq.ts` (one module for every
 * process). These wrappers keep callers outside the hot-path room working until they import
 * it directly; they have no receive logic of their own. Close sockets with `closeSocket`
 * from `src/io/zmq.ts` (a plain `close()` while a receive waits can crash Deno 2.9.6).
 *
 * @example
 * ```ts
 * import * as zmq from "zeromq";
 * import { pollReceive } from "./zmq_poll.ts";
 * const sock = new zmq.Router({ linger: 0, sendTimeout: 0 });
 * const loop = pollReceive(sock, (frames) => console.log(frames.length));
 * // ...
 * await loop.stop();
 * ```
 * @module
 */
import { kick, receiveLoop, sendWhenReady, type ZmqSocket } from "../io/zmq.ts";

/** A running receive loop. */
export interface PollLoop {
  /** Stop handing messages to the handler (the socket is not closed). */
  stop(): Promise<void>;
  /** Re-check the socket now (a missed wake-up is otherwise repaired within 10 ms). */
  kick(): void;
}

/** Options of {@linkcode pollReceive}. */
export interface PollOptions {
  /** Called when receiving throws on an open socket; the loop stops. */
  onError?: (e: unknown) => void;
  /** Ignored (the loop no longer polls); kept so old callers compile. */
  maxDelayMs?: number;
  /** Ignored (the loop yields every 256 messages); kept so old callers compile. */
  batch?: number;
}

/**
 * Call `onMessage` for every multipart message arriving on `sock`, in order (see
 * `receiveLoop` in `src/io/zmq.ts`; the socket needs `sendTimeout: 0`).
 *
 * @example
 * ```ts
 * const loop = pollReceive(dealer, ([frame]) => handle(frame));
 * ```
 */
export function pollReceive(
  sock: ZmqSocket,
  onMessage: (frames: Uint8Array[]) => void | Promise<void>,
  opts: PollOptions = {},
): PollLoop {
  const loop = receiveLoop(sock, onMessage, { onError: opts.onError });
  return { stop: () => loop.stop(), kick: () => kick(sock) };
}

/**
 * Send, retrying while ZeroMQ cannot take the message; rejects after `timeoutMs` (default:
 * never) or when the socket is closed.
 *
 * @example
 * ```ts
 * await pollSend(dealer, [payload], 5000);
 * ```
 */
export async function pollSend(
  sock: ZmqSocket,
  frames: Uint8Array[] | Uint8Array | string,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<void> {
  const parts = Array.isArray(frames) ? frames : [frames];
  const bytes = parts.map((f) => typeof f === "string" ? new TextEncoder().encode(f) : f);
  if (sock.closed) throw new Error("socket is closed");
  const ok = await sendWhenReady(sock, bytes, { giveUpMs: timeoutMs });
  if (!ok) {
    throw new Error(
      sock.closed ? "socket is closed" : `socket not writable within ${timeoutMs} ms`,
    );
  }
}
