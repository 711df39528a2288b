/**
 * The interchange ↔ manager wire protocol (ours, not upstream; DESIGN.md §6).
 *
 * Multipart ZeroMQ messages whose first frame is the type:
 * - manager → interchange: `REGISTER json{uid, block_id, hostname, pid, workers, cores, token}`
 *   (`token`: the interchange's secret, given to managers in env `FUNCX_MANAGER_TOKEN`),
 *   `CAPACITY json{free, queued}`, `RESULTS json[{task_id, failed}]` + one frame per pickled
 *   result, `STARTED json[task_id]` (tasks a worker is running or starts next: only these
 *   may have begun, so a lost manager's other tasks are re-queued), `HEARTBEAT`, and
 *   `BYE json{reason}` as its last message when it exits (every task it ran has had its
 *   result sent before, so the rest never started);
 * - interchange → manager: `TASKS json[{task_id}]` + one frame per task body, `HEARTBEAT`,
 *   `SHUTDOWN`, and `PYTHON json{python}` (the workers' interpreter, for a manager started
 *   with `--python-from interchange` while the endpoint was still resolving it).
 *
 * Decoding is strict: anything malformed raises {@linkcode WireError} with one line saying
 * what was wrong, so a bad peer is logged and ignored, never crashes a process.
 *
 * @example
 * ```ts
 * import { decodeManagerMessage, encodeCapacity } from "./wire.ts";
 * const frames = encodeCapacity({ free: 2, queued: 0 });
 * decodeManagerMessage(frames); // { type: "CAPACITY", free: 2, queued: 0 }
 * ```
 * @module
 */

const _enc = new TextEncoder();
const _dec = new TextDecoder("utf-8", { fatal: true });

/** A malformed frame from a peer. */
export class WireError extends Error {
  /** `message`: one line naming what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/** A manager's registration. */
export interface RegisterInfo {
  /** Manager id, equal to its ZeroMQ routing id. */
  uid: string;
  /** Block the manager was started for. */
  block_id: string;
  /** Host it runs on. */
  hostname: string;
  /** Its process id. */
  pid: number;
  /** Worker processes it runs. */
  workers: number;
  /** CPU cores of its node. */
  cores: number;
  /** Shared secret proving the manager was started by this interchange (may be empty). */
  token: string;
}

/** One result in a RESULTS message. */
export interface WireResult {
  /** Task id. */
  taskId: string;
  /** True when the result dict holds an exception. */
  failed: boolean;
  /** The pickled result dict, untouched. */
  message: Uint8Array;
}

/** One task in a TASKS message. */
export interface WireTask {
  /** Task id. */
  taskId: string;
  /** The upstream packed Task message. */
  body: Uint8Array;
}

/** Messages a manager sends. */
export type ManagerMessage =
  | ({ type: "REGISTER" } & RegisterInfo)
  | {
    type: "CAPACITY";
    free: number;
    queued: number;
    /** Why the manager's workers cannot run (health.ts), null when they can. */
    problem: string | null;
  }
  | { type: "RESULTS"; results: WireResult[] }
  | { type: "BYE"; reason: string }
  | { type: "STARTED"; taskIds: string[] }
  | { type: "HEARTBEAT" };

/** Messages the interchange sends. */
export type InterchangeMessage =
  | { type: "TASKS"; tasks: WireTask[] }
  | { type: "HEARTBEAT" }
  | { type: "SHUTDOWN" }
  | { type: "PYTHON"; python: string };

/** Largest JSON header frame accepted (bytes). */
const _MAX_HEADER = 4 * 1024 * 1024;

function _json(frame: Uint8Array | undefined, what: string): unknown {
  if (!frame) throw new WireError(`${what}: missing JSON frame`);
  if (frame.byteLength > _MAX_HEADER) throw new WireError(`${what}: JSON frame too large`);
  try {
    return JSON.parse(_dec.decode(frame));
  } catch {
    throw new WireError(`${what}: frame is not valid UTF-8 JSON`);
  }
}

function _type(frames: Uint8Array[]): string {
  const f = frames[0];
  if (!f || f.byteLength === 0 || f.byteLength > 16) {
    throw new WireError("message without a valid type frame");
  }
  try {
    return _dec.decode(f);
  } catch {
    throw new WireError("type frame is not UTF-8");
  }
}

function _str(v: unknown, what: string, max = 256): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new WireError(`${what}: expected a non-empty string`);
  }
  return v;
}

