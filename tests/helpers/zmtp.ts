/**
 * Test helpers over our ZeroMQ transport (`src/io/zmtp/`).
 *
 * @example
 * ```ts
 * import { sendWithin } from "./zmtp.ts";
 * import { Dealer } from "../../src/io/zmtp/mod.ts";
 * const d = new Dealer();
 * await sendWithin(d, new Uint8Array(1), 10); // false: no peer
 * await d.close();
 * ```
 * @module
 */
import type { Dealer, Router } from "../../src/io/zmtp/mod.ts";

/**
 * Send, waiting at most `ms` for the socket to take it (a peer connected, room below the
 * high-water mark). Returns false when it could not be queued in time (the message is then
 * dropped when the socket closes) or the send failed.
 */
export async function sendWithin(
  sock: Dealer | Router,
  frames: Uint8Array | Uint8Array[],
  ms = 5000,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      sock.send(Array.isArray(frames) ? frames : [frames]).then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms)),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
