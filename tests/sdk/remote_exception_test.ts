/**
 * Remote exceptions re-raise as themselves in a client shaped like the funcX 0.3.x SDK's
 * (dill, tblib, parsl 1.1.0's RemoteExceptionWrapper.reraise): the worker's wrapper, run on
 * a bare python3, and the wrappers the endpoint and service make (ManagerLost...).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeResult, packTask } from "../../src/protocol/messages.ts";
import { PyTuple, type PyValue } from "../../src/protocol/pickle/mod.ts";
import {
  buildTaskPayload,
  decodeRemoteException,
  remoteException,
  serializeData,
  serializeSource,
} from "../../src/protocol/serialize.ts";
import { PYTHON_WORKER_FILENAME, PYTHON_WORKER_SOURCE } from "../../src/engine/python_worker.ts";
import { reraiseInUpstreamClient } from "./_upstream_client.ts";

/** Run tasks through the embedded worker on `python` (no extra packages needed). */
async function runWorker(
  python: string,
  flags: string[],
  tasks: { id: string; fn: string; args: PyValue[] }[],
): Promise<{ task_id: string; result?: string; exception?: string }[]> {
  const dir = await Deno.makeTempDir({ prefix: "rexc-" });
  try {
    const script = join(dir, PYTHON_WORKER_FILENAME);
    await Deno.writeTextFile(script, PYTHON_WORKER_SOURCE);
    let input = new Uint8Array(0);
    for (const t of tasks) {
      const msg = packTask(
        t.id,
        "RAW",
        buildTaskPayload(t.fn, serializeData(new PyTuple(t.args)), serializeData({})),
      );
      const framed = new Uint8Array(input.length + 4 + msg.length);
      framed.set(input);
      new DataView(framed.buffer).setUint32(input.length, msg.length, false);
      framed.set(msg, input.length + 4);
      input = framed;
    }
    const child = new Deno.Command(python, {
      args: ["-u", ...flags, script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(input);
    await w.close();
    const out = await child.output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const res = [];
    let pos = 0;
    const view = new DataView(out.stdout.buffer);
    while (pos < out.stdout.length) {
      const n = view.getUint32(pos, false);
      res.push(decodeResult(out.stdout.subarray(pos + 4, pos + 4 + n)));
      pos += 4 + n;
    }
    return res as { task_id: string; result?: string; exception?: string }[];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SRC = [
  "import json",
  "",
  "class MyError(KeyError):",
  "    pass",
  "",
  "def inner(x):",
  "    if x == 1:",
  "        raise ValueError('bad x: %d' % x)",
  "    if x == 2:",
  "        raise MyError('custom')",
  "    if x == 3:",
  "        return json.loads('{')",
  "    if x == 4:",
  "        raise OSError(2, 'No such file', '/nope')",
  "    if x == 6:",
  "        return deep(0)",
  "    return 1 / 0",
  "",
  "def deep(n):",
  "    return deep(n + 1)",
  "",
  "def boom(x):",
  "    return inner(x)",
  "",
].join("\n");

// -S: no site-packages (a bare interpreter); Debian's without -S has dill, which the worker
// then uses for e_type/e_value as upstream did
for (
  const [python, flags] of [["python3", ["-S"]], ["/usr/bin/python3", ["-S"]], [
    "/usr/bin/python3",
    [],
  ]] as const
) {
  Deno.test(`remote exceptions: a worker on ${python} ${flags.join(" ")} re-raises as itself upstream-style`, async () => {
    const fn = serializeSource("boom", SRC);
    const results = await runWorker(
      python,
      [...flags],
      [1, 2, 3, 4, 5, 6].map((x) => ({ id: `t${x}`, fn, args: [x] })),
    );
    assert.equal(results.length, 6);
    for (const r of results) assert.equal(r.result, undefined);
    const got = await reraiseInUpstreamClient(results.map((r) => r.exception!));
    const F = "<funcx function boom>";
    const expect: [string, string, string][] = [
      ["ValueError", "builtins", "bad x: 1"],
      // a class defined in the function's source cannot load on the client: its nearest
      // builtin base with the same message (the readable type stays "MyError")
      ["KeyError", "builtins", "'custom'"],
      [
        "JSONDecodeError",
        "json.decoder",
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
      ],
      ["FileNotFoundError", "builtins", "[Errno 2] No such file: '/nope'"],
      ["ZeroDivisionError", "builtins", "division by zero"],
    ];
    for (const [i, [type, module, message]] of expect.entries()) {
      const g = got[i];
      assert.equal(g.wrapper, "parsl.app.errors.RemoteExceptionWrapper");
      assert.equal(g.type, type, JSON.stringify(g));
      assert.equal(g.module, module);
      assert.equal(g.message, message);
      assert.equal(g.executorType, type);
      // the remote frames: boom -> inner (-> json's own frames for x == 3)
      assert.deepEqual(g.frames[0].slice(0, 2), [F, "boom"], JSON.stringify(g.frames));
      assert.deepEqual(g.frames[1].slice(0, 2), [F, "inner"], JSON.stringify(g.frames));
      assert.equal(g.frames[0][2], SRC.split("\n").indexOf("    return inner(x)") + 1);
      assert.ok(g.frames.every(([f]) => !f.includes(PYTHON_WORKER_FILENAME)), "worker frames");
    }
    assert.equal(got[2].frames.at(-1)![1], "raw_decode");
    // a recursion too deep: the traceback keeps its first and last 50 frames
    const deep = got[5];
    assert.deepEqual([deep.type, deep.message], [
      "RecursionError",
      "maximum recursion depth exceeded",
    ]);
    assert.deepEqual(deep.frames[0].slice(0, 2), [F, "boom"]);
    assert.equal(deep.frames.length, 100);
    assert.deepEqual(deep.frames.at(-1)!.slice(0, 2), [F, "deep"]);
    // our readers still see the real names and the formatted traceback
    const mine = decodeRemoteException(results[1].exception!);
    assert.equal(mine.type, "MyError");
    assert.match(mine.traceback, /MyError: 'custom'\n$/);
  });
}

Deno.test("remote exceptions: the endpoint's and service's own wrappers re-raise upstream-style", async () => {
  const made = [
    remoteException("ManagerLost", "manager m1 on node1 lost", "Traceback: ManagerLost\n"),
    remoteException("ValueError", "made by the service", ""),
    remoteException("FunctionNotPermitted", "function f is not allowed on endpoint e", "", "e"),
  ];
  const got = await reraiseInUpstreamClient(made);
  assert.deepEqual(got.map((g) => [g.type, g.message, g.executorType]), [
    ["RuntimeError", "manager m1 on node1 lost", "RuntimeError"],
    ["ValueError", "made by the service", "ValueError"],
    ["RuntimeError", "function f is not allowed on endpoint e", "RuntimeError"],
  ]);
  assert.deepEqual(got[0].frames, [["<funcx-endpoint>", "ManagerLost", 1]]);
  assert.deepEqual(got[2].frames, [["<e>", "FunctionNotPermitted", 1]]);
  assert.deepEqual(decodeRemoteException(made[0]), {
    type: "ManagerLost",
    message: "manager m1 on node1 lost",
    traceback: "Traceback: ManagerLost\n",
  });
});
