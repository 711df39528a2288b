/**
 * The identity of a function's code as an endpoint sees it: SHA-256 (hex) of the serialized
 * function (`"0N\n<base64>"`), the first packed buffer of every task body. The service
 * tells an endpoint with an allow-list these hashes for its allowed functions, so the
 * endpoint can check a task's code before running it without trusting who sent the task.
 *
 * @example
 * ```ts
 * import { functionCodeHash, taskFunctionHash } from "./function_hash.ts";
 * const h = functionCodeHash("03\nabc=\n");
 * taskFunctionHash(new TextEncoder().encode("9\n03\nabc=\n3\n00\n")) === h; // true
 * ```
 * @module
 */
import { createHash } from "node:crypto";

/**
 * SHA-256 hex of a serialized function (the string inside upstream's `function_code`).
 *
 * @example
 * ```ts
 * import { functionCodeHash } from "./function_hash.ts";
 * functionCodeHash("03\nabc=\n").length; // 64
 * ```
 */
export function functionCodeHash(serialized: string | Uint8Array): string {
  return createHash("sha256").update(serialized).digest("hex");
}

/**
 * SHA-256 hex of the first packed buffer of a task body (`<len>\n<serialized fn>...`), or
 * null when the body does not start with a well-formed buffer.
 *
 * @example
 * ```ts
 * import { taskFunctionHash } from "./function_hash.ts";
 * taskFunctionHash(new TextEncoder().encode("garbage")); // null
 * ```
 */
export function taskFunctionHash(body: Uint8Array): string | null {
  let i = 0;
  let len = 0;
  while (i < body.length && i < 16 && body[i] >= 0x30 && body[i] <= 0x39) {
    len = len * 10 + (body[i] - 0x30);
    i++;
  }
  if (i === 0 || i >= body.length || body[i] !== 0x0a) return null;
  const start = i + 1;
  if (len > body.length - start) return null;
  return functionCodeHash(body.subarray(start, start + len));
}
