/**
 * Deprecated: the receive loop now lives in `src/io/zmq.ts` (one module for every process).
 * This re-export keeps callers outside the hot-path room working until they import it
 * directly; it has no logic of its own.
 *
 * @example
 * ```ts
 * import { receiveLoop } from "./zmq_recv.ts";
 * await receiveLoop(dealer, (frames) => console.log(frames.length));
 * ```
 * @module
 */
import { receiveLoop as _loop, sendWhenReady, type ZmqSocket } from "../io/zmq.ts";

/**
 * Receive until the socket is closed (see `receiveLoop` in `src/io/zmq.ts`); rejects on a
 * receive error of an open socket.
 *
 * @example
 * ```ts
 * await receiveLoop(router, ([identity, body]) => handle(identity, body));
 * ```
 */
export async function receiveLoop(
  sock: ZmqSocket,
  onMessage: (frames: Uint8Array[]) => void | Promise<void>,
): Promise<void> {
  let failure: unknown;
  await _loop(sock, onMessage, { onError: (e) => failure = e }).done;
  if (failure !== undefined) throw failure;
}

/**
 * Send, retrying while ZeroMQ answers EAGAIN (see `sendWhenReady` in `src/io/zmq.ts`).
 *
 * @example
 * ```ts
 * await sendNonBlocking(dealer, [new TextEncoder().encode("HEARTBEAT")]);
 * ```
 */
export function sendNonBlocking(
  sock: ZmqSocket,
  frames: Uint8Array[],
  cancelled: () => boolean = () => false,
): Promise<boolean> {
  return sendWhenReady(sock, frames, { cancelled });
}
