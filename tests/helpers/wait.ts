/**
 * The one wait-for-condition helper of the test suite: poll a condition (sync or async) until
 * it holds or a deadline passes, then fail with a message that says what was awaited and the
 * last thing seen. Tests wait on the real event with it instead of sleeping a fixed time.
 *
 * @example
 * ```ts ignore
 * import { waitFor } from "../helpers/wait.ts";
 * const status = await waitFor(() => readStatus(home), {
 *   what: "the daemon connected",
 *   until: (s) => s?.state === "connected",
 * });
 * ```
 * @module
 */

/** Options of {@linkcode waitFor}. */
export interface WaitOptions<T> {
  /** What is awaited, for the error message. */
  what: string;
  /** Give up after this many ms (default 30 s). */
  timeoutMs?: number;
  /** Check every this many ms (default 50). */
  everyMs?: number;
  /** The condition on the probed value (default: the value is truthy). */
  until?: (v: T) => boolean;
  /** Describe the last value for the error message (default: JSON). */
  describe?: (v: T | undefined) => string;
}

/**
 * Call `probe` until `until(value)` (default: truthy) holds and return that value; a probe that
 * throws counts as "not yet". Throws `timed out after N ms waiting for <what>` with the last
 * value (or error) seen.
 *
 * @example
 * ```ts ignore
 * await waitFor(() => Deno.statSync(file).size > 0, { what: "the log file", timeoutMs: 10_000 });
 * ```
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  opts: WaitOptions<T>,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const every = opts.everyMs ?? 50;
  const until = opts.until ?? ((v: T) => Boolean(v));
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (until(last)) return last;
    } catch (e) {
      lastError = e;
    }
    if (performance.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(every, deadline - performance.now())));
  }
  const seen = lastError !== undefined
    ? `last error: ${(lastError as Error)?.message ?? lastError}`
    : `last value: ${opts.describe ? opts.describe(last) : _json(last)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what} (${seen})`);
}

/**
 * Assert that `probe` stays false-y (or `until` stays false) for `forMs`: "nothing happened",
 * checked all along instead of once after a sleep. Throws as soon as it happens.
 *
 * @example
 * ```ts ignore
 * await stillFalse(() => resultArrived, { what: "a result for the refused task", forMs: 2000 });
 * ```
 */
export async function stillFalse(
  probe: () => unknown | Promise<unknown>,
  opts: { what: string; forMs: number; everyMs?: number },
): Promise<void> {
  const end = performance.now() + opts.forMs;
  while (performance.now() < end) {
    const v = await probe();
    if (v) throw new Error(`${opts.what} happened (${_json(v)})`);
    await new Promise((r) => setTimeout(r, Math.min(opts.everyMs ?? 50, opts.forMs)));
  }
}

function _json(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 300) ?? String(v);
  } catch {
    return String(v);
  }
}
