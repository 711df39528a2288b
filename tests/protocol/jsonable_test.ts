import assert from "node:assert/strict";
import { toJsonable } from "../../src/protocol/jsonable.ts";
import {
  decodePickle,
  PyByteArray,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  type PyValue,
  tuple,
} from "../../src/protocol/pickle/mod.ts";
import { fromHex, runPython } from "./_python.ts";

Deno.test("jsonable: every PyValue kind maps to JSON data", () => {
  const v: PyValue = {
    n: null,
    b: true,
    i: 3,
    big: 2n ** 70n,
    small: 5n,
    f: new PyFloat(1),
    nan: NaN,
    inf: -Infinity,
    s: "é",
    bytes: new Uint8Array([104, 105]),
    ba: new PyByteArray(new Uint8Array([1])),
    t: tuple(1, tuple()),
    set: new PySet(["a"]),
    g: new PyGlobal("builtins", "ValueError"),
    o: new PyObject(new PyGlobal("m", "C"), [1], "newobj", { x: 1 }),
    m: new Map<PyValue, PyValue>([[1, "one"], [tuple(1, 2), null], ["__proto__", 0]]),
  };
  assert.deepEqual(JSON.parse(JSON.stringify(toJsonable(v))), {
    n: null,
    b: true,
    i: 3,
    big: "1180591620717411303424",
    small: 5,
    f: 1,
    nan: "nan",
    inf: "-inf",
    s: "é",
    bytes: { $bytes: "aGk=" },
    ba: { $bytearray: "AQ==" },
    t: [1, []],
    set: ["a"],
    g: "builtins.ValueError",
    o: { $class: "m.C", args: [1], state: { x: 1 } },
    m: { "1": "one", "[1,2]": null, ["__proto__"]: 0 },
  });
});

Deno.test("jsonable: cycles, depth and size are bounded (hostile pickles from CPython)", async () => {
  const hex = (await runPython(
    "import pickle, sys\nsys.setrecursionlimit(100000)\nl = []\nl.append(l)\nd = {}\nd['self'] = d\nx = [0]\nfor _ in range(300):\n    x = [x]\nprint(pickle.dumps([l, d]).hex())\nprint(pickle.dumps(x).hex())",
  )).trim().split("\n");
  const cyc = decodePickle(fromHex(hex[0]));
  assert.deepEqual(toJsonable(cyc), [["[cycle]"], { self: "[cycle]" }]);
  const deep = decodePickle(fromHex(hex[1]));
  let j = toJsonable(deep, { maxDepth: 10 }) as unknown;
  for (let i = 0; i < 10; i++) j = (j as unknown[])[0];
  assert.equal(j, "[too deep]");
  const shared: PyValue[] = [1, 2, 3];
  const wide: PyValue[] = Array.from({ length: 1000 }, () => shared);
  const out = toJsonable(wide, { maxNodes: 100 }) as unknown[];
  assert.equal(out.length, 1000);
  assert.equal(out[999], "[truncated]");
});
