/**
 * Result dicts the endpoint generates itself for tasks that cannot finish normally:
 * `ManagerLost` (the manager or its block died), `WorkerLost` (the worker process died),
 * and block failures such as a walltime limit. They carry a RemoteExceptionWrapper-
 * compatible exception (DESIGN.md §3) so the SDK shows them like any remote error.
 *
 * @example
 * ```ts
 * import { lostTaskResult } from "./lost.ts";
 * const bytes = lostTaskResult("task-1", "ManagerLost", "manager m1 on node1 stopped responding");
 * ```
 * @module
 */
import { encodePickle, type PyValue } from "../protocol/pickle/mod.ts";
import { remoteException } from "../protocol/serialize.ts";

/** The kinds of endpoint-generated failures. */
export type LostKind = "ManagerLost" | "WorkerLost";

/**
 * The pickled result dict `{"task_id", ["container_id",] "exception"}` for a lost task.
 *
 * @example
 * ```ts
 * lostTaskResult("t", "WorkerLost", "worker 3 (pid 99) died: killed by signal SIGKILL", "RAW");
 * ```
 */
export function lostTaskResult(
  taskId: string,
  kind: LostKind,
  message: string,
  containerId?: string,
): Uint8Array {
  const text = `${kind}: ${message}`;
  const traceback =
    `Traceback (most recent call last):\n  funcx-endpoint: task ${taskId}\n${text}\n`;
  const dict: Record<string, PyValue> = { task_id: taskId };
  if (containerId !== undefined) dict.container_id = containerId;
  dict.exception = remoteException(kind, message, traceback);
  return encodePickle(dict);
}
