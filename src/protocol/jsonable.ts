/**
 * Turn a decoded pickle ({@linkcode PyValue}) into plain JSON data, safely: cycles and
 * excessive depth or size are cut off instead of recursing forever, so values that came
 * from an untrusted peer (EP status reports, results) can be logged or served as JSON.
 *
 * @example
 * ```ts
 * import { toJsonable } from "./jsonable.ts";
 * import { tuple } from "./pickle/mod.ts";
 * JSON.stringify(toJsonable({ a: tuple(1, 2n), b: new Uint8Array([104, 105]) }));
 * // '{"a":[1,2],"b":{"$bytes":"aGk="}}'
 * ```
 * @module
 */
import {
  isPlainDict,
  PyByteArray,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
} from "./pickle/mod.ts";

/** Limits of {@linkcode toJsonable}. */
export interface JsonableOptions {
  /** Containers nested deeper than this become `"[too deep]"` (default 32). */
  maxDepth?: number;
  /** At most this many values are converted in total; the rest become `"[truncated]"` (default 100000). */
  maxNodes?: number;
}

/** JSON data. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function _b64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 4096)));
  }
  return btoa(s);
}

/**
 * Convert `v` to JSON data. Ints beyond 2^53 become decimal strings, non-finite floats the
 * strings `"nan"`, `"inf"`, `"-inf"`; bytes `{"$bytes": base64}`; tuples and sets arrays;
 * dicts with non-`str` keys objects keyed by the JSON text of the key; globals `"module.name"`;
 * objects `{"$class", "args", "state"?}`; a value that contains itself `"[cycle]"`.
 *
 * @example
 * ```ts
 * import { toJsonable } from "./jsonable.ts";
 * const l: unknown[] = [];
 * l.push(l);
 * toJsonable(l as never); // ["[cycle]"]
 * ```
 */
export function toJsonable(v: PyValue, opts: JsonableOptions = {}): Json {
  const maxDepth = opts.maxDepth ?? 32;
  let budget = opts.maxNodes ?? 100_000;
  const active = new Set<object>();

  const conv = (x: PyValue, depth: number): Json => {
    if (--budget < 0) return "[truncated]";
    if (x === null || x === undefined) return null;
    switch (typeof x) {
      case "boolean":
      case "string":
        return x;
      case "number":
        return Number.isFinite(x) ? x : Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
      case "bigint":
        return x >= -9007199254740991n && x <= 9007199254740991n ? Number(x) : x.toString();
      case "object":
        break;
      default:
        return String(x);
    }
    if (x instanceof PyFloat) return conv(x.value, depth);
    if (x instanceof Uint8Array) return { $bytes: _b64(x) };
    if (x instanceof PyByteArray) return { $bytearray: _b64(x.bytes) };
    if (x instanceof PyGlobal) return `${x.module}.${x.name}`;
    if (depth >= maxDepth) return "[too deep]";
    if (active.has(x)) return "[cycle]";
    active.add(x);
    try {
      if (Array.isArray(x)) return x.map((i) => conv(i, depth + 1));
      if (x instanceof PyTuple || x instanceof PySet) return x.items.map((i) => conv(i, depth + 1));
      if (x instanceof Map) {
        const out: { [k: string]: Json } = {};
        for (const [k, val] of x) {
          const key = typeof k === "string" ? k : JSON.stringify(conv(k, depth + 1));
          Object.defineProperty(out, key, {
            value: conv(val, depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      if (x instanceof PyObject) {
        const out: { [k: string]: Json } = {
          $class: `${x.cls.module}.${x.cls.name}`,
          args: x.args.map((i) => conv(i, depth + 1)),
        };
        if (x.state !== undefined) out.state = conv(x.state, depth + 1);
        return out;
      }
      if (isPlainDict(x)) {
        const out: { [k: string]: Json } = {};
        for (const k of Object.keys(x)) {
          Object.defineProperty(out, k, {
            value: conv(x[k], depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      return String(x);
    } finally {
      active.delete(x);
    }
  };
  return conv(v, 0);
}
