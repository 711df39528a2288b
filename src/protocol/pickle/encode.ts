/**
 * The pickler: protocol 4 without frames, loadable by CPython 3.8+.
 * @module
 */
import { ProtocolError } from "../errors.ts";
import {
  ADDITEMS,
  APPEND,
  APPENDS,
  BINBYTES,
  BINFLOAT,
  BINGET,
  BININT,
  BININT1,
  BININT2,
  BINUNICODE,
  BUILD,
  EMPTY_DICT,
  EMPTY_LIST,
  EMPTY_SET,
  EMPTY_TUPLE,
  FROZENSET,
  LONG1,
  LONG4,
  LONG_BINGET,
  MARK,
  MEMOIZE,
  NEWFALSE,
  NEWOBJ,
  NEWOBJ_EX,
  NEWTRUE,
  NONE,
  PROTO,
  REDUCE,
  SETITEMS,
  SHORT_BINBYTES,
  SHORT_BINUNICODE,
  STACK_GLOBAL,
  STOP,
  TUPLE,
  TUPLE1,
} from "./_opcodes.ts";
import {
  isPlainDict,
  PyByteArray,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
} from "./_types.ts";

const _utf8Encoder = new TextEncoder();

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
    this.w.byte(MEMOIZE);
    this.memo.set(o, this.memo.size + this.globals.size);
  }

  get(idx: number) {
    if (idx < 256) this.w.byte2(BINGET, idx);
    else {
      this.w.byte(LONG_BINGET);
      this.w.u32(idx);
    }
  }

  str(s: string) {
    const w = this.w;
    if (s.length < 85 && !_hasSurrogates(s)) {
      // at most 3 bytes per UTF-16 unit -> fits SHORT_BINUNICODE
      w.ensure(2 + s.length * 3);
      w.buf[w.pos] = SHORT_BINUNICODE;
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
    if (enc.length < 256) w.byte2(SHORT_BINUNICODE, enc.length);
    else if (enc.length <= 0xffffffff) {
      w.byte(BINUNICODE);
      w.u32(enc.length);
    } else throw new ProtocolError("pickle: str too large");
    w.bytes(enc);
  }

  int(n: number | bigint): void {
    const w = this.w;
    if (typeof n === "number") {
      if (n >= 0 && n < 256) return w.byte2(BININT1, n);
      if (n >= 0 && n < 65536) {
        w.byte2(BININT2, n & 0xff);
        return w.byte(n >> 8);
      }
      if (n >= -0x80000000 && n <= 0x7fffffff) {
        w.byte(BININT);
        w.ensure(4);
        w.view.setInt32(w.pos, n, true);
        w.pos += 4;
        return;
      }
      n = BigInt(n);
    }
    if (n >= -0x80000000n && n <= 0x7fffffffn) return this.int(Number(n));
    const bytes = _encodeLong(n);
    if (bytes.length < 256) w.byte2(LONG1, bytes.length);
    else {
      w.byte(LONG4);
      w.u32(bytes.length);
    }
    w.bytes(bytes);
  }

  float(x: number) {
    const w = this.w;
    w.byte(BINFLOAT);
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
    this.w.byte(STACK_GLOBAL);
    this.w.byte(MEMOIZE);
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
        return w.byte(v ? NEWTRUE : NEWFALSE);
      case "bigint":
        return this.int(v);
      case "object":
        break;
      default:
        throw new ProtocolError(`pickle: cannot pickle a value of JS type ${typeof v}`);
    }
    if (v === null) return w.byte(NONE);
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
      if (n < 256) w.byte2(SHORT_BINBYTES, n);
      else if (n <= 0xffffffff) {
        w.byte(BINBYTES);
        w.u32(n);
      } else throw new ProtocolError("pickle: bytes too large");
      w.bytes(v);
      return;
    }
    if (Array.isArray(v)) {
      w.byte(EMPTY_LIST);
      this.memoize(v);
      if (v.length === 1) {
        this.save(v[0]);
        w.byte(APPEND);
      } else if (v.length > 1) {
        w.byte(MARK);
        this.items(v);
        w.byte(APPENDS);
      }
      return;
    }
    if (v instanceof PyTuple) {
      const it = v.items;
      if (it.length === 0) return w.byte(EMPTY_TUPLE);
      this.active.add(v);
      if (it.length <= 3) {
        this.items(it);
        w.byte(TUPLE1 + it.length - 1);
      } else {
        w.byte(MARK);
        this.items(it);
        w.byte(TUPLE);
      }
      this.active.delete(v);
      this.memoize(v);
      return;
    }
    if (v instanceof PyFloat) return this.float(v.value);
    if (v instanceof Map) {
      w.byte(EMPTY_DICT);
      this.memoize(v);
      if (v.size) {
        w.byte(MARK);
        for (const [k, x] of v) {
          _encodableKey(k);
          this.save(k);
          this.save(x);
        }
        w.byte(SETITEMS);
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
        w.byte(REDUCE);
      } else if (v.kwargs !== undefined) {
        this.save(v.kwargs);
        w.byte(NEWOBJ_EX);
      } else w.byte(NEWOBJ);
      this.active.delete(v);
      this.memoize(v);
      if (v.state !== undefined) {
        this.save(v.state);
        w.byte(BUILD);
      }
      return;
    }
    if (v instanceof PySet) {
      if (v.frozen) {
        this.active.add(v);
        w.byte(MARK);
        for (const it of v.items) _encodableKey(it);
        this.items(v.items);
        w.byte(FROZENSET);
        this.active.delete(v);
        this.memoize(v);
      } else {
        w.byte(EMPTY_SET);
        this.memoize(v);
        if (v.items.length) {
          w.byte(MARK);
          for (const it of v.items) _encodableKey(it);
          this.items(v.items);
          w.byte(ADDITEMS);
        }
      }
      return;
    }
    if (v instanceof PyByteArray) {
      this.global(new PyGlobal("builtins", "bytearray"));
      this.save(new PyTuple([v.bytes]));
      w.byte(REDUCE);
      this.memoize(v);
      return;
    }
    if (isPlainDict(v)) {
      w.byte(EMPTY_DICT);
      this.memoize(v);
      const keys = Object.keys(v);
      if (keys.length) {
        w.byte(MARK);
        for (const k of keys) {
          const x = v[k];
          if (x === undefined) {
            throw new ProtocolError(`pickle: dict key ${JSON.stringify(k)} has value undefined`);
          }
          this.str(k);
          this.save(x);
        }
        w.byte(SETITEMS);
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
 * import { encodePickle, PyGlobal, PyObject } from "./mod.ts";
 * encodePickle({ registration: "4b116d3c-1703-4f8f-9f6f-39921e5864df" });
 * encodePickle(new PyObject(new PyGlobal("builtins", "RuntimeError"), ["boom"], "reduce"));
 * ```
 */
export function encodePickle(value: PyValue): Uint8Array {
  const p = new _Pickler();
  p.w.byte2(PROTO, 4);
  try {
    p.save(value);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`pickle: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  p.w.byte(STOP);
  return p.w.buf.slice(0, p.w.pos);
}
