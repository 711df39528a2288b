/**
 * The one error type of the protocol modules.
 *
 * Every decoder in `src/protocol/` throws {@linkcode ProtocolError} (and nothing else) on
 * malformed input, with a one-line message naming what was wrong and where.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./errors.ts";
 * try {
 *   throw new ProtocolError("pickle: truncated input at offset 3");
 * } catch (e) {
 *   if (e instanceof ProtocolError) console.error(e.message);
 * }
 * ```
 * @module
 */

/**
 * Malformed or unsupported wire data (pickle, message framing, serialized payloads, ZPL).
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./errors.ts";
 * const e = new ProtocolError("message: empty buffer");
 * e.name; // "ProtocolError"
 * ```
 */
export class ProtocolError extends Error {
  /** Create a protocol error; line breaks in `message` are folded so it stays one line. */
  constructor(message: string, options?: ErrorOptions) {
    super(String(message).replace(/[\r\n]+/g, " "), options);
    this.name = "ProtocolError";
  }
}

/**
 * Run `fn`; any exception that is not a {@linkcode ProtocolError} (a RangeError from a
 * pathological input, say) is wrapped into one prefixed with `what`.
 *
 * @example
 * ```ts
 * import { guardDecode } from "./errors.ts";
 * const n = guardDecode("number", () => JSON.parse("1"));
 * ```
 */
export function guardDecode<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolError(`${what}: ${msg}`, { cause: e });
  }
}
