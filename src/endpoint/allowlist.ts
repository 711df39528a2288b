/**
 * The endpoint's own allow-list check (config.yaml `allowed_functions`): a task runs only
 * when its function code is the code of an allowed function, as the service described it at
 * registration (`allowed_function_hashes`: function id → SHA-256 of the serialized code).
 * The check uses only the task's bytes, so a task that reaches the endpoint without passing
 * the service's check (a forged or replayed one) is refused too, with an exception result.
 *
 * @example
 * ```ts ignore
 * import { allowedCode, refuseTask } from "./allowlist.ts";
 * const allowed = allowedCode(["<fid>"], { "<fid>": "<sha256>" });
 * refuseTask(rawTaskMessage, allowed); // null (runs) or the reason it must not run
 * ```
 * @module
 */
import { taskFunctionHash } from "../protocol/function_hash.ts";
import { remoteException } from "../protocol/serialize.ts";
import { encodePickle } from "../protocol/pickle/mod.ts";

/** What the endpoint may run. */
export interface AllowedCode {
  /** The function ids of config.yaml. */
  ids: readonly string[];
  /** SHA-256 of the serialized code of each allowed function the service knows. */
  hashes: ReadonlySet<string>;
}

/**
 * The allow-list from the config ids and the registration reply's hashes (hashes of ids not
 * in the config are ignored: the config is the endpoint owner's limit). Null when the config
 * has no `allowed_functions` (no restriction here).
 *
 * @example
 * ```ts
 * import { allowedCode } from "./allowlist.ts";
 * allowedCode(null, undefined); // null
 * ```
 */
export function allowedCode(
  ids: readonly string[] | null,
  replyHashes: unknown,
): AllowedCode | null {
  if (ids === null) return null;
  const hashes = new Set<string>();
  if (replyHashes && typeof replyHashes === "object") {
    for (const id of ids) {
      const h = (replyHashes as Record<string, unknown>)[id];
      if (typeof h === "string" && /^[0-9a-f]{64}$/.test(h)) hashes.add(h);
    }
  }
  return { ids, hashes };
}

/** Where the body starts in a Task message (`\x05TID=..;CID=..;<body>`), or -1. */
function _bodyStart(raw: Uint8Array): number {
  const s1 = raw.indexOf(0x3b);
  const s2 = s1 < 0 ? -1 : raw.indexOf(0x3b, s1 + 1);
  return s2 < 0 ? -1 : s2 + 1;
}

/**
 * Why the task (the raw Task message) must not run here, or null when it may.
 *
 * @example
 * ```ts ignore
 * import { refuseTask } from "./allowlist.ts";
 * refuseTask(raw, { ids: ["f"], hashes: new Set() }); // "function code is not ..."
 * ```
 */
export function refuseTask(raw: Uint8Array, allowed: AllowedCode | null): string | null {
  if (allowed === null) return null;
  const start = _bodyStart(raw);
  const hash = start < 0 ? null : taskFunctionHash(raw.subarray(start));
  if (hash !== null && allowed.hashes.has(hash)) return null;
  return `the task's function is not one of the allowed_functions of this endpoint ` +
    `(${allowed.ids.join(", ")}); it was not run`;
}

/**
 * The pickled result dict `{"task_id", "container_id", "exception"}` of a refused task: a
 * `FunctionNotPermitted` remote exception the SDK re-raises like any other.
 *
 * @example
 * ```ts
 * import { refusedTaskResult } from "./allowlist.ts";
 * const bytes = refusedTaskResult("t1", "RAW", "not allowed");
 * ```
 */
export function refusedTaskResult(
  taskId: string,
  containerId: string,
  reason: string,
): Uint8Array {
  const text = `FunctionNotPermitted: ${reason}`;
  return encodePickle({
    task_id: taskId,
    container_id: containerId,
    exception: remoteException(
      "FunctionNotPermitted",
      reason,
      `Traceback (most recent call last):\n  funcx-endpoint: task ${taskId}\n${text}\n`,
    ),
  });
}
