/**
 * Endpoint allow-lists on the service side (upstream's "whitelist" of restricted endpoints):
 * reading the `allowed_functions` an endpoint sends when it registers, and the code hashes
 * the service answers with so the endpoint can check tasks itself
 * ({@linkcode ../protocol/function_hash.ts}).
 *
 * @example
 * ```ts
 * import { allowedFunctionsField } from "./allowlist.ts";
 * allowedFunctionsField({}); // undefined: leave the list as it is
 * allowedFunctionsField({ allowed_functions: null }); // null: not restricted
 * ```
 * @module
 */
import { functionCodeHash } from "../protocol/function_hash.ts";
import { unpackBuffers } from "../protocol/serialize.ts";
import { ApiError, checkUuid, ErrorCode } from "./errors.ts";
import type { ServiceStore } from "./store.ts";

/**
 * `allowed_functions` of a registration body: undefined when absent (upstream endpoints),
 * null for "not restricted", else the list of function uuids (lower case, deduplicated).
 * Throws an {@linkcode ApiError} (RequestMalformed) naming the bad entry.
 *
 * @example
 * ```ts
 * import { allowedFunctionsField } from "./allowlist.ts";
 * allowedFunctionsField({ allowed_functions: ["0b2c4a8e-0a8b-4c43-9b8c-0d1b6f4e9a11"] });
 * ```
 */
export function allowedFunctionsField(body: Record<string, unknown>): string[] | null | undefined {
  const v = body.allowed_functions;
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (!Array.isArray(v)) {
    throw new ApiError(
      ErrorCode.RequestMalformed,
      "allowed_functions must be a list of function ids, or null",
      ["allowed_functions"],
    );
  }
  return [...new Set(v.map((f, i) => checkUuid(f, `allowed_functions[${i}]`)))];
}

/**
 * `{function id: SHA-256 of its serialized code}` for the known functions among `ids`
 * (unknown ids are left out: nothing can run under them).
 *
 * @example
 * ```ts ignore
 * import { functionCodeHashes } from "./allowlist.ts";
 * functionCodeHashes(store, [fid]); // { [fid]: "3a7bd3e2..." }
 * ```
 */
export function functionCodeHashes(store: ServiceStore, ids: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, fn] of store.getFunctions(ids)) {
    const [serialized] = unpackBuffers(fn.code);
    if (serialized !== undefined) out[id] = functionCodeHash(serialized);
  }
  return out;
}
