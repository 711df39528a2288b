import assert from "node:assert/strict";
import {
  decodePickle,
  encodePickle,
  ProtocolError,
  PyByteArray,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
  tuple,
} from "../../src/protocol/pickle/mod.ts";
import { fromHex, runPython, toHex } from "./_python.ts";

/** Python side: deterministic sample values and a strict, type-aware equality. */
const VALUES_PY = String.raw`
import datetime, math, pickle, sys, json

class Point:
    def __init__(self, x, y):
        self.x = x; self.y = y
    def __eq__(self, o):
        return type(o) is Point and self.__dict__ == o.__dict__

class Slotted:
    __slots__ = ("a", "b")
    def __init__(self, a, b):
        self.a = a; self.b = b
    def __eq__(self, o):
        return type(o) is Slotted and (self.a, self.b) == (o.a, o.b)

class Reduced:
    def __init__(self, *args):
        self.args = args
    def __reduce__(self):
        return (Reduced, self.args)
    def __eq__(self, o):
        return type(o) is Reduced and self.args == o.args

def nested(n):
    v = [1]
    for _ in range(n):
        v = [v]
    return v

def values():
    shared = [1, 2]
    rec = []
    rec.append(rec)
    d = {}
    lst = [d]
    d["x"] = lst
    d[5] = "five"
    return {
        "none": None, "true": True, "false": False,
        "ints": [0, 1, -1, 127, 128, 255, 256, -128, -129, 65535, 65536, 2**31 - 1, 2**31,
                 -2**31, -2**31 - 1, 2**53, 2**53 + 1, -2**53 - 1, 2**63, 2**64, -2**64,
                 2**1000, -2**1000 + 7, 10**40],
        "floats": [0.0, -0.0, 1.0, 1.5, -2.25, 1e300, 5e-324, 0.1, float("inf"), float("-inf"),
                   float("nan"), 123456789.0],
        "strs": ["", "abc", "é", "日本語", "\U0001F600", "a\nb\\c\x00\r\x1a", "x" * 1000,
                 "\ud800", "mixed é \U0001F600 \udfff end", "'quote\"", "\\u1234 literal"],
        "bytes": [b"", b"\x00\xff\n", bytes(range(256)) * 2, b"z" * 70000],
        "bytearray": [bytearray(b""), bytearray(b"ab\xff")],
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5), ((1,), ((),))],
        "lists": [[], [1], list(range(2500)), [[1, [2, [3]]]]],
        "dicts": [{}, {"a": 1, "b": [1, 2]}, {str(i): i for i in range(1500)},
                  {1: "a", (1, 2): "b", None: 0, 2.5: 1, b"k": 2, frozenset([1]): 3}],
        "mixed_dict": {"a": 1, 2: "b", "c": [3]},
        "sets": [set(), {1, 2, 3}, {"a", "b"}, frozenset(), frozenset({1, "x", (1, 2)})],
        "slotted": Slotted(1, [2]),
        "objects": [Point(1, "y"), Reduced(1, "two", (3,)),
                    ValueError("bad value"), RuntimeError("boom", 2),
                    datetime.datetime(2021, 3, 4, 5, 6, 7, 89), datetime.date(2020, 1, 2),
                    complex(1, -2)],
        "shared": [shared, shared, {"s": shared}],
        "unicode_keys": {"ключ": "значение", "": None, "__proto__": 1, "constructor": 2},
        "result_dict": {"task_id": "7c3a0c5e-9e8e-4f38-8d8f-6a2f0c1b8f11", "container_id": "RAW",
                        "result": "00\ngANLAS4=\n",
                        "times": {"execution_start": 1.5, "execution_end": 2.0,
                                  "execution_time": 0.5}},
        "nested_deep": nested(30),
    }, rec, d

def same(a, b, path="v"):
    if type(a) is not type(b):
        return f"{path}: type {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        if math.isnan(a) and math.isnan(b):
            return None
        if a != b or math.copysign(1, a) != math.copysign(1, b):
            return f"{path}: {a!r} != {b!r}"
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            r = same(x, y, f"{path}[{i}]")
            if r:
                return r
        return None
    if isinstance(a, dict):
        if list(a.keys()) != list(b.keys()):
            return f"{path}: keys {list(a)[:5]} != {list(b)[:5]}"
        for k in a:
            r = same(a[k], b[k], f"{path}[{k!r}]")
            if r:
                return r
        return None
    if isinstance(a, BaseException):
        return None if a.args == b.args else f"{path}: {a!r} != {b!r}"
    return None if a == b else f"{path}: {a!r} != {b!r}"
`;

