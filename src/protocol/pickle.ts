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
 * import { decodePickle, encodePickle, PyTuple } from "./pickle.ts";
 * const bytes = encodePickle({ task_id: "t1", args: new PyTuple([1, 2.5, "x"]) });
 * const back = decodePickle(bytes) as Record<string, unknown>;
 * back.task_id; // "t1"
 * ```
 * @module
 */
import { ProtocolError } from "./errors.ts";

export { ProtocolError } from "./errors.ts";

/** A Python `tuple`. */
export class PyTuple {
  /** The tuple's items. */
  readonly items: PyValue[];
  /**
   * Wrap `items` as a tuple.
   *
   * @example
   * ```ts
   * import { PyTuple } from "./pickle.ts";
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
   * import { encodePickle, PyFloat } from "./pickle.ts";
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
   * import { PyGlobal } from "./pickle.ts";
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
   * import { PyGlobal, PyObject } from "./pickle.ts";
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
   * import { PySet } from "./pickle.ts";
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
   * import { PyByteArray } from "./pickle.ts";
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
 * import { tuple } from "./pickle.ts";
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
 * import { isPlainDict } from "./pickle.ts";
 * isPlainDict({ a: 1 }); // true
 * isPlainDict(new Map()); // false
 * ```
 */
export function isPlainDict(v: unknown): v is { [key: string]: PyValue } {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------
// Opcodes

const _MARK = 0x28; // (
const _STOP = 0x2e; // .
const _POP = 0x30; // 0
const _POP_MARK = 0x31; // 1
const _DUP = 0x32; // 2
const _FLOAT = 0x46; // F
const _INT = 0x49; // I
const _BININT = 0x4a; // J
const _BININT1 = 0x4b; // K
const _LONG = 0x4c; // L
const _BININT2 = 0x4d; // M
const _NONE = 0x4e; // N
const _PERSID = 0x50; // P
const _BINPERSID = 0x51; // Q
const _REDUCE = 0x52; // R
const _STRING = 0x53; // S
const _BINSTRING = 0x54; // T
const _SHORT_BINSTRING = 0x55; // U
const _UNICODE = 0x56; // V
const _BINUNICODE = 0x58; // X
const _APPEND = 0x61; // a
const _BUILD = 0x62; // b
const _GLOBAL = 0x63; // c
const _DICT = 0x64; // d
const _EMPTY_DICT = 0x7d; // }
const _APPENDS = 0x65; // e
const _GET = 0x67; // g
const _BINGET = 0x68; // h
const _INST = 0x69; // i
const _LONG_BINGET = 0x6a; // j
const _LIST = 0x6c; // l
const _EMPTY_LIST = 0x5d; // ]
const _OBJ = 0x6f; // o
const _PUT = 0x70; // p
const _BINPUT = 0x71; // q
const _LONG_BINPUT = 0x72; // r
const _SETITEM = 0x73; // s
const _TUPLE = 0x74; // t
const _EMPTY_TUPLE = 0x29; // )
const _SETITEMS = 0x75; // u
const _BINFLOAT = 0x47; // G
const _PROTO = 0x80;
const _NEWOBJ = 0x81;
const _EXT1 = 0x82;
const _EXT2 = 0x83;
const _EXT4 = 0x84;
const _TUPLE1 = 0x85;
const _TUPLE2 = 0x86;
const _TUPLE3 = 0x87;
const _NEWTRUE = 0x88;
const _NEWFALSE = 0x89;
const _LONG1 = 0x8a;
const _LONG4 = 0x8b;
const _BINBYTES = 0x42; // B
const _SHORT_BINBYTES = 0x43; // C
const _SHORT_BINUNICODE = 0x8c;
const _BINUNICODE8 = 0x8d;
const _BINBYTES8 = 0x8e;
const _EMPTY_SET = 0x8f;
const _ADDITEMS = 0x90;
const _FROZENSET = 0x91;
const _NEWOBJ_EX = 0x92;
const _STACK_GLOBAL = 0x93;
const _MEMOIZE = 0x94;
const _FRAME = 0x95;
const _BYTEARRAY8 = 0x96;
const _NEXT_BUFFER = 0x97;
const _READONLY_BUFFER = 0x98;

/** Python refuses int <-> decimal str conversions longer than this (3.11 default). */
const _MAX_DECIMAL_DIGITS = 4300;

// ---------------------------------------------------------------------------------------
// UTF-8 with surrogatepass (what pickle uses for str)

const _utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const _utf8Encoder = new TextEncoder();

function _decodeUtf8(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n < 48) {
    // Short ASCII strings are the common case (dict keys, task ids): skip TextDecoder.
    let s = "";
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c >= 0x80) return _decodeUtf8Slow(b, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return _decodeUtf8Slow(b, start, end);
}

function _decodeUtf8Slow(b: Uint8Array, start: number, end: number): string {
  try {
    return _utf8.decode(b.subarray(start, end));
  } catch {
    return _decodeUtf8Surrogatepass(b, start, end);
  }
}

/** Strict UTF-8 that also accepts encoded surrogates (Python's `surrogatepass`). */
function _decodeUtf8Surrogatepass(b: Uint8Array, start: number, end: number): string {
  const units: number[] = [];
  let out = "";
  let i = start;
  while (i < end) {
    const c = b[i];
    let cp: number;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if (c >= 0xc2 && c < 0xe0 && i + 1 < end && (b[i + 1] & 0xc0) === 0x80) {
      cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
      i += 2;
    } else if (
      c >= 0xe0 && c < 0xf0 && i + 2 < end && (b[i + 1] & 0xc0) === 0x80 &&
      (b[i + 2] & 0xc0) === 0x80
    ) {
      cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      if (cp < 0x800) throw new ProtocolError("pickle: invalid UTF-8 in str (overlong)");
      i += 3;
    } else if (
      c >= 0xf0 && c < 0xf5 && i + 3 < end && (b[i + 1] & 0xc0) === 0x80 &&
      (b[i + 2] & 0xc0) === 0x80 && (b[i + 3] & 0xc0) === 0x80
    ) {
      cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) |
        (b[i + 3] & 0x3f);
      if (cp < 0x10000 || cp > 0x10ffff) {
        throw new ProtocolError("pickle: invalid UTF-8 in str (code point out of range)");
      }
      i += 4;
    } else {
      throw new ProtocolError(`pickle: invalid UTF-8 in str at byte ${i - start}`);
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      units.push(cp);
    }
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

function _latin1(b: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode(...b.subarray(i, Math.min(end, i + 4096)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoder

/** Options of {@linkcode decodePickle}. */
export interface DecodeOptions {
  /** Return integral floats (`1.0`) as {@linkcode PyFloat} instead of `number` (default false). */
  preserveFloats?: boolean;
  /** Refuse inputs larger than this many bytes (default: no limit besides the input itself). */
  maxBytes?: number;
}

/** Mutable dict under construction: a plain object until a non-`str` key shows up. */
type _AnyDict = { [key: string]: PyValue } | PyDict;

const _MAP_PY2 = new Map<string, string>([
  ["__builtin__", "builtins"],
  ["copy_reg", "copyreg"],
  ["exceptions", "builtins"],
]);

class _Unpickler {
  readonly b: Uint8Array;
  readonly view: DataView;
  pos = 0;
  stack: unknown[] = [];
  marks: number[] = [];
  memo = new Map<number, unknown>();
  readonly preserveFloats: boolean;
  /** Dicts that had to become Maps after being shared: old object -> new Map. */
  replaced: Map<object, PyDict> | null = null;
  proto = 0;

  constructor(b: Uint8Array, opts: DecodeOptions) {
    this.b = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.preserveFloats = opts.preserveFloats ?? false;
  }

  fail(msg: string): never {
    throw new ProtocolError(`pickle: ${msg} (at offset ${this.pos})`);
  }

  need(n: number): number {
    const p = this.pos;
    if (n < 0 || n > this.b.length - p) {
      this.fail(`truncated input: need ${n} bytes, ${this.b.length - p} left`);
    }
    this.pos = p + n;
    return p;
  }

  u8(): number {
    if (this.pos >= this.b.length) this.fail("truncated input");
    return this.b[this.pos++];
  }

  u32(): number {
    const p = this.need(4);
    return this.view.getUint32(p, true);
  }

  u64(): number {
    const p = this.need(8);
    const lo = this.view.getUint32(p, true);
    const hi = this.view.getUint32(p + 4, true);
    if (hi > 0x1fffff) this.fail("64-bit length too large");
    return hi * 0x100000000 + lo;
  }

  /** Bytes up to (not including) the next `\n`; advances past it. */
  line(): [number, number] {
    const start = this.pos;
    const nl = this.b.indexOf(0x0a, start);
    if (nl < 0) this.fail("truncated input: missing newline");
    this.pos = nl + 1;
    return [start, nl];
  }

  lineText(): string {
    const [s, e] = this.line();
    return _latin1(this.b, s, e);
  }

  floor(): number {
    const m = this.marks.length;
    return m === 0 ? 0 : this.marks[m - 1];
  }

  pop(): unknown {
    if (this.stack.length <= this.floor()) this.fail("stack underflow");
    return this.stack.pop();
  }

  top(): unknown {
    if (this.stack.length <= this.floor()) this.fail("stack underflow");
    return this.stack[this.stack.length - 1];
  }

  popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail("MARK expected but not found");
    return this.stack.splice(m);
  }

  memoGet(i: number): unknown {
    const v = this.memo.get(i);
    if (v === undefined && !this.memo.has(i)) this.fail(`memo key ${i} not found`);
    return this.replaced !== null && typeof v === "object" && v !== null
      ? this.replaced.get(v) ?? v
      : v;
  }

  memoPut(i: number) {
    this.memo.set(i, this.top());
  }

  float(v: number): number | PyFloat {
    return this.preserveFloats && Number.isInteger(v) ? new PyFloat(v) : v;
  }

  global(module: string, name: string): PyGlobal {
    if (this.proto < 3) module = _MAP_PY2.get(module) ?? module;
    return new PyGlobal(module, name);
  }

  /** Set `d[k] = v` on a dict under construction; returns the (maybe replaced) dict. */
  setItem(d: _AnyDict, k: unknown, v: unknown): _AnyDict {
    if (d instanceof Map) {
      _checkHashable(k, this);
      d.set(k as PyValue, v as PyValue);
      return d;
    }
    if (typeof k === "string") {
      if (k === "__proto__") {
        Object.defineProperty(d, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        d[k] = v as PyValue;
      }
      return d;
    }
    _checkHashable(k, this);
    const m: PyDict = new Map(Object.entries(d));
    m.set(k as PyValue, v as PyValue);
    (this.replaced ??= new Map()).set(d, m);
    return m;
  }

  /**
   * After a dict turned into a Map, put the Map on the stack. Other references to the old
   * object (memo, containers) resolve through `replaced`: memo reads map it on the fly and
   * {@linkcode _fixReplaced} rewrites containers once at the end (no rescans, so no
   * quadratic blow-up on hostile input).
   */
  swapDict(old: _AnyDict, now: _AnyDict, stackIndex: number) {
    if (old !== now) this.stack[stackIndex] = now;
  }

  dictTarget(): [number, _AnyDict] {
    const idx = this.stack.length - 1;
    if (idx < this.floor()) this.fail("stack underflow");
    let d = this.stack[idx];
    if (this.replaced !== null && typeof d === "object" && d !== null) {
      d = this.replaced.get(d) ?? d;
      this.stack[idx] = d;
    }
    if (!(d instanceof Map) && !isPlainDict(d)) this.fail("SETITEM(S) target is not a dict");
    return [idx, d as _AnyDict];
  }

  run(): unknown {
    const b = this.b;
    for (;;) {
      if (this.pos >= b.length) this.fail("truncated input: no STOP opcode");
      const op = b[this.pos++];
      switch (op) {
        case _PROTO: {
          const p = this.u8();
          if (p > 5) this.fail(`unsupported pickle protocol ${p}`);
          this.proto = p;
          break;
        }
        case _FRAME: {
          const n = this.u64();
          if (n > b.length - this.pos) this.fail("frame length exceeds input");
          break;
        }
        case _STOP: {
          return this.pop();
        }
        case _MARK:
          this.marks.push(this.stack.length);
          break;
        case _POP:
          if (this.stack.length > this.floor()) this.stack.pop();
          else this.popMark();
          break;
        case _POP_MARK:
          this.popMark();
          break;
        case _DUP:
          this.stack.push(this.top());
          break;
        case _NONE:
          this.stack.push(null);
          break;
        case _NEWTRUE:
          this.stack.push(true);
          break;
        case _NEWFALSE:
          this.stack.push(false);
          break;
        case _BININT: {
          const p = this.need(4);
          this.stack.push(this.view.getInt32(p, true));
          break;
        }
        case _BININT1:
          this.stack.push(this.u8());
          break;
        case _BININT2: {
          const p = this.need(2);
          this.stack.push(this.view.getUint16(p, true));
          break;
        }
        case _INT: {
          const t = this.lineText();
          if (t === "01") this.stack.push(true);
          else if (t === "00") this.stack.push(false);
          else this.stack.push(this.decimalInt(t));
          break;
        }
        case _LONG: {
          let t = this.lineText();
          if (t.endsWith("L")) t = t.slice(0, -1);
          this.stack.push(this.decimalInt(t));
          break;
        }
        case _LONG1: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(_decodeLong(b, p, n));
          break;
        }
        case _LONG4: {
          const n = this.view.getInt32(this.need(4), true);
          if (n < 0) this.fail("LONG4 with negative length");
          const p = this.need(n);
          this.stack.push(_decodeLong(b, p, n));
          break;
        }
        case _FLOAT: {
          const t = this.lineText();
          this.stack.push(this.float(_parseFloat(t, this)));
          break;
        }
        case _BINFLOAT: {
          const p = this.need(8);
          this.stack.push(this.float(this.view.getFloat64(p, false)));
          break;
        }
        case _SHORT_BINUNICODE: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(_decodeUtf8(b, p, p + n));
          break;
        }
        case _BINUNICODE: {
          const n = this.u32();
          const p = this.need(n);
          this.stack.push(_decodeUtf8(b, p, p + n));
          break;
        }
        case _BINUNICODE8: {
          const n = this.u64();
          const p = this.need(n);
          this.stack.push(_decodeUtf8(b, p, p + n));
          break;
        }
        case _UNICODE: {
          const [s, e] = this.line();
          this.stack.push(_rawUnicodeEscape(b, s, e, this));
          break;
        }
        case _STRING: {
          const [s, e] = this.line();
          this.stack.push(_pyStringLiteral(b, s, e, this));
          break;
        }
        case _BINSTRING: {
          const n = this.view.getInt32(this.need(4), true);
          if (n < 0) this.fail("BINSTRING with negative length");
          const p = this.need(n);
          this.stack.push(_latin1(b, p, p + n));
          break;
        }
        case _SHORT_BINSTRING: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(_latin1(b, p, p + n));
          break;
        }
        case _SHORT_BINBYTES: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(b.slice(p, p + n));
          break;
        }
        case _BINBYTES: {
          const n = this.u32();
          const p = this.need(n);
          this.stack.push(b.slice(p, p + n));
          break;
        }
        case _BINBYTES8: {
          const n = this.u64();
          const p = this.need(n);
          this.stack.push(b.slice(p, p + n));
          break;
        }
        case _BYTEARRAY8: {
          const n = this.u64();
          const p = this.need(n);
          this.stack.push(new PyByteArray(b.slice(p, p + n)));
          break;
        }
        case _NEXT_BUFFER:
          this.fail("out-of-band buffers (NEXT_BUFFER) are not supported");
          break;
        case _READONLY_BUFFER:
          this.top();
          break;
        case _EMPTY_TUPLE:
          this.stack.push(new PyTuple([]));
          break;
        case _TUPLE1: {
          const a = this.pop();
          this.stack.push(new PyTuple([a as PyValue]));
          break;
        }
        case _TUPLE2: {
          const y = this.pop();
          const x = this.pop();
          this.stack.push(new PyTuple([x, y] as PyValue[]));
          break;
        }
        case _TUPLE3: {
          const z = this.pop();
          const y = this.pop();
          const x = this.pop();
          this.stack.push(new PyTuple([x, y, z] as PyValue[]));
          break;
        }
        case _TUPLE:
          this.stack.push(new PyTuple(this.popMark() as PyValue[]));
          break;
        case _EMPTY_LIST:
          this.stack.push([]);
          break;
        case _LIST:
          this.stack.push(this.popMark());
          break;
        case _APPEND: {
          const v = this.pop();
          const l = this.top();
          if (!Array.isArray(l)) this.fail("APPEND target is not a list");
          l.push(v);
          break;
        }
        case _APPENDS: {
          const items = this.popMark();
          const l = this.top();
          if (!Array.isArray(l)) this.fail("APPENDS target is not a list");
          for (let i = 0; i < items.length; i++) l.push(items[i]);
          break;
        }
        case _EMPTY_DICT:
          this.stack.push({});
          break;
        case _DICT: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail("DICT with an odd number of items");
          let d: _AnyDict = {};
          for (let i = 0; i < items.length; i += 2) d = this.setItem(d, items[i], items[i + 1]);
          this.stack.push(d);
          break;
        }
        case _SETITEM: {
          const v = this.pop();
          const k = this.pop();
          const [idx, d] = this.dictTarget();
          this.swapDict(d, this.setItem(d, k, v), idx);
          break;
        }
        case _SETITEMS: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail("SETITEMS with an odd number of items");
          const [idx, d0] = this.dictTarget();
          let d = d0;
          for (let i = 0; i < items.length; i += 2) d = this.setItem(d, items[i], items[i + 1]);
          this.swapDict(d0, d, idx);
          break;
        }
        case _EMPTY_SET:
          this.stack.push(new PySet([]));
          break;
        case _ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof PySet) || s.frozen) this.fail("ADDITEMS target is not a set");
          for (const it of items) {
            _checkHashable(it, this);
            s.items.push(it as PyValue);
          }
          break;
        }
        case _FROZENSET: {
          const items = this.popMark();
          const out: PyValue[] = [];
          for (const it of items) {
            _checkHashable(it, this);
            out.push(it as PyValue);
          }
          this.stack.push(new PySet(out, true));
          break;
        }
        case _GET:
          this.stack.push(this.memoGet(this.lineInt()));
          break;
        case _BINGET:
          this.stack.push(this.memoGet(this.u8()));
          break;
        case _LONG_BINGET:
          this.stack.push(this.memoGet(this.u32()));
          break;
        case _PUT:
          this.memoPut(this.lineInt());
          break;
        case _BINPUT:
          this.memoPut(this.u8());
          break;
        case _LONG_BINPUT:
          this.memoPut(this.u32());
          break;
        case _MEMOIZE:
          this.memoPut(this.memo.size);
          break;
        case _GLOBAL: {
          const [ms, me] = this.line();
          const [ns, ne] = this.line();
          this.stack.push(this.global(_decodeUtf8(b, ms, me), _decodeUtf8(b, ns, ne)));
          break;
        }
        case _STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof name !== "string" || typeof module !== "string") {
            this.fail("STACK_GLOBAL requires str module and name");
          }
          this.stack.push(this.global(module, name));
          break;
        }
        case _REDUCE: {
          const args = this.pop();
          const fn = this.pop();
          if (!(args instanceof PyTuple)) this.fail("REDUCE arguments are not a tuple");
          this.stack.push(this.reduce(fn, args.items));
          break;
        }
        case _NEWOBJ: {
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PyGlobal)) this.fail("NEWOBJ class is not a global");
          if (!(args instanceof PyTuple)) this.fail("NEWOBJ arguments are not a tuple");
          this.stack.push(new PyObject(cls, args.items, "newobj"));
          break;
        }
        case _NEWOBJ_EX: {
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PyGlobal)) this.fail("NEWOBJ_EX class is not a global");
          if (!(args instanceof PyTuple)) this.fail("NEWOBJ_EX arguments are not a tuple");
          if (!isPlainDict(kwargs) && !(kwargs instanceof Map)) {
            this.fail("NEWOBJ_EX keyword arguments are not a dict");
          }
          const o = new PyObject(cls, args.items, "newobj");
          o.kwargs = kwargs as PyValue;
          this.stack.push(o);
          break;
        }
        case _INST: {
          const [ms, me] = this.line();
          const [ns, ne] = this.line();
          const cls = this.global(_latin1(b, ms, me), _latin1(b, ns, ne));
          this.stack.push(new PyObject(cls, this.popMark() as PyValue[], "reduce"));
          break;
        }
        case _OBJ: {
          const items = this.popMark();
          const cls = items.shift();
          if (!(cls instanceof PyGlobal)) this.fail("OBJ class is not a global");
          this.stack.push(new PyObject(cls, items as PyValue[], "reduce"));
          break;
        }
        case _BUILD: {
          const state = this.pop();
          const o = this.top();
          if (!(o instanceof PyObject)) this.fail("BUILD target is not an object");
          o.state = state as PyValue;
          break;
        }
        case _PERSID:
        case _BINPERSID:
          this.fail("persistent ids are not supported");
          break;
        case _EXT1:
        case _EXT2:
        case _EXT4:
          this.fail("extension registry codes are not supported");
          break;
        default:
          this.pos--;
          this.fail(`invalid opcode 0x${op.toString(16).padStart(2, "0")}`);
      }
    }
  }

  lineInt(): number {
    const t = this.lineText();
    if (!/^\d{1,15}$/.test(t)) this.fail(`invalid memo key ${JSON.stringify(t.slice(0, 20))}`);
    return Number(t);
  }

  decimalInt(t: string): number | bigint {
    const s = t.trim();
    if (!/^[+-]?\d+$/.test(s)) this.fail(`invalid int literal ${JSON.stringify(s.slice(0, 20))}`);
    if (s.length > _MAX_DECIMAL_DIGITS) this.fail("int literal too long");
    if (s.length < 16) return Number(s);
    const n = BigInt(s);
    return _normInt(n);
  }

  /** REDUCE: known builtins become native values, anything else a PyObject. */
  reduce(fn: unknown, args: unknown[]): unknown {
    if (!(fn instanceof PyGlobal)) this.fail("REDUCE callable is not a global");
    if (fn.module === "_codecs" && fn.name === "encode" && args.length === 2) {
      // protocol 0-2 bytes: _codecs.encode(latin1 str, "latin1")
      const [s, enc] = args;
      if (typeof s === "string" && (enc === "latin1" || enc === "latin-1")) {
        return _latin1Bytes(s, this);
      }
    }
    if (fn.module === "builtins") {
      if ((fn.name === "set" || fn.name === "frozenset") && args.length <= 1) {
        const src = args.length ? args[0] : [];
        if (Array.isArray(src)) {
          const out: PyValue[] = [];
          for (const it of src) {
            _checkHashable(it, this);
            out.push(it as PyValue);
          }
          return new PySet(out, fn.name === "frozenset");
        }
      }
      if (fn.name === "bytearray") {
        if (args.length === 0) return new PyByteArray(new Uint8Array(0));
        if (args.length === 1 && args[0] instanceof Uint8Array) return new PyByteArray(args[0]);
        if (
          args.length === 2 && typeof args[0] === "string" &&
          (args[1] === "latin-1" || args[1] === "latin1")
        ) {
          return new PyByteArray(_latin1Bytes(args[0], this));
        }
      }
      if (fn.name === "bytes" && args.length === 0) return new Uint8Array(0);
    }
    if (
      fn.module === "copyreg" && fn.name === "_reconstructor" && args.length === 3 &&
      args[0] instanceof PyGlobal && args[1] instanceof PyGlobal &&
      args[1].module === "builtins" && args[1].name === "object" && args[2] === null
    ) {
      return new PyObject(args[0], [], "newobj");
    }
    return new PyObject(fn, args as PyValue[], "reduce");
  }
}

function _latin1Bytes(s: string, u: _Unpickler): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) u.fail("latin-1 bytes literal contains a character above U+00FF");
    out[i] = c;
  }
  return out;
}

function _checkHashable(k: unknown, u: _Unpickler) {
  if (
    Array.isArray(k) || k instanceof Map || isPlainDict(k) || k instanceof PyByteArray ||
    (k instanceof PySet && !k.frozen)
  ) {
    u.fail("unhashable type used as a dict key or set member");
  }
}

function _normInt(n: bigint): number | bigint {
  return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
}

/** Little-endian two's complement, as LONG1/LONG4 carry it. */
function _decodeLong(b: Uint8Array, p: number, n: number): number | bigint {
  if (n === 0) return 0;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[p + i];
    if (b[p + n - 1] & 0x80) v -= 2 ** (8 * n);
    return v;
  }
  let hex = "";
  for (let i = n - 1; i >= 0; i--) hex += (b[p + i] < 16 ? "0" : "") + b[p + i].toString(16);
  let v = BigInt("0x" + hex);
  if (b[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return _normInt(v);
}

const _FLOAT_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function _parseFloat(t: string, u: _Unpickler): number {
  const s = t.trim().toLowerCase();
  if (_FLOAT_RE.test(s)) return Number(s);
  const sign = s.startsWith("-") ? -1 : 1;
  const body = s.replace(/^[+-]/, "");
  if (body === "inf" || body === "infinity") return sign * Infinity;
  if (body === "nan") return NaN;
  u.fail(`invalid float literal ${JSON.stringify(t.slice(0, 20))}`);
}

function _hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Protocol 0 `UNICODE`: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, else latin-1). */
function _rawUnicodeEscape(b: Uint8Array, s: number, e: number, u: _Unpickler): string {
  const units: number[] = [];
  let out = "";
  let i = s;
  while (i < e) {
    const c = b[i];
    if (c === 0x5c) {
      let j = i;
      while (j < e && b[j] === 0x5c) j++;
      const run = j - i;
      const esc = j < e ? b[j] : 0;
      if (run % 2 === 1 && (esc === 0x75 || esc === 0x55)) {
        for (let k = 0; k < run - 1; k++) units.push(0x5c);
        const digits = esc === 0x75 ? 4 : 8;
        if (j + 1 + digits > e) u.fail("truncated \\u escape in UNICODE");
        let cp = 0;
        for (let k = 0; k < digits; k++) {
          const h = _hexVal(b[j + 1 + k]);
          if (h < 0) u.fail("invalid \\u escape in UNICODE");
          cp = cp * 16 + h;
        }
        if (cp > 0x10ffff) u.fail("\\U escape out of range in UNICODE");
        if (cp >= 0x10000) {
          cp -= 0x10000;
          units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else units.push(cp);
        i = j + 1 + digits;
      } else {
        for (let k = 0; k < run; k++) units.push(0x5c);
        i = j;
      }
    } else {
      units.push(c);
      i++;
    }
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

/** Protocol 0 `STRING`: a quoted Python 2 str literal, decoded as latin-1. */
function _pyStringLiteral(b: Uint8Array, s: number, e: number, u: _Unpickler): string {
  if (e - s < 2 || b[s] !== b[e - 1] || (b[s] !== 0x27 && b[s] !== 0x22)) {
    u.fail("STRING opcode argument must be quoted");
  }
  const units: number[] = [];
  let out = "";
  let i = s + 1;
  const end = e - 1;
  while (i < end) {
    let c = b[i++];
    if (c === 0x5c) {
      if (i >= end) u.fail("trailing backslash in STRING");
      const d = b[i++];
      switch (d) {
        case 0x6e:
          c = 0x0a;
          break;
        case 0x74:
          c = 0x09;
          break;
        case 0x72:
          c = 0x0d;
          break;
        case 0x61:
          c = 0x07;
          break;
        case 0x62:
          c = 0x08;
          break;
        case 0x66:
          c = 0x0c;
          break;
        case 0x76:
          c = 0x0b;
          break;
        case 0x5c:
        case 0x27:
        case 0x22:
          c = d;
          break;
        case 0x0a:
          continue;
        case 0x78: {
          const h1 = i < end ? _hexVal(b[i]) : -1;
          const h2 = i + 1 < end ? _hexVal(b[i + 1]) : -1;
          if (h1 < 0 || h2 < 0) u.fail("invalid \\x escape in STRING");
          c = h1 * 16 + h2;
          i += 2;
          break;
        }
        default:
          if (d >= 0x30 && d <= 0x37) {
            let v = d - 0x30;
            for (let k = 0; k < 2 && i < end && b[i] >= 0x30 && b[i] <= 0x37; k++) {
              v = v * 8 + (b[i++] - 0x30);
            }
            c = v & 0xff;
          } else {
            units.push(0x5c);
            c = d;
          }
      }
    }
    units.push(c);
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

/** Replace dicts that were turned into Maps after other containers referenced them. */
function _fixReplaced(root: unknown, replaced: Map<object, PyDict>): unknown {
  const sub = (v: unknown): unknown =>
    (v !== null && typeof v === "object" && replaced.get(v as object)) || v;
  const seen = new Set<object>();
  const todo: unknown[] = [root];
  while (todo.length) {
    const v = todo.pop();
    if (v === null || typeof v !== "object" || seen.has(v as object)) continue;
    seen.add(v as object);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) todo.push(v[i] = sub(v[i]));
    } else if (v instanceof PyTuple || v instanceof PySet) {
      const items = v.items;
      for (let i = 0; i < items.length; i++) todo.push(items[i] = sub(items[i]) as PyValue);
    } else if (v instanceof Map) {
      for (const [k, x] of v) {
        const nx = sub(x);
        if (nx !== x) v.set(k, nx as PyValue);
        todo.push(k, nx);
      }
    } else if (v instanceof PyObject) {
      for (let i = 0; i < v.args.length; i++) todo.push(v.args[i] = sub(v.args[i]) as PyValue);
      if (v.state !== undefined) todo.push(v.state = sub(v.state) as PyValue);
      if (v.kwargs !== undefined) todo.push(v.kwargs = sub(v.kwargs) as PyValue);
    } else if (isPlainDict(v)) {
      for (const k of Object.keys(v)) todo.push(v[k] = sub(v[k]) as PyValue);
    }
  }
  return sub(root);
}

/**
 * Unpickle `bytes` (protocols 0–5). Throws {@linkcode ProtocolError} on malformed or
 * unsupported input (persistent ids, extension codes, out-of-band buffers).
 * Trailing bytes after `STOP` are ignored, like `pickle.loads`.
 *
 * @example
 * ```ts
 * import { decodePickle } from "./pickle.ts";
 * // pickle.dumps({"a": 1}, protocol=2)
 * const b = new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1, 0x73, 0x2e]);
 * decodePickle(b); // { a: 1 }
 * ```
 */
export function decodePickle(bytes: Uint8Array, options: DecodeOptions = {}): PyValue {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError("pickle: input is not bytes");
  if (options.maxBytes !== undefined && bytes.length > options.maxBytes) {
    throw new ProtocolError(
      `pickle: input of ${bytes.length} bytes exceeds the limit of ${options.maxBytes}`,
    );
  }
  const u = new _Unpickler(bytes, options);
  let out: unknown;
  try {
    out = u.run();
    if (u.replaced) out = _fixReplaced(out, u.replaced);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`pickle: ${(e as Error)?.message ?? e} (at offset ${u.pos})`, {
      cause: e,
    });
  }
  return out as PyValue;
}

// ---------------------------------------------------------------------------------------
// Encoder

class _Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  ensure(n: number) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  byte(b: number) {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  byte2(a: number, b: number) {
    this.ensure(2);
    this.buf[this.pos++] = a;
    this.buf[this.pos++] = b;
  }
  u32(n: number) {
    this.ensure(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }
  bytes(b: Uint8Array) {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

class _Pickler {
  w = new _Writer();
  memo = new Map<object, number>();
  globals = new Map<string, number>();
  active = new Set<object>();
  depth = 0;

  memoize(o: object) {
    this.w.byte(_MEMOIZE);
    this.memo.set(o, this.memo.size + this.globals.size);
  }

  get(idx: number) {
    if (idx < 256) this.w.byte2(_BINGET, idx);
    else {
      this.w.byte(_LONG_BINGET);
      this.w.u32(idx);
    }
  }

  str(s: string) {
    const w = this.w;
    if (s.length < 85 && !_hasSurrogates(s)) {
      // at most 3 bytes per UTF-16 unit -> fits SHORT_BINUNICODE
      w.ensure(2 + s.length * 3);
      w.buf[w.pos] = _SHORT_BINUNICODE;
      const lenAt = w.pos + 1;
      w.pos += 2;
      let ascii = true;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        w.buf[w.pos + i] = c;
      }
      if (ascii) {
        w.buf[lenAt] = s.length;
        w.pos += s.length;
      } else {
        const r = _utf8Encoder.encodeInto(s, w.buf.subarray(w.pos));
        w.buf[lenAt] = r.written;
        w.pos += r.written;
      }
      return;
    }
    const enc = _hasSurrogates(s) ? _encodeSurrogatepass(s) : _utf8Encoder.encode(s);
    if (enc.length < 256) w.byte2(_SHORT_BINUNICODE, enc.length);
    else if (enc.length <= 0xffffffff) {
      w.byte(_BINUNICODE);
      w.u32(enc.length);
    } else throw new ProtocolError("pickle: str too large");
    w.bytes(enc);
  }

  int(n: number | bigint): void {
    const w = this.w;
    if (typeof n === "number") {
      if (n >= 0 && n < 256) return w.byte2(_BININT1, n);
      if (n >= 0 && n < 65536) {
        w.byte2(_BININT2, n & 0xff);
        return w.byte(n >> 8);
      }
      if (n >= -0x80000000 && n <= 0x7fffffff) {
        w.byte(_BININT);
        w.ensure(4);
        w.view.setInt32(w.pos, n, true);
        w.pos += 4;
        return;
      }
      n = BigInt(n);
    }
    if (n >= -0x80000000n && n <= 0x7fffffffn) return this.int(Number(n));
    const bytes = _encodeLong(n);
    if (bytes.length < 256) w.byte2(_LONG1, bytes.length);
    else {
      w.byte(_LONG4);
      w.u32(bytes.length);
    }
    w.bytes(bytes);
  }

  float(x: number) {
    const w = this.w;
    w.byte(_BINFLOAT);
    w.ensure(8);
    w.view.setFloat64(w.pos, x, false);
    w.pos += 8;
  }

  global(g: PyGlobal) {
    const key = `${g.module}\n${g.name}`;
    const idx = this.globals.get(key);
    if (idx !== undefined) return this.get(idx);
    if (typeof g.module !== "string" || typeof g.name !== "string") {
      throw new ProtocolError("pickle: PyGlobal module and name must be strings");
    }
    this.str(g.module);
    this.str(g.name);
    this.w.byte(_STACK_GLOBAL);
    this.w.byte(_MEMOIZE);
    this.globals.set(key, this.memo.size + this.globals.size);
  }

  items(items: PyValue[]) {
    for (let i = 0; i < items.length; i++) this.save(items[i]);
  }

  save(v: PyValue) {
    const w = this.w;
    switch (typeof v) {
      case "string":
        return this.str(v);
      case "number":
        return Number.isInteger(v) ? this.int(v) : this.float(v);
      case "boolean":
        return w.byte(v ? _NEWTRUE : _NEWFALSE);
      case "bigint":
        return this.int(v);
      case "object":
        break;
      default:
        throw new ProtocolError(`pickle: cannot pickle a value of JS type ${typeof v}`);
    }
    if (v === null) return w.byte(_NONE);
    const seen = this.memo.get(v);
    if (seen !== undefined) return this.get(seen);
    if (this.active.has(v)) {
      throw new ProtocolError("pickle: cannot pickle a tuple or object that contains itself");
    }
    if (++this.depth > 10000) throw new ProtocolError("pickle: value nested too deeply");
    try {
      this.saveObject(v);
    } finally {
      this.depth--;
    }
  }

  saveObject(v: object) {
    const w = this.w;
    if (v instanceof Uint8Array) {
      const n = v.length;
      if (n < 256) w.byte2(_SHORT_BINBYTES, n);
      else if (n <= 0xffffffff) {
        w.byte(_BINBYTES);
        w.u32(n);
      } else throw new ProtocolError("pickle: bytes too large");
      w.bytes(v);
      return;
    }
    if (Array.isArray(v)) {
      w.byte(_EMPTY_LIST);
      this.memoize(v);
      if (v.length === 1) {
        this.save(v[0]);
        w.byte(_APPEND);
      } else if (v.length > 1) {
        w.byte(_MARK);
        this.items(v);
        w.byte(_APPENDS);
      }
      return;
    }
    if (v instanceof PyTuple) {
      const it = v.items;
      if (it.length === 0) return w.byte(_EMPTY_TUPLE);
      this.active.add(v);
      if (it.length <= 3) {
        this.items(it);
        w.byte(_TUPLE1 + it.length - 1);
      } else {
        w.byte(_MARK);
        this.items(it);
        w.byte(_TUPLE);
      }
      this.active.delete(v);
      this.memoize(v);
      return;
    }
    if (v instanceof PyFloat) return this.float(v.value);
    if (v instanceof Map) {
      w.byte(_EMPTY_DICT);
      this.memoize(v);
      if (v.size) {
        w.byte(_MARK);
        for (const [k, x] of v) {
          _encodableKey(k);
          this.save(k);
          this.save(x);
        }
        w.byte(_SETITEMS);
      }
      return;
    }
    if (v instanceof PyGlobal) return this.global(v);
    if (v instanceof PyObject) {
      if (!(v.cls instanceof PyGlobal)) {
        throw new ProtocolError("pickle: PyObject.cls must be a PyGlobal");
      }
      this.active.add(v);
      this.global(v.cls);
      this.save(new PyTuple(v.args ?? []));
      if (v.kind === "reduce") {
        if (v.kwargs !== undefined) {
          throw new ProtocolError("pickle: kwargs need a PyObject of kind newobj");
        }
        w.byte(_REDUCE);
      } else if (v.kwargs !== undefined) {
        this.save(v.kwargs);
        w.byte(_NEWOBJ_EX);
      } else w.byte(_NEWOBJ);
      this.active.delete(v);
      this.memoize(v);
      if (v.state !== undefined) {
        this.save(v.state);
        w.byte(_BUILD);
      }
      return;
    }
    if (v instanceof PySet) {
      if (v.frozen) {
        this.active.add(v);
        w.byte(_MARK);
        for (const it of v.items) _encodableKey(it);
        this.items(v.items);
        w.byte(_FROZENSET);
        this.active.delete(v);
        this.memoize(v);
      } else {
        w.byte(_EMPTY_SET);
        this.memoize(v);
        if (v.items.length) {
          w.byte(_MARK);
          for (const it of v.items) _encodableKey(it);
          this.items(v.items);
          w.byte(_ADDITEMS);
        }
      }
      return;
    }
    if (v instanceof PyByteArray) {
      this.global(new PyGlobal("builtins", "bytearray"));
      this.save(new PyTuple([v.bytes]));
      w.byte(_REDUCE);
      this.memoize(v);
      return;
    }
    if (isPlainDict(v)) {
      w.byte(_EMPTY_DICT);
      this.memoize(v);
      const keys = Object.keys(v);
      if (keys.length) {
        w.byte(_MARK);
        for (const k of keys) {
          const x = v[k];
          if (x === undefined) {
            throw new ProtocolError(`pickle: dict key ${JSON.stringify(k)} has value undefined`);
          }
          this.str(k);
          this.save(x);
        }
        w.byte(_SETITEMS);
      }
      return;
    }
    throw new ProtocolError(
      `pickle: cannot pickle a ${(v as object).constructor?.name ?? "null-prototype"} object`,
    );
  }
}

/** Refuse values Python cannot hash as dict keys / set members (it would fail to load). */
function _encodableKey(k: PyValue) {
  if (
    Array.isArray(k) || k instanceof Map || isPlainDict(k) || k instanceof PyByteArray ||
    (k instanceof PySet && !k.frozen)
  ) {
    throw new ProtocolError(
      "pickle: unhashable value (list, dict, set or bytearray) used as a dict key or set member",
    );
  }
}

function _hasSurrogates(s: string): boolean {
  return !s.isWellFormed();
}

function _encodeSurrogatepass(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) {
      out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    } else {
      out.push(
        0xf0 | (c >> 18),
        0x80 | ((c >> 12) & 0x3f),
        0x80 | ((c >> 6) & 0x3f),
        0x80 | (c & 0x3f),
      );
    }
  }
  return new Uint8Array(out);
}

/** Minimal little-endian two's complement bytes of `n` (Python's `encode_long`). */
function _encodeLong(n: bigint): Uint8Array {
  if (n === 0n) return new Uint8Array(0);
  const neg = n < 0n;
  const bitLength = (neg ? -n : n).toString(2).length;
  let nbytes = (bitLength >> 3) + 1;
  let x = neg ? (1n << BigInt(nbytes * 8)) + n : n;
  const out = new Uint8Array(nbytes);
  for (let i = 0; i < nbytes; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (neg && nbytes > 1 && out[nbytes - 1] === 0xff && (out[nbytes - 2] & 0x80) !== 0) {
    nbytes--;
    return out.subarray(0, nbytes);
  }
  return out;
}

/**
 * Pickle `value` with protocol 4 (no frames), loadable by CPython 3.8+.
 * Throws {@linkcode ProtocolError} for values that have no Python counterpart
 * (`undefined`, functions, self-containing tuples, ...).
 *
 * @example
 * ```ts
 * import { encodePickle, PyGlobal, PyObject } from "./pickle.ts";
 * encodePickle({ registration: "4b116d3c-1703-4f8f-9f6f-39921e5864df" });
 * encodePickle(new PyObject(new PyGlobal("builtins", "RuntimeError"), ["boom"], "reduce"));
 * ```
 */
export function encodePickle(value: PyValue): Uint8Array {
  const p = new _Pickler();
  p.w.byte2(_PROTO, 4);
  try {
    p.save(value);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`pickle: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  p.w.byte(_STOP);
  return p.w.buf.slice(0, p.w.pos);
}