function _int(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 1e9) {
    throw new WireError(`${what}: expected a non-negative integer`);
  }
  return v;
}

function _list(v: unknown, what: string, n: number): unknown[] {
  if (!Array.isArray(v)) throw new WireError(`${what}: header must be a JSON list`);
  if (v.length !== n) {
    throw new WireError(`${what}: header lists ${v.length} items but ${n} data frames follow`);
  }
  return v;
}

/**
 * Decode a message from a manager (frames after the routing id).
 *
 * @example
 * ```ts
 * decodeManagerMessage([new TextEncoder().encode("HEARTBEAT")]); // { type: "HEARTBEAT" }
 * ```
 */
export function decodeManagerMessage(frames: Uint8Array[]): ManagerMessage {
  const type = _type(frames);
  switch (type) {
    case "HEARTBEAT":
      return { type };
    case "REGISTER": {
      const o = _json(frames[1], "REGISTER") as Record<string, unknown>;
      if (!o || typeof o !== "object" || Array.isArray(o)) {
        throw new WireError("REGISTER: expected a JSON object");
      }
      return {
        type,
        uid: _str(o.uid, "REGISTER.uid"),
        block_id: _str(o.block_id, "REGISTER.block_id"),
        hostname: typeof o.hostname === "string" ? o.hostname.slice(0, 256) : "",
        pid: _int(o.pid ?? 0, "REGISTER.pid"),
        workers: _int(o.workers, "REGISTER.workers"),
        cores: _int(o.cores ?? 0, "REGISTER.cores"),
        token: typeof o.token === "string" ? o.token.slice(0, 256) : "",
      };
    }
    case "CAPACITY": {
      const o = _json(frames[1], "CAPACITY") as Record<string, unknown>;
      if (!o || typeof o !== "object" || Array.isArray(o)) {
        throw new WireError("CAPACITY: expected a JSON object");
      }
      return {
        type,
        free: _int(o.free, "CAPACITY.free"),
        queued: _int(o.queued ?? 0, "CAPACITY.queued"),
        problem: typeof o.problem === "string" && o.problem ? o.problem.slice(0, 1000) : null,
      };
    }
    case "BYE": {
      const o = _json(frames[1], "BYE") as Record<string, unknown>;
      const reason = o && typeof o === "object" && typeof o.reason === "string" ? o.reason : "";
      return { type, reason: reason.slice(0, 500) };
    }
    case "STARTED": {
      if (frames.length !== 2) {
        throw new WireError(`STARTED: expected 1 frame after the type, got ${frames.length - 1}`);
      }
      const head = _json(frames[1], "STARTED");
      if (!Array.isArray(head)) throw new WireError("STARTED: expected a JSON list of task ids");
      return { type, taskIds: head.map((h, i) => _str(h, `STARTED[${i}]`)) };
    }
    case "RESULTS": {
      const head = _list(_json(frames[1], "RESULTS"), "RESULTS", frames.length - 2);
      const results = head.map((h, i) => {
        const o = h as Record<string, unknown>;
        if (!o || typeof o !== "object") throw new WireError(`RESULTS[${i}]: expected an object`);
        return {
          taskId: _str(o.task_id, `RESULTS[${i}].task_id`),
          failed: o.failed === true,
          message: frames[i + 2],
        };
      });
      return { type, results };
    }
    default:
      throw new WireError(`unknown message type "${type.slice(0, 16)}" from a manager`);
  }
}

/**
 * Decode a message from the interchange.
 *
 * @example
 * ```ts
 * decodeInterchangeMessage([new TextEncoder().encode("SHUTDOWN")]); // { type: "SHUTDOWN" }
 * ```
 */
export function decodeInterchangeMessage(frames: Uint8Array[]): InterchangeMessage {
  const type = _type(frames);
  switch (type) {
    case "HEARTBEAT":
    case "SHUTDOWN":
      return { type };
    case "PYTHON": {
      const o = _json(frames[1], "PYTHON") as Record<string, unknown>;
      if (!o || typeof o !== "object") throw new WireError("PYTHON: expected a JSON object");
      return { type, python: _str(o.python, "PYTHON.python", 4096) };
    }
    case "TASKS": {
      const head = _list(_json(frames[1], "TASKS"), "TASKS", frames.length - 2);
      const tasks = head.map((h, i) => {
        const o = h as Record<string, unknown>;
        if (!o || typeof o !== "object") throw new WireError(`TASKS[${i}]: expected an object`);
        return { taskId: _str(o.task_id, `TASKS[${i}].task_id`), body: frames[i + 2] };
      });
      return { type, tasks };
    }
    default:
      throw new WireError(`unknown message type "${type.slice(0, 16)}" from the interchange`);
  }
}

