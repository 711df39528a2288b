/**
 * What a worker's result frame says, read from the fixed pickle layout the python worker
 * writes, without unpickling it: the manager only needs "ok or failed, for this task" to
 * count, and forwards the frame as it is.
 *
 * @example
 * ```ts
 * import { encodePickle } from "./pickle/mod.ts";
 * import { peekResultOutcome } from "./worker_result.ts";
 * const frame = encodePickle({ task_id: "t1", container_id: "RAW", result: "00\n..." });
 * peekResultOutcome(frame, new TextEncoder().encode("t1")); // undefined: not the worker's layout
 * ```
 * @module
 */

const _enc = new TextEncoder();
const _K_TASK_ID = _enc.encode("task_id");
const _K_CONTAINER_ID = _enc.encode("container_id");
const _K_RESULT = _enc.encode("result");
const _K_EXCEPTION = _enc.encode("exception");

/**
 * `"ok"` or `"failed"` for a result frame in the layout `run_task` (python_worker.ts) writes
 * for the task whose id is `taskId` (UTF-8): a protocol 4 pickle of a dict, framed, memoized,
 * with the keys task_id, container_id, then "result" or "exception", all short strings.
 * `undefined` when the frame does not have that layout or is for another task: the caller
 * then decodes it.
 *
 * @example
 * ```ts
 * import { peekResultOutcome } from "./worker_result.ts";
 * peekResultOutcome(new Uint8Array([0x80, 4]), new Uint8Array()); // undefined
 * ```
 */
export function peekResultOutcome(
  frame: Uint8Array,
  taskId: Uint8Array,
): "ok" | "failed" | undefined {
  // \x80\x04 \x95 <8-byte frame length> } \x94 ( — then the keys and values in order
  if (frame.length < 16 || frame[0] !== 0x80 || frame[1] !== 4 || frame[2] !== 0x95) {
    return undefined;
  }
  let i = 11;
  if (frame[i++] !== 0x7d || frame[i++] !== 0x94 || frame[i++] !== 0x28) return undefined;
  const str = (b: Uint8Array): boolean => {
    if (b.length > 255 || frame[i] !== 0x8c || frame[i + 1] !== b.length) return false;
    for (let k = 0; k < b.length; k++) if (frame[i + 2 + k] !== b[k]) return false;
    if (frame[i + 2 + b.length] !== 0x94) return false;
    i += b.length + 3;
    return true;
  };
  if (!str(_K_TASK_ID) || !str(taskId) || !str(_K_CONTAINER_ID)) return undefined;
  // container id: any short string
  if (frame[i] !== 0x8c) return undefined;
  i += frame[i + 1] + 2;
  if (frame[i++] !== 0x94) return undefined;
  if (str(_K_RESULT)) return "ok";
  if (str(_K_EXCEPTION)) return "failed";
  return undefined;
}
