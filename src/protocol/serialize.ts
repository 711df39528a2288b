/**
 * funcX payload serialization (upstream `funcx.serialize`, 0.2.3–0.3.x).
 *
 * A serialized object is `"<id>\n" + MIME-base64(pickle)`, where the 2-digit id says what
 * the pickle holds: `00` data, `01` a dill-pickled function, `02` a pickled function,
 * `03` a `(name, source)` tuple (inspect), `04` a `(name, source)` tuple (dill source).
 * A task body is three such strings packed with {@linkcode packBuffers}:
 * function, args tuple, kwargs dict.
 *
 * Remote exceptions travel as a `00`-serialized pickled
 * `parsl.app.errors.RemoteExceptionWrapper` in parsl 1.1.0's layout (`e_type`/`e_value`
 * pickles, `e_traceback` a `tblib.Traceback`) whose state also carries `exception_type`,
 * `message` and `formatted_traceback` (see {@linkcode remoteException}).
 *
 * @example
 * ```ts
 * import { buildTaskPayload, deserialize, serializeData, serializeSource, tuple } from "./serialize.ts";
 * const fn = serializeSource("add", "def add(a, b):\n    return a + b\n");
 * const payload = buildTaskPayload(fn, serializeData(tuple(1, 2)), serializeData({}));
 * deserialize(serializeData([1, "x"])); // [1, "x"]
 * ```
 * @module
 */
import { decodeBase64Lenient, encodeBase64Mime } from "./base64.ts";
import { ProtocolError } from "./errors.ts";
import {
  type DecodeOptions,
  decodePickle,
  encodePickle,
  isPlainDict,
  PyGlobal,
  PyObject,
  PyTuple,
  type PyValue,
} from "./pickle/mod.ts";

export { tuple } from "./pickle/mod.ts";

/** Serializer ids of funcX 0.2.3–0.3.x. */
export const SerializerId = {
  /** `pickle_base64`: data. */
  DATA: "00",
  /** `code_dill`: `dill.dumps(fn)`. */
  CODE_DILL: "01",
  /** `code_pickle`: `pickle.dumps(fn)`. */
  CODE_PICKLE: "02",
  /** `code_text_inspect`: `(name, inspect.getsource(fn))`. */
  CODE_TEXT_INSPECT: "03",
  /** `code_dill_source`: `(name, dill.source.getsource(fn))`. */
  CODE_DILL_SOURCE: "04",
} as const;

/** One of the {@linkcode SerializerId} values. */
export type SerializerIdValue = typeof SerializerId[keyof typeof SerializerId];

const _IDS = new Set<string>(Object.values(SerializerId));

/** Length of the `"NN\n"` header, upstream `header_size`. */
export const HEADER_SIZE = 3;

/** The global upstream uses for remote exceptions. */
export const REMOTE_EXCEPTION_WRAPPER = new PyGlobal("parsl.app.errors", "RemoteExceptionWrapper");

/**
 * Serialize data with id `00`: `"00\n" + base64(pickle(value))`.
 *
 * @example
 * ```ts
 * import { serializeData } from "./serialize.ts";
 * serializeData(3).startsWith("00\n"); // true
 * ```
 */
export function serializeData(value: PyValue): string {
  return "00\n" + encodeBase64Mime(encodePickle(value));
}

/**
 * Serialize a Python function given as source text with id `03`
 * (`base64(pickle((name, source)))`); the worker `exec`s the source and takes `name`.
 *
 * @example
 * ```ts
 * import { serializeSource } from "./serialize.ts";
 * const s = serializeSource("double", "def double(x):\n    return 2 * x\n");
 * ```
 */
export function serializeSource(name: string, source: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new ProtocolError(
      `serialize: function name ${JSON.stringify(name)} is not a Python identifier`,
    );
  }
  return "03\n" + encodeBase64Mime(encodePickle(new PyTuple([name, source])));
}

/**
 * Split a serialized string into its id and base64 body. Throws {@linkcode ProtocolError}
 * on an unknown id.
 *
 * @example
 * ```ts
 * import { serializedId } from "./serialize.ts";
 * serializedId("00\ngAQu\n"); // "00"
 * ```
 */
export function serializedId(s: string): SerializerIdValue {
  if (typeof s !== "string") throw new ProtocolError("serialize: payload is not a string");
  const head = s.slice(0, HEADER_SIZE);
  const id = head.slice(0, 2);
  if (head.length < HEADER_SIZE || head[2] !== "\n" || !_IDS.has(id)) {
    throw new ProtocolError(
      `serialize: invalid header ${
        JSON.stringify(head)
      } in payload; expected one of 00-04 followed by a newline`,
    );
  }
  return id as SerializerIdValue;
}