/**
 * Frames of a PYTHON message (the interchange tells a waiting manager its interpreter).
 *
 * @example
 * ```ts
 * encodePython("/usr/bin/python3"); // [PYTHON, {"python":"/usr/bin/python3"}]
 * ```
 */
export function encodePython(python: string): Uint8Array[] {
  return [_enc.encode("PYTHON"), _enc.encode(JSON.stringify({ python }))];
}

/**
 * Frames of a REGISTER message.
 *
 * @example
 * ```ts
 * encodeRegister({ uid: "m1", block_id: "0", hostname: "h", pid: 1, workers: 2, cores: 2, token: "" });
 * ```
 */
export function encodeRegister(info: RegisterInfo): Uint8Array[] {
  return [_enc.encode("REGISTER"), _enc.encode(JSON.stringify(info))];
}

/**
 * Frames of a CAPACITY message.
 *
 * @example
 * ```ts
 * encodeCapacity({ free: 1, queued: 0 });
 * ```
 */
export function encodeCapacity(
  c: { free: number; queued: number; problem?: string | null },
): Uint8Array[] {
  return [_enc.encode("CAPACITY"), _enc.encode(JSON.stringify(c))];
}

/**
 * Frames of a BYE message (a manager's last words).
 *
 * @example
 * ```ts
 * encodeBye("SHUTDOWN from the interchange");
 * ```
 */
export function encodeBye(reason: string): Uint8Array[] {
  return [_enc.encode("BYE"), _enc.encode(JSON.stringify({ reason }))];
}

/**
 * Frames of a STARTED message: tasks now at the head of a worker (running, or starting as
 * soon as the worker's current task ends).
 *
 * @example
 * ```ts
 * encodeStarted(["8c0e…"]);
 * ```
 */
export function encodeStarted(taskIds: string[]): Uint8Array[] {
  return [_enc.encode("STARTED"), _enc.encode(JSON.stringify(taskIds))];
}

/**
 * Frames of a RESULTS message.
 *
 * @example
 * ```ts
 * encodeResults([{ taskId: "t1", failed: false, message: new Uint8Array([0x80]) }]);
 * ```
 */
export function encodeResults(results: WireResult[]): Uint8Array[] {
  const head = results.map((r) => ({ task_id: r.taskId, failed: r.failed }));
  return [
    _enc.encode("RESULTS"),
    _enc.encode(JSON.stringify(head)),
    ...results.map((r) => r.message),
  ];
}

/**
 * Frames of a TASKS message.
 *
 * @example
 * ```ts
 * encodeTasks([{ taskId: "t1", body: new Uint8Array([5]) }]);
 * ```
 */
export function encodeTasks(tasks: WireTask[]): Uint8Array[] {
  const head = tasks.map((t) => ({ task_id: t.taskId }));
  return [_enc.encode("TASKS"), _enc.encode(JSON.stringify(head)), ...tasks.map((t) => t.body)];
}

/**
 * Frames of a message that is only a type (`HEARTBEAT`, `SHUTDOWN`).
 *
 * @example
 * ```ts
 * encodeBare("HEARTBEAT");
 * ```
 */
export function encodeBare(type: "HEARTBEAT" | "SHUTDOWN"): Uint8Array[] {
  return [_enc.encode(type)];
}

/**
 * Read `TID=` and `CID=` from an upstream packed Task message (type byte 5), or `undefined`
 * when the bytes are not one.
 *
 * @example
 * ```ts
 * const body = new TextEncoder().encode("\x05TID=abc;CID=RAW;payload");
 * taskHeader(body); // { taskId: "abc", containerId: "RAW" }
 * ```
 */
export function taskHeader(body: Uint8Array): { taskId: string; containerId: string } | undefined {
  if (body.byteLength < 10 || body[0] !== 5) return undefined;
  const head = new TextDecoder().decode(body.subarray(1, Math.min(body.byteLength, 400)));
  const m = /^TID=([^;]*);CID=([^;]*);/.exec(head);
  if (!m) return undefined;
  return { taskId: m[1], containerId: m[2] };
}