Deno.test("pickle: decode every protocol CPython writes, re-encode, CPython loads the same", async () => {
  const dumped = JSON.parse(
    await runPython(
      VALUES_PY + String.raw`
vals, rec, d = values()
out = []
for name, v in vals.items():
    for p in range(0, 6):
        if name == "slotted" and p < 2:
            continue  # CPython cannot pickle __slots__ classes below protocol 2
        out.append({"name": name, "proto": p, "hex": pickle.dumps(v, protocol=p).hex()})
print(json.dumps(out))
`,
    ),
  ) as { name: string; proto: number; hex: string }[];
  assert.equal(dumped.length > 100, true);
  const back = dumped.map(({ name, proto, hex }) => {
    let v: PyValue;
    try {
      v = decodePickle(fromHex(hex), { preserveFloats: true });
    } catch (e) {
      throw new Error(`decoding ${name} protocol ${proto}: ${(e as Error).message}`);
    }
    return { name, proto, hex: toHex(encodePickle(v)) };
  });
  const report = await runPython(
    VALUES_PY + String.raw`
vals, rec, d = values()
bad = []
for item in json.load(sys.stdin):
    try:
        got = pickle.loads(bytes.fromhex(item["hex"]))
    except Exception as e:
        bad.append(f"{item['name']} p{item['proto']}: load failed: {e!r}")
        continue
    r = same(vals[item["name"]], got)
    if r:
        bad.append(f"{item['name']} p{item['proto']}: {r}")
print(json.dumps(bad))
`,
    JSON.stringify(back),
  );
  assert.deepEqual(JSON.parse(report), []);
});

