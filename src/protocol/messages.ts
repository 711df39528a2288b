/**
 * Upstream message framing (`funcx_endpoint/executors/high_throughput/messages.py`, 0.3.x)
 * and the pickled dicts/objects the endpoint exchanges with the forwarder.
 *
 * A packed message is one type byte followed by a body; see {@linkcode MessageType}.
 * Tasks are `\x05TID=<task_id>;CID=<container_id>;<task buffer>`.
 *
 * @example
 * ```ts
 * import { MessageType, packTask, unpackMessage } from "./messages.ts";
 * const m = unpackMessage(packTask("t1", "RAW", "3\nabc"));
 * if (m.type === MessageType.TASK) m.taskId; // "t1"
 * ```
 * @module
 */
import { ProtocolError } from "./errors.ts";
import {
  decodePickle,
  encodePickle,
  isPlainDict,
  PyFloat,
  PyGlobal,
  PyObject,
  type PyValue,
} from "./pickle/mod.ts";

/** Message type byte (upstream `MessageType`, `auto()` from 1). */
export enum MessageType {
  HEARTBEAT_REQ = 1,
  HEARTBEAT = 2,
  EP_STATUS_REPORT = 3,
  MANAGER_STATUS_REPORT = 4,
  TASK = 5,
  RESULTS_ACK = 6,
  TASK_CANCEL = 7,
  BAD_COMMAND = 8,
}

/** Upstream `TaskStatusCode`. */
export enum TaskStatusCode {
  WAITING_FOR_NODES = 1,
  WAITING_FOR_LAUNCH = 2,
  RUNNING = 3,
  SUCCESS = 4,
  FAILED = 5,
  CANCELLED = 6,
}

const _STATUS_NAMES: Record<number, string> = {
  1: "waiting-for-nodes",
  2: "waiting-for-launch",
  3: "running",
  4: "success",
  5: "failed",
  6: "cancelled",
};

/**
 * The service's status string for a task status code (forwarder `status_code_convert`).
 *
 * @example
 * ```ts
 * import { taskStatusName, TaskStatusCode } from "./messages.ts";
 * taskStatusName(TaskStatusCode.RUNNING); // "running"
 * ```
 */
export function taskStatusName(code: number): string {
  const s = _STATUS_NAMES[code];
  if (!s) throw new ProtocolError(`task status: unknown code ${code}; expected 1-6`);
  return s;
}

/** A decoded message, by type. */
export type Message =
  | { type: MessageType.HEARTBEAT_REQ }
  | { type: MessageType.HEARTBEAT; endpointId: string }
  | {
    type: MessageType.EP_STATUS_REPORT;
    endpointId: string;
    epStatus: unknown;
    taskStatuses: Record<string, number>;
  }
  | {
    type: MessageType.MANAGER_STATUS_REPORT;
    containerSwitchCount: bigint;
    taskStatuses: Record<string, number>;
  }
  | {
    type: MessageType.TASK;
    taskId: string;
    containerId: string;
    /** The task buffer (packed serialized fn/args/kwargs), a view into the input. */
    body: Uint8Array;
    /** The whole packed message (the input). */
    raw: Uint8Array;
  }
  | { type: MessageType.RESULTS_ACK; taskId: string }
  | { type: MessageType.TASK_CANCEL; taskId: string }
  | { type: MessageType.BAD_COMMAND; reason: string };

const _utf8 = new TextEncoder();
const _utf8Dec = new TextDecoder("utf-8", { fatal: true });

function _ascii(b: Uint8Array, what: string): string {
  let s = "";
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c >= 0x80) throw new ProtocolError(`message: ${what} is not ASCII (byte ${i})`);
    s += String.fromCharCode(c);
  }
  return s;
}

function _asciiBytes(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length + 1);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) throw new ProtocolError(`message: ${what} must be ASCII`);
    out[i + 1] = c;
  }
  return out;
}