/**
 * Decode any serialized payload (ids 00–04) to the value its pickle holds, without running
 * anything: `00` gives the data, `03`/`04` a `(name, source)` {@linkcode PyTuple}, `01`/`02`
 * whatever the function pickle decodes to (usually a {@linkcode PyGlobal} or
 * {@linkcode PyObject}). Throws {@linkcode ProtocolError} on malformed input.
 *
 * @example
 * ```ts
 * import { deserialize, serializeData } from "./serialize.ts";
 * deserialize(serializeData({ a: 1 })); // { a: 1 }
 * ```
 */
export function deserialize(s: string, options: DecodeOptions = {}): PyValue {
  serializedId(s);
  return decodePickle(decodeBase64Lenient(s.slice(HEADER_SIZE)), options);
}

/**
 * The `(name, source)` of a `03`/`04` function payload.
 *
 * @example
 * ```ts
 * import { deserializeSource, serializeSource } from "./serialize.ts";
 * deserializeSource(serializeSource("f", "def f(): pass\n")).name; // "f"
 * ```
 */
export function deserializeSource(s: string): { name: string; source: string } {
  const id = serializedId(s);
  if (id !== "03" && id !== "04") {
    throw new ProtocolError(`serialize: payload id ${id} is not function source (03 or 04)`);
  }
  const v = deserialize(s);
  if (
    !(v instanceof PyTuple) || v.items.length !== 2 || typeof v.items[0] !== "string" ||
    typeof v.items[1] !== "string"
  ) {
    throw new ProtocolError("serialize: source payload is not a (name, source) tuple of str");
  }
  return { name: v.items[0], source: v.items[1] };
}

/**
 * Upstream `pack_buffers`: each buffer as `str(len(buf)) + "\n" + buf` (lengths count
 * UTF-16 code units, which equal Python's str length for the ASCII payloads funcX packs).
 *
 * @example
 * ```ts
 * import { packBuffers } from "./serialize.ts";
 * packBuffers(["ab", "c"]); // "2\nab1\nc"
 * ```
 */
export function packBuffers(buffers: readonly string[]): string {
  let out = "";
  for (const b of buffers) out += b.length + "\n" + b;
  return out;
}

/**
 * Upstream `unpack_buffers`, strict: every length must be a decimal number followed by a
 * newline and must fit in what is left. Throws {@linkcode ProtocolError} otherwise.
 *
 * @example
 * ```ts
 * import { unpackBuffers } from "./serialize.ts";
 * unpackBuffers("2\nab1\nc"); // ["ab", "c"]
 * ```
 */
export function unpackBuffers(packed: string): string[] {
  if (typeof packed !== "string") throw new ProtocolError("buffers: packed input is not a string");
  const out: string[] = [];
  let pos = 0;
  while (pos < packed.length) {
    const nl = packed.indexOf("\n", pos);
    if (nl < 0) {
      throw new ProtocolError(`buffers: missing newline after length at offset ${pos}`);
    }
    const len = packed.slice(pos, nl);
    if (!/^\d{1,15}$/.test(len)) {
      throw new ProtocolError(
        `buffers: invalid length ${
          JSON.stringify(len.slice(0, 20))
        } at offset ${pos}; expected decimal digits`,
      );
    }
    const n = Number(len);
    const start = nl + 1;
    if (n > packed.length - start) {
      throw new ProtocolError(
        `buffers: buffer at offset ${pos} declares ${n} characters but only ${
          packed.length - start
        } remain`,
      );
    }
    out.push(packed.slice(start, start + n));
    pos = start + n;
  }
  return out;
}

/** Matches a packed single buffer holding a serialized payload (`"<len>\n0N\n..."`). */
const _PACKED_RE = /^\d+\n0[0-4]\n/;

/**
 * Task body as the service ships it: `pack_buffers([fn, args, kwargs])`. `fnCode` may be
 * the serialized function (`"03\n..."`) or upstream's stored `function_code`
 * (`pack_buffers([serialized_fn])`); both give the same result.
 *
 * @example
 * ```ts
 * import { buildTaskPayload, serializeData, serializeSource, tuple } from "./serialize.ts";
 * const body = buildTaskPayload(
 *   serializeSource("f", "def f(x):\n    return x\n"),
 *   serializeData(tuple(1)),
 *   serializeData({}),
 * );
 * ```
 */
export function buildTaskPayload(fnCode: string, argsSer: string, kwargsSer: string): string {
  let fn = fnCode;
  if (_PACKED_RE.test(fnCode)) {
    const parts = unpackBuffers(fnCode);
    if (parts.length !== 1) {
      throw new ProtocolError(
        `serialize: packed function code holds ${parts.length} buffers; expected 1`,
      );
    }
    fn = parts[0];
  }
  serializedId(fn);
  serializedId(argsSer);
  serializedId(kwargsSer);
  return packBuffers([fn, argsSer, kwargsSer]);
}

