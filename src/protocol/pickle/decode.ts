/**
 * The unpickler: protocols 0–5 as CPython writes them, bounded (it never reads past the input,
 * never allocates more than a small multiple of the input size) and strict (every malformed
 * input is a {@linkcode ProtocolError}).
 * @module
 */
import { ProtocolError } from "../errors.ts";
import {
  ADDITEMS,
  APPEND,
  APPENDS,
  BINBYTES,
  BINBYTES8,
  BINFLOAT,
  BINGET,
  BININT,
  BININT1,
  BININT2,
  BINPERSID,
  BINPUT,
  BINSTRING,
  BINUNICODE,
  BINUNICODE8,
  BUILD,
  BYTEARRAY8,
  DICT,
  DUP,
  EMPTY_DICT,
  EMPTY_LIST,
  EMPTY_SET,
  EMPTY_TUPLE,
  EXT1,
  EXT2,
  EXT4,
  FLOAT,
  FRAME,
  FROZENSET,
  GET,
  GLOBAL,
  INST,
  INT,
  LIST,
  LONG,
  LONG1,
  LONG4,
  LONG_BINGET,
  LONG_BINPUT,
  MARK,
  MAX_DECIMAL_DIGITS,
  MEMOIZE,
  NEWFALSE,
  NEWOBJ,
  NEWOBJ_EX,
  NEWTRUE,
  NEXT_BUFFER,
  NONE,
  OBJ,
  PERSID,
  POP,
  POP_MARK,
  PROTO,
  PUT,
  READONLY_BUFFER,
  REDUCE,
  SETITEM,
  SETITEMS,
  SHORT_BINBYTES,
  SHORT_BINSTRING,
  SHORT_BINUNICODE,
  STACK_GLOBAL,
  STOP,
  STRING,
  TUPLE,
  TUPLE1,
  TUPLE2,
  TUPLE3,
  UNICODE,
} from "./_opcodes.ts";
import {
  decodeUtf8,
  latin1,
  latin1Bytes,
  parseFloatLiteral,
  pyStringLiteral,
  rawUnicodeEscape,
} from "./_text.ts";
import {
  isPlainDict,
  PyByteArray,
  type PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
} from "./_types.ts";

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
    return latin1(this.b, s, e);
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
        case PROTO: {
          const p = this.u8();
          if (p > 5) this.fail(`unsupported pickle protocol ${p}`);
          this.proto = p;
          break;
        }
        case FRAME: {
          const n = this.u64();
          if (n > b.length - this.pos) this.fail("frame length exceeds input");
          break;
        }
        case STOP: {
          return this.pop();
        }
        case MARK:
          this.marks.push(this.stack.length);
          break;
        case POP:
          if (this.stack.length > this.floor()) this.stack.pop();
          else this.popMark();
          break;
        case POP_MARK:
          this.popMark();
          break;
        case DUP:
          this.stack.push(this.top());
          break;
        case NONE:
          this.stack.push(null);
          break;
        case NEWTRUE:
          this.stack.push(true);
          break;
        case NEWFALSE:
          this.stack.push(false);
          break;
        case BININT: {
          const p = this.need(4);
          this.stack.push(this.view.getInt32(p, true));
          break;
        }
        case BININT1:
          this.stack.push(this.u8());
          break;
        case BININT2: {
          const p = this.need(2);
          this.stack.push(this.view.getUint16(p, true));
          break;
        }
        case INT: {
          const t = this.lineText();
          if (t === "01") this.stack.push(true);
          else if (t === "00") this.stack.push(false);
          else this.stack.push(this.decimalInt(t));
          break;
        }
        case LONG: {
          let t = this.lineText();
          if (t.endsWith("L")) t = t.slice(0, -1);
          this.stack.push(this.decimalInt(t));
          break;
        }
        case LONG1: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(_decodeLong(b, p, n));
          break;
        }
        case LONG4: {
          const n = this.view.getInt32(this.need(4), true);
          if (n < 0) this.fail("LONG4 with negative length");
          const p = this.need(n);
          this.stack.push(_decodeLong(b, p, n));
          break;
        }
        case FLOAT: {
          const t = this.lineText();
          this.stack.push(this.float(parseFloatLiteral(t, this)));
          break;
        }
        case BINFLOAT: {
          const p = this.need(8);
          this.stack.push(this.float(this.view.getFloat64(p, false)));
          break;
        }
        case SHORT_BINUNICODE: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(decodeUtf8(b, p, p + n));
          break;
        }
        case BINUNICODE: {
          const n = this.u32();
          const p = this.need(n);
          this.stack.push(decodeUtf8(b, p, p + n));
          break;
        }
        case BINUNICODE8: {
          const n = this.u64();
          const p = this.need(n);
          this.stack.push(decodeUtf8(b, p, p + n));
          break;
        }
        case UNICODE: {
          const [s, e] = this.line();
          this.stack.push(rawUnicodeEscape(b, s, e, this));
          break;
        }
        case STRING: {
          const [s, e] = this.line();
          this.stack.push(pyStringLiteral(b, s, e, this));
          break;
        }
        case BINSTRING: {
          const n = this.view.getInt32(this.need(4), true);
          if (n < 0) this.fail("BINSTRING with negative length");
          const p = this.need(n);
          this.stack.push(latin1(b, p, p + n));
          break;
        }
        case SHORT_BINSTRING: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(latin1(b, p, p + n));
          break;
        }
        case SHORT_BINBYTES: {
          const n = this.u8();
          const p = this.need(n);
          this.stack.push(b.slice(p, p + n));
          break;
        }
        case BINBYTES: {
          const n = this.u32();
          const p = this.need(n);
          this.stack.push(b.slice(p, p + n));
          break;
        }
        case BINBYTES8: {
          const n = this.u64();
          const p = this.need(n);
          this.stack.push(b.slice(p, p + n));
          break;
        }
        case BYTEARRAY8: {
          const n = this.u64();
          const p = this.need(n);
          this.stack.push(new PyByteArray(b.slice(p, p + n)));
          break;
        }
        case NEXT_BUFFER:
          this.fail("out-of-band buffers (NEXT_BUFFER) are not supported");
          break;
        case READONLY_BUFFER:
          this.top();
          break;
        case EMPTY_TUPLE:
          this.stack.push(new PyTuple([]));
          break;
        case TUPLE1: {
          const a = this.pop();
          this.stack.push(new PyTuple([a as PyValue]));
          break;
        }
        case TUPLE2: {
          const y = this.pop();
          const x = this.pop();
          this.stack.push(new PyTuple([x, y] as PyValue[]));
          break;
        }
        case TUPLE3: {
          const z = this.pop();
          const y = this.pop();
          const x = this.pop();
          this.stack.push(new PyTuple([x, y, z] as PyValue[]));
          break;
        }
        case TUPLE:
          this.stack.push(new PyTuple(this.popMark() as PyValue[]));
          break;
        case EMPTY_LIST:
          this.stack.push([]);
          break;
        case LIST:
          this.stack.push(this.popMark());
          break;
        case APPEND: {
          const v = this.pop();
          const l = this.top();
          if (!Array.isArray(l)) this.fail("APPEND target is not a list");
          l.push(v);
          break;
        }
        case APPENDS: {
          const items = this.popMark();
          const l = this.top();
          if (!Array.isArray(l)) this.fail("APPENDS target is not a list");
          for (let i = 0; i < items.length; i++) l.push(items[i]);
          break;
        }
        case EMPTY_DICT:
          this.stack.push({});
          break;
        case DICT: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail("DICT with an odd number of items");
          let d: _AnyDict = {};
          for (let i = 0; i < items.length; i += 2) d = this.setItem(d, items[i], items[i + 1]);
          this.stack.push(d);
          break;
        }
        case SETITEM: {
          const v = this.pop();
          const k = this.pop();
          const [idx, d] = this.dictTarget();
          this.swapDict(d, this.setItem(d, k, v), idx);
          break;
        }
        case SETITEMS: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail("SETITEMS with an odd number of items");
          const [idx, d0] = this.dictTarget();
          let d = d0;
          for (let i = 0; i < items.length; i += 2) d = this.setItem(d, items[i], items[i + 1]);
          this.swapDict(d0, d, idx);
          break;
        }
        case EMPTY_SET:
          this.stack.push(new PySet([]));
          break;
        case ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof PySet) || s.frozen) this.fail("ADDITEMS target is not a set");
          for (const it of items) {
            _checkHashable(it, this);
            s.items.push(it as PyValue);
          }
          break;
        }
        case FROZENSET: {
          const items = this.popMark();
          const out: PyValue[] = [];
          for (const it of items) {
            _checkHashable(it, this);
            out.push(it as PyValue);
          }
          this.stack.push(new PySet(out, true));
          break;
        }
        case GET:
          this.stack.push(this.memoGet(this.lineInt()));
          break;
        case BINGET:
          this.stack.push(this.memoGet(this.u8()));
          break;
        case LONG_BINGET:
          this.stack.push(this.memoGet(this.u32()));
          break;
        case PUT:
          this.memoPut(this.lineInt());
          break;
        case BINPUT:
          this.memoPut(this.u8());
          break;
        case LONG_BINPUT:
          this.memoPut(this.u32());
          break;
        case MEMOIZE:
          this.memoPut(this.memo.size);
          break;
        case GLOBAL: {
          const [ms, me] = this.line();
          const [ns, ne] = this.line();
          this.stack.push(this.global(decodeUtf8(b, ms, me), decodeUtf8(b, ns, ne)));
          break;
        }
        case STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof name !== "string" || typeof module !== "string") {
            this.fail("STACK_GLOBAL requires str module and name");
          }
          this.stack.push(this.global(module, name));
          break;
        }
        case REDUCE: {
          const args = this.pop();
          const fn = this.pop();
          if (!(args instanceof PyTuple)) this.fail("REDUCE arguments are not a tuple");
          this.stack.push(this.reduce(fn, args.items));
          break;
        }
        case NEWOBJ: {
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PyGlobal)) this.fail("NEWOBJ class is not a global");
          if (!(args instanceof PyTuple)) this.fail("NEWOBJ arguments are not a tuple");
          this.stack.push(new PyObject(cls, args.items, "newobj"));
          break;
        }
        case NEWOBJ_EX: {
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
        case INST: {
          const [ms, me] = this.line();
          const [ns, ne] = this.line();
          const cls = this.global(latin1(b, ms, me), latin1(b, ns, ne));
          this.stack.push(new PyObject(cls, this.popMark() as PyValue[], "reduce"));
          break;
        }
        case OBJ: {
          const items = this.popMark();
          const cls = items.shift();
          if (!(cls instanceof PyGlobal)) this.fail("OBJ class is not a global");
          this.stack.push(new PyObject(cls, items as PyValue[], "reduce"));
          break;
        }
        case BUILD: {
          const state = this.pop();
          const o = this.top();
          if (!(o instanceof PyObject)) this.fail("BUILD target is not an object");
          o.state = state as PyValue;
          break;
        }
        case PERSID:
        case BINPERSID:
          this.fail("persistent ids are not supported");
          break;
        case EXT1:
        case EXT2:
        case EXT4:
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
    if (s.length > MAX_DECIMAL_DIGITS) this.fail("int literal too long");
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
        return latin1Bytes(s, this);
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
          return new PyByteArray(latin1Bytes(args[0], this));
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
 * import { decodePickle } from "./mod.ts";
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