/**
 * Pack a Task message: `\x05TID=<taskId>;CID=<containerId>;` + body. The ids must not
 * contain `;`.
 *
 * @example
 * ```ts
 * import { packTask } from "./messages.ts";
 * packTask("4b1...", "RAW", "12\n00\ngAQu...");
 * ```
 */
export function packTask(
  taskId: string,
  containerId: string,
  body: Uint8Array | string,
): Uint8Array {
  if (taskId.includes(";") || containerId.includes(";")) {
    throw new ProtocolError("message: task id and container id must not contain ';'");
  }
  const head = _utf8.encode(`TID=${taskId};CID=${containerId};`);
  const b = typeof body === "string" ? _utf8.encode(body) : body;
  const out = new Uint8Array(1 + head.length + b.length);
  out[0] = MessageType.TASK;
  out.set(head, 1);
  out.set(b, 1 + head.length);
  return out;
}

/**
 * `HEARTBEAT_REQ` (one byte).
 *
 * @example
 * ```ts
 * import { packHeartbeatReq } from "./messages.ts";
 * packHeartbeatReq(); // Uint8Array [1]
 * ```
 */
export function packHeartbeatReq(): Uint8Array {
  return new Uint8Array([MessageType.HEARTBEAT_REQ]);
}

/**
 * `HEARTBEAT` with the (ASCII) endpoint id, which may be empty.
 *
 * @example
 * ```ts
 * import { packHeartbeat } from "./messages.ts";
 * packHeartbeat("4b116d3c-1703-4f8f-9f6f-39921e5864df");
 * ```
 */
export function packHeartbeat(endpointId = ""): Uint8Array {
  const out = _asciiBytes(endpointId, "endpoint id");
  out[0] = MessageType.HEARTBEAT;
  return out;
}

/**
 * `RESULTS_ACK` for a task id.
 *
 * @example
 * ```ts
 * import { packResultsAck } from "./messages.ts";
 * packResultsAck("7c3a0c5e-9e8e-4f38-8d8f-6a2f0c1b8f11");
 * ```
 */
export function packResultsAck(taskId: string): Uint8Array {
  const out = _asciiBytes(taskId, "task id");
  out[0] = MessageType.RESULTS_ACK;
  return out;
}

/**
 * `BAD_COMMAND` with an ASCII reason.
 *
 * @example
 * ```ts
 * import { packBadCommand } from "./messages.ts";
 * packBadCommand("unknown command");
 * ```
 */
export function packBadCommand(reason: string): Uint8Array {
  const out = _asciiBytes(reason.replace(/[\u0080-\uffff]/g, "?"), "reason");
  out[0] = MessageType.BAD_COMMAND;
  return out;
}

/**
 * The 16 raw bytes of a UUID string (`uuid.UUID(s).bytes`).
 *
 * @example
 * ```ts
 * import { uuidBytes } from "./messages.ts";
 * uuidBytes("4b116d3c-1703-4f8f-9f6f-39921e5864df").length; // 16
 * ```
 */
