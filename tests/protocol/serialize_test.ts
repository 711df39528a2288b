import assert from "node:assert/strict";
import { decodeBase64Lenient, encodeBase64Mime } from "../../src/protocol/base64.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { PyObject, PyTuple, type PyValue } from "../../src/protocol/pickle/mod.ts";
import {
  buildTaskPayload,
  decodeRemoteException,
  deserialize,
  deserializeSource,
  packBuffers,
  remoteException,
  serializeData,
  serializeSource,
  tuple,
  unpackBuffers,
  unpackTaskPayload,
} from "../../src/protocol/serialize.ts";
import { runPython } from "./_python.ts";

/** Upstream funcx.serialize behaviour, written from the reference (§9) for cross-checks. */
const UPSTREAM_PY = String.raw`
import codecs, json, pickle, sys, types

def serialize_data(x):
    return "00\n" + codecs.encode(pickle.dumps(x), "base64").decode()

def serialize_source(fn_name, src):
    return "03\n" + codecs.encode(pickle.dumps((fn_name, src)), "base64").decode()

def chomp(payload, ident):
    s_id, body = payload.split("\n", 1)
    assert s_id + "\n" == ident, s_id
    return body

def deserialize(payload):
    header = payload[0:3]
    body = chomp(payload, header)
    obj = pickle.loads(codecs.decode(body.encode(), "base64"))
    if header in ("03\n", "04\n"):
        name, src = obj
        exec(src)
        return locals()[name]
    return obj

def pack_buffers(buffers):
    packed = ""
    for buf in buffers:
        packed += str(len(buf)) + "\n" + buf
    return packed

def unpack_and_deserialize(packed_buffer):
    unpacked = []
    while packed_buffer:
        s_length, buf = packed_buffer.split("\n", 1)
        i_length = int(s_length)
        current, packed_buffer = buf[:i_length], buf[i_length:]
        unpacked.append(deserialize(current))
    assert len(unpacked) == 3
    return unpacked

def fake_module(modname, *classes):
    parts = modname.split(".")
    for i in range(1, len(parts) + 1):
        n = ".".join(parts[:i])
        sys.modules.setdefault(n, types.ModuleType(n))
    for c in classes:
        c.__module__ = modname
        c.__qualname__ = c.__name__
        setattr(sys.modules[modname], c.__name__, c)

class RemoteExceptionWrapper:
    def __init__(self, e_type, e_value, traceback):
        self.e_type = e_type
        self.e_value = e_value
        self.e_traceback = traceback

fake_module("parsl.app.errors", RemoteExceptionWrapper)

class Traceback: pass
class Frame: pass
class Code: pass

fake_module("tblib", Traceback, Frame, Code)
`;

