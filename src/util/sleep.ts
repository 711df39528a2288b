/**
 * The one abortable sleep of the code base.
 *
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * const ac = new AbortController();
 * setTimeout(() => ac.abort(), 10);
 * await sleep(60_000, ac.signal); // returns after ~10 ms
 * ```
 * @module
 */

/**
 * Wait `ms` milliseconds, or less: it resolves as soon as `signal` aborts (at once when it
 * already has), and never rejects, so a loop that sleeps between attempts checks
 * `signal.aborted` (or calls `signal.throwIfAborted()`) after it. The timer is cleared on abort,
 * so an aborted sleep keeps no process alive.
 *
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * await sleep(5);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