Deno.test("pickle: decoded JS shapes", async () => {
  const hex = JSON.parse(
    await runPython(
      VALUES_PY + String.raw`
vals, rec, d = values()
pick = lambda v, p=4: pickle.dumps(v, protocol=p).hex()
print(json.dumps({
  "result": pick(vals["result_dict"]), "mixed": pick(vals["mixed_dict"]),
  "point": pick(Point(1, 2.5)), "exc": pick(ValueError("bad")), "rec": pick(rec, 2),
  "d": pick(d, 2), "shared": pick(vals["shared"], 0), "ints": pick(vals["ints"], 1),
  "set": pick({1}, 2), "ba": pick(bytearray(b"q"), 5), "bytes0": pick(b"\xff\x00", 0),
  "fs": pick(frozenset([7]), 4), "proto": pick({"__proto__": {"polluted": 1}}),
}))
`,
    ),
  ) as Record<string, string>;
  const dec = (k: string) => decodePickle(fromHex(hex[k]));
  assert.deepEqual(dec("result"), {
    task_id: "7c3a0c5e-9e8e-4f38-8d8f-6a2f0c1b8f11",
    container_id: "RAW",
    result: "00\ngANLAS4=\n",
    times: { execution_start: 1.5, execution_end: 2, execution_time: 0.5 },
  });
  const mixed = dec("mixed") as Map<PyValue, PyValue>;
  assert.ok(mixed instanceof Map);
  assert.deepEqual([...mixed.keys()], ["a", 2, "c"]);
  const point = dec("point") as PyObject;
  assert.ok(point instanceof PyObject);
  assert.equal(point.cls.toString(), "__main__.Point");
  assert.equal(point.kind, "newobj");
  assert.deepEqual(point.state, { x: 1, y: 2.5 });
  const exc = dec("exc") as PyObject;
  assert.equal(exc.cls.toString(), "builtins.ValueError");
  assert.equal(exc.kind, "reduce");
  assert.deepEqual(exc.args, ["bad"]);
  const rec = dec("rec") as PyValue[];
  assert.equal(rec[0], rec);
  const d = dec("d") as Map<PyValue, PyValue>;
  assert.ok(d instanceof Map);
  assert.equal((d.get("x") as PyValue[])[0], d);
  assert.equal(d.get(5), "five");
  const shared = dec("shared") as PyValue[];
  assert.equal(shared[0], shared[1]);
  assert.equal((shared[2] as Record<string, PyValue>).s, shared[0]);
  const ints = dec("ints") as PyValue[];
  assert.equal(ints[17], -9007199254740993n);
  assert.equal(ints[18], 2n ** 63n);
  assert.equal(ints[21], 2n ** 1000n);
  assert.equal(ints[22], -(2n ** 1000n) + 7n);
  assert.equal(ints[15], 2n ** 53n); // beyond Number.MAX_SAFE_INTEGER
  assert.equal(ints[11], 2 ** 31 - 1);
  assert.ok(dec("set") instanceof PySet);
  assert.deepEqual((dec("set") as PySet).items, [1]);
  assert.ok(dec("ba") instanceof PyByteArray);
  assert.deepEqual(dec("bytes0"), new Uint8Array([0xff, 0]));
  assert.equal((dec("fs") as PySet).frozen, true);
  const proto = dec("proto") as Record<string, PyValue>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("pickle: values built in TS load in CPython with the expected repr", async () => {
  const cases: [PyValue, string][] = [
    [null, "None"],
    [true, "True"],
    [
      [1, -1, 300, -70000, 2 ** 40, -(2 ** 40)],
      "[1, -1, 300, -70000, 1099511627776, -1099511627776]",
    ],
    [
      [2n ** 64n, -(2n ** 64n), -128n, -129n, 127n, 128n, 0n],
      "[18446744073709551616, -18446744073709551616, -128, -129, 127, 128, 0]",
    ],
    [[1.5, new PyFloat(1), new PyFloat(-0), Infinity, NaN], "[1.5, 1.0, -0.0, inf, nan]"],
    ["h\u00e9 \u65e5 \u{1F600}", "'hé 日 😀'"],
    ["\ud800x", "'\\ud800x'"],
    ["y".repeat(300), `'${"y".repeat(300)}'`],
    [new Uint8Array([0, 255]), "b'\\x00\\xff'"],
    [tuple(), "()"],
    [tuple(1, tuple(2, 3), "a", null), "(1, (2, 3), 'a', None)"],
    [{ a: 1, b: [tuple(1)] }, "{'a': 1, 'b': [(1,)]}"],
    [new Map<PyValue, PyValue>([[1, "x"], [tuple(1, 2), null]]), "{1: 'x', (1, 2): None}"],
    [new PySet([3]), "{3}"],
    [new PySet([3], true), "frozenset({3})"],
    [new PyByteArray(new Uint8Array([65])), "bytearray(b'A')"],
    [new PyGlobal("builtins", "ValueError"), "<class 'ValueError'>"],
    [
      new PyObject(new PyGlobal("builtins", "RuntimeError"), ["boom"], "reduce"),
      "RuntimeError('boom')",
    ],
    [
      new PyObject(new PyGlobal("argparse", "Namespace"), [], "newobj", { a: 1 }),
      "Namespace(a=1)",
    ],
  ];
  const input = cases.map(([v]) => toHex(encodePickle(v))).join("\n");
  const out = await runPython(
    "import pickle,sys,argparse\nfor l in sys.stdin.read().split('\\n'):\n print(repr(pickle.loads(bytes.fromhex(l))))",
    input,
  );
  assert.deepEqual(out.trimEnd().split("\n"), cases.map(([, r]) => r));
});

Deno.test("pickle: shared and cyclic structures survive encode -> CPython", async () => {
  const inner: PyValue[] = [1];
  const cyc: PyValue[] = [];
  cyc.push(cyc);
  const d: Record<string, PyValue> = { k: inner };
  const out = await runPython(
    "import pickle,sys\nv=pickle.loads(bytes.fromhex(sys.stdin.read()))\nprint(v[0] is v[1], v[2][0] is v[2], v[3]['k'] is v[0])",
    toHex(encodePickle([inner, inner, cyc, d])),
  );
  assert.equal(out.trim(), "True True True");
  const t = new PyTuple([]);
  (t.items as PyValue[]).push(t);
  assert.throws(() => encodePickle(t), ProtocolError);
  assert.throws(() => encodePickle(undefined as unknown as PyValue), ProtocolError);
  assert.throws(() => encodePickle({ f: (() => 1) as unknown as PyValue }), ProtocolError);
  assert.throws(() => encodePickle({ u: undefined as unknown as PyValue }), /dict key "u"/);
  assert.throws(() => encodePickle(new Map([[[1], 1]])), /unhashable/);
  assert.throws(() => encodePickle(new PySet([{}])), /unhashable/);
  assert.throws(() => encodePickle(new PySet([new PySet([])], true)), /unhashable/);
});

Deno.test("pickle: malformed input throws ProtocolError quickly", () => {
  const good = encodePickle({ a: [1, "two", new Uint8Array(3)], b: tuple(1.5) });
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => decodePickle(good.subarray(0, n)), ProtocolError, `prefix ${n}`);
  }
  const bad: [number[], RegExp][] = [
    [[], /no STOP/],
    [[0x80, 9, 0x4e, 0x2e], /unsupported pickle protocol 9/],
    [[0xff], /invalid opcode 0xff/],
    [[0x2e], /stack underflow/],
    [[0x61, 0x2e], /stack underflow/],
    [[0x68, 3, 0x2e], /memo key 3 not found/],
    [[0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x2e], /truncated|too large/],
    [[0x42, 0xff, 0xff, 0xff, 0xff, 0x2e], /truncated/],
    [[0x8b, 0xff, 0xff, 0xff, 0x7f], /truncated/],
    [[0x95, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0x2e], /frame length/],
    [[0x50, 0x31, 0x0a, 0x2e], /persistent/],
    [[0x97, 0x2e], /out-of-band/],
    [[0x5d, 0x5d, 0x5d, 0x73, 0x2e], /not a dict/],
    [[0x7d, 0x5d, 0x4b, 1, 0x73, 0x2e], /unhashable/],
    [[0x4b, 1, 0x4b, 2, 0x52, 0x2e], /not a tuple/],
    [[0x8c, 2, 0xc3, 0x28, 0x2e], /invalid UTF-8/],
    [[0x49, 0x31, 0x78, 0x0a, 0x2e], /invalid int literal/],
    [[0x28, 0x65, 0x2e], /stack underflow/],
    [[0x4c, ...new TextEncoder().encode("9".repeat(5000)), 0x0a, 0x2e], /too long/],
  ];
  for (const [bytes, re] of bad) {
    assert.throws(() => decodePickle(new Uint8Array(bytes)), (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `${bytes}: ${e}`);
      assert.match((e as Error).message, re);
      assert.equal((e as Error).message.includes("\n"), false);
      return true;
    });
  }
  assert.throws(() => decodePickle(good, { maxBytes: 4 }), /exceeds the limit of 4/);
  // deep nesting is iterative: no RangeError
  const deep = new Uint8Array(200001);
  deep.fill(0x5d, 0, 100000);
  deep.fill(0x61, 100000, 199999);
  deep[199999] = 0x61;
  deep[200000] = 0x2e;
  assert.throws(() => decodePickle(deep), ProtocolError); // one APPEND too many
  const ok = deep.slice();
  ok[199999] = 0x2e;
  assert.ok(Array.isArray(decodePickle(ok.subarray(0, 200000))));
});

Deno.test("pickle: protocol 0 text opcodes", () => {
  const enc = new TextEncoder();
  const v = decodePickle(
    enc.encode(
      "(lp0\nI01\naI-5\naL123456789012345678901234567890L\naF-1.5e10\naS'a\\x41\\n\\'b'\naVx\\u00e9\\\\u\\U0001F600\na.",
    ),
  );
  assert.deepEqual(v, [
    true,
    -5,
    123456789012345678901234567890n,
    -1.5e10,
    "aA\n'b",
    "x\u00e9\\\\u\u{1F600}",
  ]);
});