Deno.test("serialize: MIME base64 framing is byte-identical to codecs.encode(..., 'base64')", async () => {
  const sizes = [0, 1, 2, 3, 56, 57, 58, 113, 114, 171, 1000, 4096];
  const blobs = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
  const ours = blobs.map(encodeBase64Mime);
  const theirs = JSON.parse(
    await runPython(
      "import codecs,json,sys\nprint(json.dumps([codecs.encode(bytes.fromhex(h),'base64').decode() for h in json.load(sys.stdin)]))",
      JSON.stringify(
        blobs.map((b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")),
      ),
    ),
  );
  assert.deepEqual(ours, theirs);
  for (const [i, b] of blobs.entries()) assert.deepEqual(decodeBase64Lenient(ours[i]), b);
});

Deno.test("serialize: base64 decoding matches binascii.a2b_base64 (non-strict)", async () => {
  const inputs = [
    "aGk=\n",
    "aG k=",
    "aGk==",
    "aGk=aGk=",
    "aGk=x",
    "QQ==QQ==",
    "",
    "\n\n",
    "YWJj",
    "Y W J j !",
  ];
  const bad = ["aGk", "a===", "a", "YWJjZ"];
  const py = JSON.parse(
    await runPython(
      "import binascii,json,sys\nprint(json.dumps([binascii.a2b_base64(s).hex() for s in json.load(sys.stdin)]))",
      JSON.stringify(inputs),
    ),
  ) as string[];
  assert.deepEqual(
    inputs.map((s) =>
      Array.from(decodeBase64Lenient(s), (x) => x.toString(16).padStart(2, "0")).join("")
    ),
    py,
  );
  for (const s of bad) assert.throws(() => decodeBase64Lenient(s), ProtocolError, s);
});

Deno.test("serialize: TS payloads deserialize with the upstream Python code and run", async () => {
  const fn = serializeSource(
    "combine",
    "def combine(a, b, *rest, sep='-', **kw):\n    return sep.join([str(a), str(b)] + [str(r) for r in rest]) + repr(sorted(kw.items()))\n",
  );
  const payload = buildTaskPayload(
    fn,
    serializeData(tuple(1, "zwei", 3.5, new Uint8Array([1]))),
    serializeData({ sep: "+", z: [1, tuple()] }),
  );
  // upstream's stored function_code (pack_buffers([fn])) gives the same payload
  assert.equal(
    buildTaskPayload(
      packBuffers([fn]),
      serializeData(tuple(1, "zwei", 3.5, new Uint8Array([1]))),
      serializeData({ sep: "+", z: [1, tuple()] }),
    ),
    payload,
  );
  const out = await runPython(
    UPSTREAM_PY +
      "\nfn, args, kwargs = unpack_and_deserialize(sys.stdin.read())\nprint(fn(*args, **kwargs))",
    payload,
  );
  assert.equal(out.trim(), "1+zwei+3.5+b'\\x01'[('z', [1, ()])]");
});

Deno.test("serialize: upstream Python payloads decode in TS", async () => {
  const got = JSON.parse(
    await runPython(
      UPSTREAM_PY + String.raw`
src = "def f(x):\n    return x * 2\n"
print(json.dumps({
  "data": serialize_data({"k": [1, 2.5, None, "é"], "t": (1,)}),
  "src": serialize_source("f", src),
  "packed": pack_buffers([serialize_source("f", src), serialize_data((4,)), serialize_data({})]),
  "big": serialize_data("x" * 5000),
}))
`,
    ),
  ) as Record<string, string>;
  assert.deepEqual(deserialize(got.data), { k: [1, 2.5, null, "é"], t: new PyTuple([1]) });
  assert.deepEqual(deserializeSource(got.src), {
    name: "f",
    source: "def f(x):\n    return x * 2\n",
  });
  const parts = unpackTaskPayload(got.packed);
  assert.deepEqual(deserialize(parts.args), new PyTuple([4]));
  assert.deepEqual(deserialize(parts.kwargs), {});
  assert.equal(deserialize(got.big), "x".repeat(5000));
});

Deno.test("serialize: remote exceptions load in Python and decode back", async () => {
  const s = remoteException(
    "ManagerLost",
    "manager abc lost (no heartbeat for 30 s)",
    "Traceback: none\n",
  );
  const s2 = remoteException(
    "ZeroDivisionError",
    "division by zero",
    "Traceback (most recent call last):\n  ...\n",
  );
  const out = await runPython(
    UPSTREAM_PY + String.raw`
for line in sys.stdin.read().split("\0"):
    w = deserialize(line)
    assert isinstance(w, RemoteExceptionWrapper), type(w)
    t, v, tb = pickle.loads(w.e_type), pickle.loads(w.e_value), w.e_traceback
    print(w.exception_type, t.__name__, type(v).__name__, repr(str(v)), repr(w.formatted_traceback), tb.tb_frame.f_code.co_filename, tb.tb_lineno)
`,
    [s, s2].join("\0"),
  );
  assert.deepEqual(out.trim().split("\n"), [
    "ManagerLost RuntimeError RuntimeError 'manager abc lost (no heartbeat for 30 s)' 'Traceback: none\\n' <funcx-endpoint> 1",
    "ZeroDivisionError ZeroDivisionError ZeroDivisionError 'division by zero' 'Traceback (most recent call last):\\n  ...\\n' <funcx-endpoint> 1",
  ]);
  assert.deepEqual(decodeRemoteException(deserialize(s)), {
    type: "ManagerLost",
    message: "manager abc lost (no heartbeat for 30 s)",
    traceback: "Traceback: none\n",
  });
  // a Parsl-style wrapper without our extra fields, and a bare exception
  const py = JSON.parse(
    await runPython(
      UPSTREAM_PY + String.raw`
w = RemoteExceptionWrapper(KeyError, KeyError("nope"), None)
print(json.dumps([serialize_data(w), serialize_data(ValueError("bare", 2))]))
`,
    ),
  ) as string[];
  assert.deepEqual(decodeRemoteException(py[0]), {
    type: "KeyError",
    message: "nope",
    traceback: "",
  });
  assert.deepEqual(decodeRemoteException(py[1]), {
    type: "ValueError",
    message: "bare, 2",
    traceback: "",
  });
  assert.throws(() => decodeRemoteException(serializeData(3)), ProtocolError);
  assert.ok(deserialize(s) instanceof PyObject);
});

Deno.test("serialize: bad input gives one-line ProtocolErrors", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => deserialize("05\nabc"), /invalid header "05\\n"/],
    [() => deserialize("00"), /invalid header/],
    [() => deserialize("00\n!!!!"), /pickle|base64/],
    [() => deserialize("00\nAAAA\n"), /pickle/],
    [() => unpackBuffers("3\nab"), /declares 3 characters but only 2 remain/],
    [() => unpackBuffers("x\nab"), /invalid length "x"/],
    [() => unpackBuffers("12"), /missing newline/],
    [() => unpackBuffers("-1\n"), /invalid length/],
    [() => unpackTaskPayload(packBuffers([serializeData(1)])), /expected 3 buffers/],
    [() => unpackTaskPayload(packBuffers(["a", "b", "c"])), /invalid header/],
    [() => serializeSource("not a name", "x"), /not a Python identifier/],
    [() => deserializeSource(serializeData(1)), /not function source/],
    [() => deserializeSource("03\n" + serializeData(1).slice(3)), /\(name, source\) tuple/],
    [() => buildTaskPayload("zz", serializeData(1), serializeData({})), /invalid header/],
  ];
  for (const [f, re] of cases) {
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof ProtocolError, String(e));
      assert.match(e.message, re);
      assert.equal(e.message.includes("\n"), false, e.message);
      return true;
    });
  }
  assert.deepEqual(unpackBuffers(""), []);
  assert.deepEqual(unpackBuffers(packBuffers(["", "a;b\n", "é"])), ["", "a;b\n", "é"]);
  const v: PyValue = { a: [1] };
  assert.deepEqual(deserialize(serializeData(v)), v);
});
