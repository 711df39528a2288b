/**
 * The Python values that travel in pickles, as JS values and classes (see `mod.ts` for the
 * mapping).
 * @module
 */

/** A Python `tuple`. */
export class PyTuple {
  /** The tuple's items. */
  readonly items: PyValue[];
  /**
   * Wrap `items` as a tuple.
   *
   * @example
   * ```ts
   * import { PyTuple } from "./mod.ts";
   * new PyTuple([1, "a"]).items.length; // 2
   * ```
   */
  constructor(items: PyValue[]) {
    this.items = items;
  }
}

/** A Python `float` whose value is integral (`1.0`): forces float encoding. */
export class PyFloat {
  /** The float value. */
  readonly value: number;
  /**
   * Wrap `value` as a float.
   *
   * @example
   * ```ts
   * import { encodePickle, PyFloat } from "./mod.ts";
   * encodePickle(new PyFloat(1)); // pickles 1.0, not 1
   * ```
   */
  constructor(value: number) {
    this.value = value;
  }
  /** The number, so arithmetic on a PyFloat works. */
  valueOf(): number {
    return this.value;
  }
}

/** A reference to a module-level Python name, e.g. `builtins.RuntimeError`. */
export class PyGlobal {
  /** Module path, e.g. `parsl.app.errors`. */
  readonly module: string;
  /** Qualified name inside the module. */
  readonly name: string;
  /**
   * Refer to `module.name`.
   *
   * @example
   * ```ts
   * import { PyGlobal } from "./mod.ts";
   * new PyGlobal("builtins", "RuntimeError").toString(); // "builtins.RuntimeError"
   * ```
   */
  constructor(module: string, name: string) {
    this.module = module;
    this.name = name;
  }
  /** `module.name`. */
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python object built by `NEWOBJ` (`cls.__new__(cls, *args)`) or `REDUCE` (`cls(*args)`). */
export class PyObject {
  /** The class (for `newobj`) or callable (for `reduce`). */
  cls: PyGlobal;
  /** Positional arguments. */
  args: PyValue[];
  /** Keyword arguments (`NEWOBJ_EX` only). */
  kwargs?: PyValue;
  /** State applied with `BUILD` (usually the instance `__dict__`), if any. */
  state?: PyValue;
  /** How the object is created. */
  kind: "newobj" | "reduce";
  /**
   * Describe an instance of `cls`.
   *
   * @example
   * ```ts
   * import { PyGlobal, PyObject } from "./mod.ts";
   * const e = new PyObject(new PyGlobal("builtins", "RuntimeError"), ["boom"], "reduce");
   * ```
   */
  constructor(
    cls: PyGlobal,
    args: PyValue[] = [],
    kind: "newobj" | "reduce" = "newobj",
    state?: PyValue,
  ) {
    this.cls = cls;
    this.args = args;
    this.kind = kind;
    if (state !== undefined) this.state = state;
  }
}

/** A Python `set` (or `frozenset` when `frozen`). */
export class PySet {
  /** Members, in pickle order (kept as written: CPython wrote them distinct). */
  readonly items: PyValue[];
  /** True for `frozenset`. */
  readonly frozen: boolean;
  /**
   * A set of `items`.
   *
   * @example
   * ```ts
   * import { PySet } from "./mod.ts";
   * new PySet([1, 2], true); // frozenset({1, 2})
   * ```
   */
  constructor(items: PyValue[], frozen = false) {
    this.items = items;
    this.frozen = frozen;
  }
}

/** A Python `bytearray`. */
export class PyByteArray {
  /** The bytes. */
  readonly bytes: Uint8Array;
  /**
   * Wrap `bytes` as a bytearray.
   *
   * @example
   * ```ts
   * import { PyByteArray } from "./mod.ts";
   * new PyByteArray(new Uint8Array([1, 2]));
   * ```
   */
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
}

/** A Python `dict` with keys that are not all `str`. */
export type PyDict = Map<PyValue, PyValue>;

/** Any value that can be pickled / is produced by unpickling. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | { [key: string]: PyValue }
  | PyFloat
  | PyGlobal
  | PyObject
  | PySet
  | PyByteArray;

/**
 * Shorthand for `new PyTuple(items)`.
 *
 * @example
 * ```ts
 * import { tuple } from "./mod.ts";
 * tuple(1, 2).items; // [1, 2]
 * ```
 */
export function tuple(...items: PyValue[]): PyTuple {
  return new PyTuple(items);
}

/**
 * True for a plain JS object that stands for a `str`-keyed dict.
 *
 * @example
 * ```ts
 * import { isPlainDict } from "./mod.ts";
 * isPlainDict({ a: 1 }); // true
 * isPlainDict(new Map()); // false
 * ```
 */
export function isPlainDict(v: unknown): v is { [key: string]: PyValue } {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