export function uuidBytes(id: string): Uint8Array {
  const hex = id.replace(/^urn:uuid:/i, "").replace(/[{}-]/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) {
    throw new ProtocolError(`message: ${JSON.stringify(id.slice(0, 40))} is not a UUID`);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The canonical UUID string of 16 bytes.
 *
 * @example
 * ```ts
 * import { uuidBytes, uuidString } from "./messages.ts";
 * uuidString(uuidBytes("4B116D3C17034F8F9F6F39921E5864DF")); // "4b116d3c-1703-4f8f-9f6f-39921e5864df"
 * ```
 */
export function uuidString(b: Uint8Array): string {
  if (b.length !== 16) throw new ProtocolError(`message: a UUID has 16 bytes, got ${b.length}`);
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The raw `EP_STATUS_REPORT` message (type 3): UUID bytes + ASCII JSON
 * `[ep_status, task_statuses]`.
 *
 * @example
 * ```ts
 * import { packEPStatusReportMessage } from "./messages.ts";
 * packEPStatusReportMessage("4b116d3c-1703-4f8f-9f6f-39921e5864df", { task_id: -2, info: {} }, {});
 * ```
 */
export function packEPStatusReportMessage(
  endpointId: string,
  epStatus: unknown,
  taskStatuses: Record<string, number>,
): Uint8Array {
  const json = pyJsonDumps([epStatus, taskStatuses]);
  const out = new Uint8Array(17 + json.length);
  out[0] = MessageType.EP_STATUS_REPORT;
  out.set(uuidBytes(endpointId), 1);
  for (let i = 0; i < json.length; i++) out[17 + i] = json.charCodeAt(i);
  return out;
}

/**
 * `json.dumps(v)` as CPython writes it by default: `", "` and `": "` separators and
 * `ensure_ascii` (every character outside space..`~` escaped as `\uXXXX`).
 *
 * @example
 * ```ts
 * import { pyJsonDumps } from "./messages.ts";
 * pyJsonDumps({ a: [1, "é"] }); // '{"a": [1, "\\u00e9"]}'
 * ```
 */
export function pyJsonDumps(v: unknown): string {
  if (Array.isArray(v)) return "[" + v.map(pyJsonDumps).join(", ") + "]";
  if (v !== null && typeof v === "object") {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined) parts.push(_pyJsonString(k) + ": " + pyJsonDumps(x));
    }
    return "{" + parts.join(", ") + "}";
  }
  if (typeof v === "string") return _pyJsonString(v);
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    return String(v);
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "true" : "false";
  return "null";
}

function _pyJsonString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

function _statusMap(v: unknown, what: string): Record<string, number> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new ProtocolError(`message: ${what} task statuses are not an object`);
  }
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "number" || !Number.isInteger(x)) {
      throw new ProtocolError(`message: ${what} status of task ${JSON.stringify(k)} is not an int`);
    }
    Object.defineProperty(out, k, {
      value: x,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function _json(b: Uint8Array, what: string): unknown {
  const text = _ascii(b, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(
      `message: ${what} is not valid JSON (${(e as Error).message.slice(0, 60)})`,
    );
  }
}

/**
 * Decode a packed message. The Task body is returned as a view into `buf` (no copy).
 * Throws {@linkcode ProtocolError} on an empty buffer, an unknown type or a malformed body.
 *
 * @example
 * ```ts
 * import { MessageType, packResultsAck, unpackMessage } from "./messages.ts";
 * const m = unpackMessage(packResultsAck("t1"));
 * m.type === MessageType.RESULTS_ACK; // true
 * ```
 */
export function unpackMessage(buf: Uint8Array): Message {
  if (!(buf instanceof Uint8Array)) throw new ProtocolError("message: input is not bytes");
  if (buf.length === 0) throw new ProtocolError("message: empty buffer");
  const type = buf[0];
  const rest = buf.subarray(1);
  switch (type) {
    case MessageType.HEARTBEAT_REQ:
      return { type };
    case MessageType.HEARTBEAT:
      return { type, endpointId: _ascii(rest, "heartbeat endpoint id") };
    case MessageType.RESULTS_ACK:
      return { type, taskId: _ascii(rest, "results ack task id") };
    case MessageType.BAD_COMMAND:
      return { type, reason: _ascii(rest, "bad command reason") };
    case MessageType.TASK_CANCEL: {
      const id = _json(rest, "task cancel");
      if (typeof id !== "string") {
        throw new ProtocolError("message: task cancel id is not a string");
      }
      return { type, taskId: id };
    }
    case MessageType.TASK:
      return _unpackTask(buf);
    case MessageType.EP_STATUS_REPORT: {
      if (rest.length < 16) {
        throw new ProtocolError("message: EP status report shorter than 16 bytes");
      }
      const v = _json(rest.subarray(16), "EP status report");
      if (!Array.isArray(v) || v.length !== 2) {
        throw new ProtocolError("message: EP status report is not [ep_status, task_statuses]");
      }
      return {
        type,
        endpointId: uuidString(rest.subarray(0, 16)),
        epStatus: v[0],
        taskStatuses: _statusMap(v[1], "EP status report"),
      };
    }
    case MessageType.MANAGER_STATUS_REPORT: {
      if (rest.length < 10) {
        throw new ProtocolError("message: manager status report shorter than 10 bytes");
      }
      let n = 0n;
      for (let i = 9; i >= 0; i--) n = (n << 8n) | BigInt(rest[i]);
      return {
        type,
        containerSwitchCount: n,
        taskStatuses: _statusMap(_json(rest.subarray(10), "manager status report"), "manager"),
      };
    }
    default:
      throw new ProtocolError(`message: unknown message type ${type}; expected 1-8`);
  }
}

function _unpackTask(buf: Uint8Array): Message {
  // 5 "TID=" <tid> ";" "CID=" <cid> ";" <body>
  if (
    buf.length < 5 || buf[1] !== 0x54 || buf[2] !== 0x49 || buf[3] !== 0x44 || buf[4] !== 0x3d
  ) {
    throw new ProtocolError("message: task does not start with TID=");
  }
  const s1 = buf.indexOf(0x3b, 5);
  if (s1 < 0) throw new ProtocolError("message: task has no ';' after the task id");
  if (
    buf[s1 + 1] !== 0x43 || buf[s1 + 2] !== 0x49 || buf[s1 + 3] !== 0x44 || buf[s1 + 4] !== 0x3d
  ) {
    throw new ProtocolError("message: task has no CID= after the task id");
  }
  const s2 = buf.indexOf(0x3b, s1 + 5);
  if (s2 < 0) throw new ProtocolError("message: task has no ';' after the container id");
  let taskId: string;
  let containerId: string;
  try {
    taskId = _utf8Dec.decode(buf.subarray(5, s1));
    containerId = _utf8Dec.decode(buf.subarray(s1 + 5, s2));
  } catch {
    throw new ProtocolError("message: task or container id is not UTF-8");
  }
  return { type: MessageType.TASK, taskId, containerId, body: buf.subarray(s2 + 1), raw: buf };
}

/** The class upstream's forwarder checks with `isinstance`. */
export const EP_STATUS_REPORT_CLASS = new PyGlobal(
  "funcx_endpoint.executors.high_throughput.messages",
  "EPStatusReport",
);

/**
 * Pickle of an upstream `EPStatusReport` instance (what the endpoint sends on the results
 * channel): `__dict__ = {_payload: None, _header: uuid bytes, ep_status: {"task_id": -2,
 * "info": info}, task_statuses: {task_id: code}}`.
 *
 * @example
 * ```ts
 * import { encodeEPStatusReport } from "./messages.ts";
 * encodeEPStatusReport("4b116d3c-1703-4f8f-9f6f-39921e5864df", { managers: 1 }, new Map([["t1", 3]]));
 * ```
 */
export function encodeEPStatusReport(
  endpointId: string,
  info: Record<string, PyValue>,
  taskStatuses: Map<string, number> | Record<string, number>,
): Uint8Array {
  const statuses: Record<string, PyValue> = {};
  const entries = taskStatuses instanceof Map
    ? taskStatuses.entries()
    : Object.entries(taskStatuses);
  for (const [k, v] of entries) {
    Object.defineProperty(statuses, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return encodePickle(
    new PyObject(EP_STATUS_REPORT_CLASS, [], "newobj", {
      _payload: null,
      _header: uuidBytes(endpointId),
      ep_status: { task_id: -2, info },
      task_statuses: statuses,
    }),
  );
}

/** A decoded EPStatusReport pickle. */
export interface EPStatusReportInfo {
  /** The endpoint UUID from the report header. */
  endpointId: string;
  /** `ep_status["info"]` (or the whole `ep_status` if it has no `info`). */
  info: Record<string, PyValue>;
  /** `{task_id: TaskStatusCode}`. */
  taskStatuses: Record<string, number>;
}

function _get(d: PyValue | undefined, key: string): PyValue | undefined {
  if (isPlainDict(d)) return Object.hasOwn(d, key) ? d[key] : undefined;
  if (d instanceof Map) return d.get(key);
  return undefined;
}

/**
 * True when a decoded pickle is an `EPStatusReport` instance.
 *
 * @example
 * ```ts
 * import { decodePickle } from "./pickle/mod.ts";
 * import { encodeEPStatusReport, isEPStatusReport } from "./messages.ts";
 * isEPStatusReport(decodePickle(encodeEPStatusReport("4b116d3c-1703-4f8f-9f6f-39921e5864df", {}, {}))); // true
 * ```
 */
export function isEPStatusReport(v: PyValue): v is PyObject {
  return v instanceof PyObject && v.cls.name === EP_STATUS_REPORT_CLASS.name &&
    v.cls.module === EP_STATUS_REPORT_CLASS.module;
}

/**
 * Read an `EPStatusReport` from its pickle (bytes) or decoded value.
 *
 * @example
 * ```ts
 * import { decodeEPStatusReport, encodeEPStatusReport } from "./messages.ts";
 * const r = decodeEPStatusReport(encodeEPStatusReport("4b116d3c-1703-4f8f-9f6f-39921e5864df", { managers: 2 }, {}));
 * r.info.managers; // 2
 * ```
 */
export function decodeEPStatusReport(input: Uint8Array | PyValue): EPStatusReportInfo {
  const v = input instanceof Uint8Array ? decodePickle(input) : input;
  if (!isEPStatusReport(v)) {
    throw new ProtocolError("EP status report: not an EPStatusReport object");
  }
  const header = _get(v.state, "_header");
  if (!(header instanceof Uint8Array)) {
    throw new ProtocolError("EP status report: _header is not 16 bytes");
  }
  const epStatus = _get(v.state, "ep_status");
  const info = _get(epStatus, "info") ?? epStatus ?? {};
  if (!isPlainDict(info)) throw new ProtocolError("EP status report: info is not a str-keyed dict");
  const ts = _get(v.state, "task_statuses") ?? {};
  const taskStatuses: Record<string, number> = {};
  const entries = ts instanceof Map
    ? [...ts.entries()]
    : isPlainDict(ts)
    ? Object.entries(ts)
    : null;
  if (!entries) throw new ProtocolError("EP status report: task_statuses is not a dict");
  for (const [k, x] of entries) {
    const code = x instanceof PyObject ? x.args[0] : x; // IntEnum pickles as REDUCE(cls, (n,))
    if (typeof k !== "string" || typeof code !== "number") {
      throw new ProtocolError("EP status report: task_statuses must map str to int");
    }
    Object.defineProperty(taskStatuses, k, {
      value: code,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { endpointId: uuidString(header), info, taskStatuses };
}

/**
 * Pickle of a registration message dict (`{"registration": id}` or the platform dict).
 *
 * @example
 * ```ts
 * import { encodeRegistration } from "./messages.ts";
 * encodeRegistration({ registration: "4b116d3c-1703-4f8f-9f6f-39921e5864df" });
 * ```
 */
export function encodeRegistration(dict: Record<string, PyValue>): Uint8Array {
  return encodePickle(dict);
}

/**
 * Decode a registration message; it must be a str-keyed dict with a str `registration`.
 *
 * @example
 * ```ts
 * import { decodeRegistration, encodeRegistration } from "./messages.ts";
 * decodeRegistration(encodeRegistration({ registration: "x" })).registration; // "x"
 * ```
 */
export function decodeRegistration(
  buf: Uint8Array,
): Record<string, PyValue> & { registration: string } {
  const v = decodePickle(buf);
  if (!isPlainDict(v)) throw new ProtocolError("registration: message is not a dict with str keys");
  if (typeof v.registration !== "string" || !Object.hasOwn(v, "registration")) {
    throw new ProtocolError("registration: message has no str 'registration' field");
  }
  return v as Record<string, PyValue> & { registration: string };
}

/** A task result as the worker pickles it (upstream result dict, 0.3.7+ `times`). */
export interface ResultMessage {
  /** The task UUID (empty when a worker could not read it from a garbled task). */
  task_id: string;
  /** Container id of the task (`RAW`); absent in endpoint-generated failures. */
  container_id?: string;
  /** Serialized result (`"00\n..."`), when the task succeeded. */
  result?: string;
  /** Serialized RemoteExceptionWrapper, when the task failed. */
  exception?: string;
  /** Execution times (epoch seconds), 0.3.7+. */
  times?: { execution_start: number; execution_end: number; execution_time: number };
}

/**
 * Pickle a result dict (used for endpoint-generated failures like ManagerLost).
 * Exactly one of `result`/`exception` must be set.
 *
 * @example
 * ```ts
 * import { encodeResult } from "./messages.ts";
 * import { remoteException } from "./serialize.ts";
 * encodeResult({ task_id: "t1", exception: remoteException("ManagerLost", "lost", "") });
 * ```
 */
export function encodeResult(r: ResultMessage): Uint8Array {
  if ((r.result === undefined) === (r.exception === undefined)) {
    throw new ProtocolError("result: exactly one of result and exception must be set");
  }
  const d: Record<string, PyValue> = { task_id: r.task_id };
  if (r.container_id !== undefined) d.container_id = r.container_id;
  if (r.result !== undefined) d.result = r.result;
  if (r.exception !== undefined) d.exception = r.exception;
  if (r.times) {
    d.times = {
      execution_start: new PyFloat(r.times.execution_start),
      execution_end: new PyFloat(r.times.execution_end),
      execution_time: new PyFloat(r.times.execution_time),
    };
  }
  return encodePickle(d);
}

/**
 * Decode and validate a pickled result dict: a str `task_id` and a str `result` or
 * `exception`. Throws {@linkcode ProtocolError} naming the bad field.
 *
 * @example
 * ```ts
 * import { decodeResult, encodeResult } from "./messages.ts";
 * decodeResult(encodeResult({ task_id: "t1", result: "00\ngAQu\n" })).task_id; // "t1"
 * ```
 */
export function decodeResult(buf: Uint8Array): ResultMessage {
  const v = decodePickle(buf);
  if (!isPlainDict(v)) throw new ProtocolError("result: message is not a dict with str keys");
  const out: ResultMessage = { task_id: "" };
  const tid = Object.hasOwn(v, "task_id") ? v.task_id : undefined;
  if (typeof tid !== "string") throw new ProtocolError("result: task_id is missing or not a str");
  out.task_id = tid;
  const cid = Object.hasOwn(v, "container_id") ? v.container_id : undefined;
  if (cid !== undefined && cid !== null) {
    if (typeof cid !== "string") throw new ProtocolError("result: container_id is not a str");
    out.container_id = cid;
  }
  const res = Object.hasOwn(v, "result") ? v.result : undefined;
  const exc = Object.hasOwn(v, "exception") ? v.exception : undefined;
  if (res !== undefined) {
    if (typeof res !== "string") throw new ProtocolError("result: result is not a str");
    out.result = res;
  }
  if (exc !== undefined) {
    if (typeof exc !== "string") throw new ProtocolError("result: exception is not a str");
    out.exception = exc;
  }
  if (res === undefined && exc === undefined) {
    throw new ProtocolError("result: neither result nor exception is present");
  }
  const times = Object.hasOwn(v, "times") ? v.times : undefined;
  if (isPlainDict(times)) {
    const n = (k: string) => {
      const x = times[k];
      return typeof x === "number" ? x : x instanceof PyFloat ? x.value : 0;
    };
    out.times = {
      execution_start: n("execution_start"),
      execution_end: n("execution_end"),
      execution_time: n("execution_time"),
    };
  }
  return out;
}
