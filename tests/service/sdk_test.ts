/**
 * The TypeScript SDK against the real service, with CPython as the reference executor:
 * task bodies the forwarder delivers are unpacked, unpickled and run by python3 exactly
 * like upstream's worker (`unpack_buffers`, base64 + `pickle.loads`, `exec` for `03`
 * source), and Python pickles the results and exceptions the SDK then decodes.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { FuncXClient, RemoteError, TaskPending } from "../../src/sdk/client.ts";
import { shellFunctionSource } from "../../src/sdk/shell.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { TestEndpoint } from "./_endpoint.ts";
import { rejectsWith, withService } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Upstream worker semantics, in Python (stdin: JSON lines {task_id, body}). */
const PY_WORKER = String.raw`
import sys, json, pickle, codecs, traceback, types

# a stand-in for parsl.app.errors so the exception wrapper pickles under upstream's name
parsl = types.ModuleType("parsl"); app = types.ModuleType("parsl.app")
errors = types.ModuleType("parsl.app.errors")
class RemoteExceptionWrapper:
    def __init__(self, e_type, e_value, tb):
        self.e_type = e_type; self.e_value = e_value; self.e_traceback = None
        self.formatted_traceback = "".join(traceback.format_exception(e_type, e_value, tb))
        self.exception_type = e_type.__name__; self.message = str(e_value)
RemoteExceptionWrapper.__module__ = "parsl.app.errors"
errors.RemoteExceptionWrapper = RemoteExceptionWrapper
sys.modules.update({"parsl": parsl, "parsl.app": app, "parsl.app.errors": errors})

def unpack_buffers(packed):
    out = []
    while packed:
        n, rest = packed.split("\n", 1)
        out.append(rest[:int(n)]); packed = rest[int(n):]
    return out

def deserialize(s):
    head, body = s[:3], s[3:]
    obj = pickle.loads(codecs.decode(body.encode(), "base64"))
    if head == "03\n":
        name, source = obj
        scope = {}
        exec(source, scope)
        return scope[name]
    assert head == "00\n", head
    return obj

def serialize(x):
    return "00\n" + codecs.encode(pickle.dumps(x), "base64").decode()

for line in sys.stdin:
    req = json.loads(line)
    fn, args, kwargs = [deserialize(b) for b in unpack_buffers(req["body"])]
    try:
        out = {"task_id": req["task_id"], "result": serialize(fn(*args, **kwargs))}
    except Exception as e:
        out = {"task_id": req["task_id"],
               "exception": serialize(RemoteExceptionWrapper(type(e), e, e.__traceback__))}
    print(json.dumps(out), flush=True)
`;