/**
 * Split a task body into its three serialized parts (upstream asserts exactly three).
 *
 * @example
 * ```ts
 * import { buildTaskPayload, serializeData, serializeSource, tuple, unpackTaskPayload } from "./serialize.ts";
 * const body = buildTaskPayload(serializeSource("f", "def f(): pass\n"), serializeData(tuple()), serializeData({}));
 * unpackTaskPayload(body).fn.startsWith("03\n"); // true
 * ```
 */
export function unpackTaskPayload(body: string): { fn: string; args: string; kwargs: string } {
  const parts = unpackBuffers(body);
  if (parts.length !== 3) {
    throw new ProtocolError(
      `task payload: expected 3 buffers (fn, args, kwargs), got ${parts.length}`,
    );
  }
  for (const p of parts) serializedId(p);
  return { fn: parts[0], args: parts[1], kwargs: parts[2] };
}

/** Python builtin exception names that can be referenced as `builtins.<name>`. */
const _BUILTIN_EXCEPTIONS = new Set([
  "ArithmeticError",
  "AssertionError",
  "AttributeError",
  "BaseException",
  "BlockingIOError",
  "BrokenPipeError",
  "BufferError",
  "ChildProcessError",
  "ConnectionAbortedError",
  "ConnectionError",
  "ConnectionRefusedError",
  "ConnectionResetError",
  "EOFError",
  "Exception",
  "FileExistsError",
  "FileNotFoundError",
  "FloatingPointError",
  "GeneratorExit",
  "ImportError",
  "IndentationError",
  "IndexError",
  "InterruptedError",
  "IsADirectoryError",
  "KeyError",
  "KeyboardInterrupt",
  "LookupError",
  "MemoryError",
  "ModuleNotFoundError",
  "NameError",
  "NotADirectoryError",
  "NotImplementedError",
  "OSError",
  "OverflowError",
  "PermissionError",
  "ProcessLookupError",
  "RecursionError",
  "ReferenceError",
  "RuntimeError",
  "StopIteration",
  "SyntaxError",
  "SystemError",
  "SystemExit",
  "TabError",
  "TimeoutError",
  "TypeError",
  "UnboundLocalError",
  "UnicodeDecodeError",
  "UnicodeEncodeError",
  "UnicodeError",
  "ValueError",
  "ZeroDivisionError",
]);

/**
 * The state of a `tblib.Traceback` (with its `Frame` and `Code`) as a one-frame traceback
 * `file`/`name`/`line`: what parsl's `RemoteExceptionWrapper.reraise()` turns back into a
 * real traceback with `as_traceback()` (tblib 1.x–3.x keep these attributes).
 *
 * @example
 * ```ts
 * import { tblibTraceback } from "./serialize.ts";
 * tblibTraceback("<funcx-endpoint>", "interchange", 1).cls.toString(); // "tblib.Traceback"
 * ```
 */
export function tblibTraceback(file: string, name: string, line: number): PyObject {
  const code = new PyObject(new PyGlobal("tblib", "Code"), [], "newobj", {
    co_filename: file,
    co_name: name,
    co_argcount: 0,
    co_kwonlyargcount: 0,
    co_varnames: new PyTuple([]),
    co_nlocals: 0,
    co_stacksize: 0,
    co_flags: 64,
    co_firstlineno: 0,
  });
  const frame = new PyObject(new PyGlobal("tblib", "Frame"), [], "newobj", {
    f_locals: {},
    f_globals: { __name__: "funcx_endpoint" },
    f_code: code,
    f_lineno: line,
  });
  return new PyObject(new PyGlobal("tblib", "Traceback"), [], "newobj", {
    tb_frame: frame,
    tb_lineno: line,
    tb_next: null,
  });
}

/**
 * The `RemoteExceptionWrapper` object (DESIGN §3) for an exception of Python type
 * `typeName` (e.g. `"ManagerLost"`, `"WorkerLost"`, `"ValueError"`), laid out as parsl
 * 1.1.0 has it, so upstream's `reraise()` works: `e_type` and `e_value` are pickles
 * (`dill.loads` reads them) of `builtins.<typeName>` for builtin exception names and of
 * `builtins.RuntimeError` otherwise, so any Python can load them; `e_traceback` is a
 * one-frame `tblib.Traceback` naming where the failure was made (`origin`). Our readable
 * fields ride along: `exception_type` always carries the real name.
 *
 * @example
 * ```ts
 * import { remoteExceptionObject } from "./serialize.ts";
 * const o = remoteExceptionObject("ManagerLost", "manager m1 lost", "");
 * ```
 */
