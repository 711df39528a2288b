/**
 * Python pickle, encoder and decoder, for the subset of values that travel on funcX wires.
 *
 * {@linkcode encodePickle} writes protocol 4 (loadable by CPython 3.8+);
 * {@linkcode decodePickle} reads protocols 0–5 as CPython writes them, including memo
 * opcodes, frames, class instances (`NEWOBJ`/`REDUCE`/`BUILD`), sets and bytearrays.
 * The decoder is bounded: it never reads past the input, never allocates more than a
 * small multiple of the input size, and throws {@linkcode ProtocolError} on anything
 * malformed.
 *
 * Python values map to JS as {@linkcode PyValue}: `None` → `null`, `bool` → `boolean`,
 * `int` → `number` (or `bigint` beyond 2^53), `float` → `number` (or {@linkcode PyFloat}
 * for integral floats with `preserveFloats`), `str` → `string`, `bytes` → `Uint8Array`,
 * `list` → array, `tuple` → {@linkcode PyTuple}, `dict` with only `str` keys → plain object,
 * other dicts → `Map`, `set`/`frozenset` → {@linkcode PySet}, `bytearray` →
 * {@linkcode PyByteArray}, a global reference → {@linkcode PyGlobal}, an instance →
 * {@linkcode PyObject}.
 *
 * @example
 * ```ts
 * import { decodePickle, encodePickle, PyTuple } from "./mod.ts";
 * const bytes = encodePickle({ task_id: "t1", args: new PyTuple([1, 2.5, "x"]) });
 * const back = decodePickle(bytes) as Record<string, unknown>;
 * back.task_id; // "t1"
 * ```
 * @module
 */
export { ProtocolError } from "../errors.ts";
export {
  isPlainDict,
  PyByteArray,
  type PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
  tuple,
} from "./_types.ts";
export { type DecodeOptions, decodePickle } from "./decode.ts";
export { encodePickle } from "./encode.ts";