async function runInPython(
  tasks: { taskId: string; body: string }[],
): Promise<{ task_id: string; result?: string; exception?: string }[]> {
  const child = new Deno.Command("python3", {
    args: ["-c", PY_WORKER],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output(); // read while writing, or a full stdout pipe deadlocks
  const w = child.stdin.getWriter();
  const input = tasks.map((t) => JSON.stringify({ task_id: t.taskId, body: t.body })).join("\n");
  await w.write(new TextEncoder().encode(input + "\n"));
  await w.close();
  const out = await output;
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`python worker failed: ${err}`);
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

async function executeAll(ep: TestEndpoint, n: number) {
  const tasks = await ep.waitForTasks(n, 30_000);
  for (const r of await runInPython(tasks)) {
    await ep.sendResult(
      r.task_id,
      r.result !== undefined ? { result: r.result } : { exception: r.exception! },
    );
  }
}

Deno.test(
  "sdk: functions from source with args/kwargs run in CPython; results and exceptions decode",
  opts,
  async () => {
    await withService(async (t) => {
      const ep = await TestEndpoint.register(t.url, t.alice, "py");
      await ep.connect();
      await ep.waitConnected();
      const fx = new FuncXClient({ serviceAddress: t.url, token: () => t.alice });
      assertEquals((await fx.version()).api, "0.3.4");
      const fn = await fx.registerFunction(
        "def describe(a, b=2, *rest, scale=1.0, **kw):\n" +
          "    if a == 'boom':\n        raise ValueError('bad a: %r' % a)\n" +
          "    return {'sum': (a + b) * scale, 'rest': list(rest), 'kw': kw, 't': (a, None, True)}\n",
        "describe",
      );
      const epId = ep.reply.endpoint_id;
      const ids = await fx.submit([
        { functionId: fn, endpointId: epId, args: [1] },
        {
          functionId: fn,
          endpointId: epId,
          args: [1, 2, "x", 3.5],
          kwargs: { scale: 2, extra: [1, { k: "v" }] },
        },
        { functionId: fn, endpointId: epId, args: ["boom"] },
      ]);
      // nothing yet
      const pending = await rejectsWith(() => fx.getResult(ids[0]), TaskPending);
      assertEquals(pending.status, "waiting-for-nodes");
      await executeAll(ep, 3);
      const out = await fx.waitForResults(ids, { timeoutMs: 20_000 });
      assertEquals(
        JSON.stringify(out.get(ids[0])?.value),
        JSON.stringify({ sum: 3, rest: [], kw: {}, t: { items: [1, null, true] } }),
      );
      const v = out.get(ids[1])?.value as Record<string, unknown>;
      assertEquals(v.sum, 6);
      assertEquals(v.rest, ["x", 3.5]);
      assertEquals(JSON.stringify(v.kw), JSON.stringify({ extra: [1, { k: "v" }] }));
      const err = out.get(ids[2])?.error;
      assert(err instanceof RemoteError);
      assertEquals(err.type, "ValueError");
      assertEquals(err.remoteMessage, "bad a: 'boom'");
      match(err.remoteTraceback, /Traceback \(most recent call last\)/);
      match(err.remoteTraceback, /in describe/);
      await ep.close();
    });
  },
);

Deno.test(
  "sdk: shell functions return cmd/returncode/stdout/stderr; timeouts give 124",
  opts,
  async () => {
    await withService(async (t) => {
      const ep = await TestEndpoint.register(t.url, t.alice, "sh");
      await ep.connect();
      const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
      const echo = await fx.registerShellFunction('echo "hi {name}"; echo err >&2; exit 3');
      const slow = await fx.registerShellFunction("sleep 5; echo never", { timeout: 0.3 });
      const epId = ep.reply.endpoint_id;
      const ids = await fx.submit([
        { functionId: echo, endpointId: epId, kwargs: { name: 'Ada\'s "box"' } },
        { functionId: slow, endpointId: epId },
      ]);
      await executeAll(ep, 2);
      const out = await fx.waitForResults(ids, { timeoutMs: 20_000 });
      const a = out.get(ids[0])?.value as Record<string, unknown>;
      assertEquals(a.returncode, 3);
      assertEquals(a.stdout, "hi Ada's box\n");
      assertEquals(a.stderr, "err\n");
      assertEquals(a.cmd, 'echo "hi Ada\'s "box""; echo err >&2; exit 3');
      const b = out.get(ids[1])?.value as Record<string, unknown>;
      assertEquals(b.returncode, 124);
      match(String(b.stderr), /timed out after 0.3 s/);
      await ep.close();
    });
  },
);

Deno.test("sdk: shell function source validates its input", () => {
  for (const bad of ["", "   "]) {
    let msg = "";
    try {
      shellFunctionSource(bad);
    } catch (e) {
      msg = (e as Error).message;
    }
    match(msg, /cmd must be a non-empty command string/);
  }
  let msg = "";
  try {
    shellFunctionSource("ls", { timeout: -1 });
  } catch (e) {
    msg = (e as Error).message;
  }
  match(msg, /timeout must be a positive number/);
});

Deno.test("sdk: waitForResults polls 1000 tasks with few batch requests", opts, async () => {
  await withService(async (t) => {
    const ep = await TestEndpoint.register(t.url, t.alice, "bulk");
    await ep.connect();
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction("def sq(x):\n    return x * x\n", "sq");
    const n = 1000;
    const ids = await fx.submit(
      Array.from(
        { length: n },
        (_, i) => ({ functionId: fn, endpointId: ep.reply.endpoint_id, args: [i] }),
      ),
    );
    let calls = 0;
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      if (String(input).endsWith("/batch_status")) calls++;
      return realFetch(input, init);
    };
    try {
      const waiting = fx.waitForResults(ids, { timeoutMs: 60_000, chunk: 400 });
      await executeAll(ep, n);
      const out = await waiting;
      assertEquals(ids.map((id) => out.get(id)?.value), Array.from({ length: n }, (_, i) => i * i));
      assert(calls < 60, `too many batch_status calls: ${calls}`);
    } finally {
      globalThis.fetch = realFetch;
    }
    await ep.close();
  });
});

Deno.test("sdk: getTask with waitSeconds is answered when the result is stored", opts, async () => {
  await withService(async (t) => {
    const ep = await TestEndpoint.register(t.url, t.alice, "longpoll");
    await ep.connect();
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction("def f():\n    return 7\n", "f");
    const [id] = await fx.submit([{ functionId: fn, endpointId: ep.reply.endpoint_id }]);
    await ep.waitForTasks(1);
    // nothing stored yet: held for the whole wait, then still pending
    const t0 = performance.now();
    const early = await fx.getTask(id, { waitSeconds: 0.3 });
    assert(early.pending, "still pending");
    assert(performance.now() - t0 >= 250, "the answer was held");
    // the result arrives while a long poll waits: that poll answers with it
    const held = fx.getTask(id, { waitSeconds: 20 });
    await new Promise((r) => setTimeout(r, 100));
    await ep.sendResult(id, { result: serializeData(7) });
    const done = await held;
    assertEquals(done.pending, false);
    assertEquals(done.value, 7);
    // a bad wait is a clear 400 naming the parameter
    const res = await fetch(`${t.url}/tasks/${id}?wait=forever`, {
      headers: { authorization: `Bearer ${t.alice}` },
    });
    assertEquals(res.status, 400);
    match((await res.json()).reason, /wait must be a number of seconds from 0 to 30/);
    await ep.close();
  });
});