export function remoteExceptionObject(
  typeName: string,
  message: string,
  tracebackText: string,
  origin = "funcx-endpoint",
): PyObject {
  const eType = new PyGlobal(
    "builtins",
    _BUILTIN_EXCEPTIONS.has(typeName) && typeName !== "UnicodeDecodeError" &&
      typeName !== "UnicodeEncodeError"
      ? typeName
      : "RuntimeError",
  );
  const eValue = new PyObject(eType, [message], "reduce");
  return new PyObject(REMOTE_EXCEPTION_WRAPPER, [], "newobj", {
    e_type: encodePickle(eType),
    e_value: encodePickle(eValue),
    e_traceback: tblibTraceback(`<${origin}>`, typeName, 1),
    formatted_traceback: tracebackText,
    exception_type: typeName,
    message,
  });
}

/**
 * A serialized (`00`) remote exception, as stored in a result dict's `"exception"` field.
 *
 * @example
 * ```ts
 * import { decodeRemoteException, deserialize, remoteException } from "./serialize.ts";
 * const s = remoteException("WorkerLost", "worker 3 died", "");
 * decodeRemoteException(deserialize(s)).type; // "WorkerLost"
 * ```
 */
export function remoteException(
  typeName: string,
  message: string,
  tracebackText: string,
  origin?: string,
): string {
  return serializeData(remoteExceptionObject(typeName, message, tracebackText, origin));
}

/** A remote exception as readers see it. */
export interface RemoteExceptionInfo {
  /** Python exception type name, e.g. `ValueError`, `ManagerLost`. */
  type: string;
  /** The exception message (`str(e)`). */
  message: string;
  /** The formatted remote traceback (may be empty). */
  traceback: string;
}

function _str(v: PyValue | undefined): string {
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "";
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return "";
}

function _excMessage(v: PyValue | undefined): string {
  if (v instanceof PyObject) {
    const args = v.args.length ? v.args : [];
    if (args.length === 1) return _str(args[0]);
    if (args.length > 1) return args.map(_str).join(", ");
  }
  return _str(v);
}

function _stateGet(state: PyValue | undefined, key: string): PyValue | undefined {
  if (isPlainDict(state)) return state[key];
  if (state instanceof Map) return state.get(key);
  // (dict, slots) state tuples
  if (state instanceof PyTuple && state.items.length === 2) {
    return _stateGet(state.items[0], key) ?? _stateGet(state.items[1], key);
  }
  return undefined;
}

/** A wrapper field that is itself a pickle (parsl's `dill.dumps`), decoded; else as is. */
function _inner(v: PyValue | undefined): PyValue | undefined {
  if (!(v instanceof Uint8Array)) return v;
  try {
    return decodePickle(v);
  } catch {
    return undefined; // a dill pickle of something our decoder does not model
  }
}

/**
 * Read a remote exception: our `RemoteExceptionWrapper` (any producer following DESIGN §3),
 * a Parsl/funcX one (`e_type`/`e_value` only), or a bare pickled exception. Accepts the
 * decoded value or the serialized string. Throws {@linkcode ProtocolError} for anything
 * that is not an exception.
 *
 * @example
 * ```ts
 * import { decodeRemoteException, remoteException } from "./serialize.ts";
 * decodeRemoteException(remoteException("ValueError", "bad", "Traceback ...")).message; // "bad"
 * ```
 */
export function decodeRemoteException(v: PyValue | string): RemoteExceptionInfo {
  if (typeof v === "string") v = deserialize(v);
  if (!(v instanceof PyObject)) {
    throw new ProtocolError("remote exception: value is not a pickled exception object");
  }
  const state = v.state;
  const eType = _inner(_stateGet(state, "e_type"));
  const eValue = _inner(_stateGet(state, "e_value"));
  const wrapper = eType !== undefined || eValue !== undefined ||
    _stateGet(state, "exception_type") !== undefined;
  if (!wrapper) {
    return { type: v.cls.name, message: _excMessage(v), traceback: "" };
  }
  const declared = _stateGet(state, "exception_type");
  let type = typeof declared === "string" && declared ? declared : "";
  if (!type && eType instanceof PyGlobal) type = eType.name;
  if (!type && eValue instanceof PyObject) type = eValue.cls.name;
  const msg = _stateGet(state, "message");
  return {
    type: type || "Exception",
    message: typeof msg === "string" ? msg : _excMessage(eValue),
    traceback: _str(_stateGet(state, "formatted_traceback")),
  };
}
