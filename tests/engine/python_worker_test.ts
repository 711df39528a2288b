import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeResult, packTask } from "../../src/protocol/messages.ts";
import { encodePickle, PyGlobal, PyTuple, type PyValue } from "../../src/protocol/pickle/mod.ts";
import {
  buildTaskPayload,
  decodeRemoteException,
  deserialize,
  packBuffers,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { encodeBase64Mime } from "../../src/protocol/base64.ts";
import { shellFunctionSource } from "../../src/sdk/shell.ts";
import { PYTHON_WORKER_FILENAME, PYTHON_WORKER_SOURCE } from "../../src/engine/python_worker.ts";

/** Whether `python3` (with the caller's PYTHONPATH) can import dill. */
const HAVE_DILL =
  (await new Deno.Command("python3", { args: ["-c", "import dill"], stderr: "null" })
    .output()).success;

/**
 * The oldest and newest CPython >= 3.8 installed under pyenv (if any), besides `python3`.
 * Interpreters are run directly, not through pyenv shims.
 */
async function otherPythons(): Promise<string[]> {
  const pyenv = Deno.env.get("PYENV_ROOT") ?? join(Deno.env.get("HOME") ?? "/root", ".pyenv");
  const versions: [number, string][] = [];
  try {
    for await (const e of Deno.readDir(join(pyenv, "versions"))) {
      const m = /^3\.(\d+)\.\d+$/.exec(e.name);
      const bin = join(pyenv, "versions", e.name, "bin", "python3");
      if (m && Number(m[1]) >= 8 && (await Deno.stat(bin).catch(() => null))) {
        versions.push([Number(m[1]), bin]);
      }
    }
  } catch { /* no pyenv */ }
  versions.sort((a, b) => a[0] - b[0]);
  const picks = new Set([versions[0]?.[1], versions.at(-1)?.[1]]);
  return [...picks].filter((p): p is string => !!p);
}

async function writeWorker(): Promise<{ dir: string; script: string }> {
  const dir = await Deno.makeTempDir({ prefix: "pyworker-" });
  const script = join(dir, PYTHON_WORKER_FILENAME);
  await Deno.writeTextFile(script, PYTHON_WORKER_SOURCE);
  return { dir, script };
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, 4);
  return out;
}

/** A running worker: send frames, receive result frames. */
class Worker {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = new Uint8Array(0);
  stderr: Promise<string>;

  constructor(script: string, env: Record<string, string> = {}, python = "python3") {
    this.#child = new Deno.Command(python, {
      args: ["-u", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.getReader();
    this.stderr = new Response(this.#child.stderr).text();
  }

  async sendRaw(bytes: Uint8Array) {
    await this.#writer.write(bytes);
  }

  async send(payload: Uint8Array) {
    await this.#writer.write(frame(payload));
  }

  /** Next result frame, or null at EOF. */
  async recv(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#buf.length >= 4) {
        const n = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0, false);
        if (this.#buf.length >= 4 + n) {
          const f = this.#buf.slice(4, 4 + n);
          this.#buf = this.#buf.slice(4 + n);
          return f;
        }
      }
      const { value, done } = await this.#reader.read();
      if (done) {
        assert.equal(this.#buf.length, 0, "stray bytes on the worker's stdout");
        return null;
      }
      const b = new Uint8Array(this.#buf.length + value.length);
      b.set(this.#buf);
      b.set(value, this.#buf.length);
      this.#buf = b;
    }
  }

  async close(): Promise<{ code: number; stderr: string }> {
    await this.#writer.close().catch(() => {});
    assert.equal(await this.recv(), null);
    const st = await this.#child.status;
    return { code: st.code, stderr: await this.stderr };
  }

  /** SIGKILL the worker; resolves to its signal and whatever it had written to stdout. */
  async kill(): Promise<{ signal: string | null; leftover: number }> {
    this.#child.kill("SIGKILL");
    const st = await this.#child.status;
    let leftover = this.#buf.length;
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      leftover += value.length;
    }
    await this.#writer.close().catch(() => {});
    await this.stderr;
    return { signal: st.signal, leftover };
  }
}

function task(id: string, fn: string, args: PyValue[] = [], kwargs: Record<string, PyValue> = {}) {
  return packTask(
    id,
    "RAW",
    buildTaskPayload(fn, serializeData(new PyTuple(args)), serializeData(kwargs)),
  );
}

async function run(w: Worker, payload: Uint8Array) {
  await w.send(payload);
  const f = await w.recv();
  assert.ok(f, "worker closed its stdout");
  return decodeResult(f);
}

const ADD = serializeSource(
  "add",
  "def add(a, b, *more, scale=1, **kw):\n    return {'sum': (a + b + sum(more)) * scale, 'kw': sorted(kw)}\n",
);

Deno.test("python worker: args/kwargs, several tasks on one process, times", async () => {
  const { dir, script } = await writeWorker();
  const w = new Worker(script);
  try {
    for (let i = 0; i < 5; i++) {
      const r = await run(w, task(`t${i}`, ADD, [i, 2, 3], { scale: 10, zz: null, aa: 1 }));
      assert.equal(r.task_id, `t${i}`);
      assert.equal(r.container_id, "RAW");
      assert.equal(r.exception, undefined);
      assert.deepEqual(deserialize(r.result!), { sum: (i + 5) * 10, kw: ["aa", "zz"] });
      assert.ok(r.times && r.times.execution_end >= r.times.execution_start);
    }
    const { code } = await w.close();
    assert.equal(code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: exceptions carry the remote traceback; SystemExit/KeyboardInterrupt survive", async () => {
  const { dir, script } = await writeWorker();
  const w = new Worker(script);
  try {
    const src = [
      "class MyError(Exception):",
      "    pass",
      "",
      "def inner(x):",
      "    if x == 1:",
      "        raise ValueError('bad x: %d' % x)",
      "    if x == 2:",
      "        raise MyError('custom failure')",
      "    if x == 3:",
      "        raise SystemExit(7)",
      "    if x == 4:",
      "        raise KeyboardInterrupt()",
      "    return 1 / 0",
      "",
      "def boom(x):",
      "    return inner(x)",
      "",
    ].join("\n");
    const fn = serializeSource("boom", src);
    const expect = [
      [1, "ValueError", "bad x: 1"],
      [2, "MyError", "custom failure"],
      [3, "SystemExit", "7"],
      [4, "KeyboardInterrupt", ""],
      [5, "ZeroDivisionError", "division by zero"],
    ] as const;
    for (const [x, type, message] of expect) {
      const r = await run(w, task(`e${x}`, fn, [x]));
      assert.equal(r.result, undefined);
      const e = decodeRemoteException(r.exception!);
      assert.equal(e.type, type);
      assert.equal(e.message, message);
      assert.match(e.traceback, /^Traceback \(most recent call last\):/);
      assert.match(e.traceback, /in boom\n/);
      assert.match(e.traceback, /File "<funcx function boom>", line \d+, in inner\n {4}\S/);
      assert.match(e.traceback, /\n {4}return inner\(x\)\n/); // source lines are shown
      assert.ok(
        e.traceback.trimEnd().endsWith(message ? `${type}: ${message}` : type),
        e.traceback,
      );
      assert.equal(e.traceback.includes(PYTHON_WORKER_FILENAME), false, e.traceback);
    }
    // the process is still serving
    const ok = await run(w, task("after", ADD, [1, 1]));
    assert.deepEqual(deserialize(ok.result!), { sum: 2, kw: [] });
    assert.equal((await w.close()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: user output never reaches the frame stream", async () => {
  const { dir, script } = await writeWorker();
  const w = new Worker(script);
  try {
    const src = [
      "import os, subprocess, sys",
      "def noisy():",
      "    print('printed by user code')",
      "    sys.stdout.write('written to sys.stdout\\n')",
      "    os.write(1, b'raw write to fd 1\\n')",
      "    subprocess.run('echo from a child process', shell=True)",
      "    try:",
      "        line = input()",
      "    except EOFError:",
      "        line = 'EOF'",
      "    return line",
      "",
    ].join("\n");
    const r = await run(w, task("noisy", serializeSource("noisy", src)));
    assert.equal(deserialize(r.result!), "EOF");
    const ok = await run(w, task("next", ADD, [2, 2]));
    assert.deepEqual(deserialize(ok.result!), { sum: 4, kw: [] });
    const { code, stderr } = await w.close();
    assert.equal(code, 0);
    for (
      const s of [
        "printed by user code",
        "written to sys.stdout",
        "raw write to fd 1",
        "from a child process",
      ]
    ) {
      assert.ok(stderr.includes(s), `${s} not in stderr: ${stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: shell function source from the SDK (DESIGN §6)", async () => {
  const { dir, script } = await writeWorker();
  const w = new Worker(script);
  try {
    const fn = serializeSource(
      "shell_function",
      shellFunctionSource("echo {greeting} $((6*7)); echo oops >&2; exit 3"),
    );
    const r = await run(w, task("sh1", fn, [], { greeting: "hello" }));
    assert.deepEqual(deserialize(r.result!), {
      cmd: "echo hello $((6*7)); echo oops >&2; exit 3",
      returncode: 3,
      stdout: "hello 42\n",
      stderr: "oops\n",
    });
    const slow = serializeSource(
      "shell_function",
      shellFunctionSource("exec sleep 30", { timeout: 0.3 }),
    );
    const t0 = performance.now();
    const r2 = await run(w, task("sh2", slow));
    assert.ok(performance.now() - t0 < 15_000);
    const v = deserialize(r2.result!) as Record<string, PyValue>;
    assert.equal(v.returncode, 124);
    assert.match(String(v.stderr), /timed out after 0.3 s/);
    assert.equal((await w.close()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: result size limit, serializer ids 00-04, unpicklable results", async () => {
  const { dir, script } = await writeWorker();
  const w = new Worker(script, { FUNCX_RESULT_SIZE_LIMIT: "1000" });
  try {
    const big = serializeSource("big", "def big(n):\n    return 'x' * n\n");
    const small = await run(w, task("s", big, [100]));
    assert.equal(deserialize(small.result!), "x".repeat(100));
    const r = await run(w, task("b", big, [5000]));
    const e = decodeRemoteException(r.exception!);
    assert.equal(e.type, "MaxResultSizeExceeded");
    assert.match(
      e.message,
      /^Task result of \d+ bytes exceeds the result size limit of 1000 bytes$/,
    );
    // 02: a function pickled by reference; 04: source like 03
    const sqrt = "02\n" + encodeBase64Mime(encodePickle(new PyGlobal("math", "sqrt")));
    assert.equal(deserialize((await run(w, task("p", sqrt, [16]))).result!), 4);
    const src04 = "04\n" + serializeSource("neg", "def neg(x):\n    return -x\n").slice(3);
    assert.equal(deserialize((await run(w, task("d", src04, [5]))).result!), -5);
    // 01 needs dill, which this python does not have
    if (!HAVE_DILL) {
      // 01 needs dill, which this python does not have
      const dill = "01\n" + encodeBase64Mime(encodePickle(new PyGlobal("math", "sqrt")));
      const noDill = decodeRemoteException((await run(w, task("dill", dill, [1]))).exception!);
      assert.equal(noDill.type, "DeserializationError");
      assert.match(noDill.message, /dill is not installed/);
    }
    const gen = serializeSource("gen", "def gen():\n    return (i for i in range(3))\n");
    const ser = decodeRemoteException((await run(w, task("g", gen))).exception!);
    assert.equal(ser.type, "SerializationError");
    assert.match(ser.message, /cannot pickle the result \(generator\)/);
    const missing = serializeSource("nothere", "def other():\n    pass\n");
    assert.match(
      decodeRemoteException((await run(w, task("m", missing))).exception!).message,
      /does not define 'nothere'/,
    );
    const syntax = decodeRemoteException(
      (await run(w, task("y", serializeSource("f", "def f(:\n")))).exception!,
    );
    assert.equal(syntax.type, "SyntaxError");
    assert.equal((await w.close()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: garbage frames get error results, broken streams end the process", async () => {
  const { dir, script } = await writeWorker();
  const enc = new TextEncoder();
  try {
    const w = new Worker(script);
    const junk: [Uint8Array, string, RegExp][] = [
      [new Uint8Array([0xff, 0, 1, 2]), "", /not a Task message/],
      [new Uint8Array(0), "", /not a Task message/],
      [enc.encode("\x05TID=abc;CID=RAW;3\nxyz"), "abc", /expected 3/],
      [enc.encode("\x05TID=abc;nope"), "abc", /TID=<id>;CID=<id>/],
      [packTask("bad-len", "RAW", "99\n00\nabc"), "bad-len", /declares 99 characters/],
      [
        packTask(
          "bad-hdr",
          "RAW",
          packBuffers(["zz\nabc", serializeData(tuple()), serializeData({})]),
        ),
        "bad-hdr",
        /invalid header/,
      ],
      [
        packTask("bad-b64", "RAW", packBuffers([ADD, "00\n!!!!", serializeData({})])),
        "bad-b64",
        /cannot unpickle args|base64/,
      ],
      [
        packTask("bad-args", "RAW", packBuffers([ADD, serializeData(3), serializeData({})])),
        "bad-args",
        /args is a int, not a tuple/,
      ],
      [new Uint8Array([5, 0x54, 0x49, 0x44, 0x3d, 0xff, 0x3b]), "\ufffd", /not UTF-8/],
    ];
    for (const [payload, tid, re] of junk) {
      const r = await run(w, payload);
      assert.equal(r.task_id, tid);
      const e = decodeRemoteException(r.exception!);
      assert.equal(e.type, "DeserializationError");
      assert.match(e.message, re);
    }
    assert.deepEqual(deserialize((await run(w, task("ok", ADD, [1, 2]))).result!), {
      sum: 3,
      kw: [],
    });
    // a length no task can have: the worker stops instead of waiting for 4 GiB
    await w.sendRaw(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    const end = await w.close();
    assert.equal(end.code, 3);
    assert.match(end.stderr, /exceeds/);
    // truncated frame then EOF
    const w2 = new Worker(script);
    await w2.sendRaw(new Uint8Array([0, 0, 0, 10, 5, 1]));
    const end2 = await w2.close();
    assert.equal(end2.code, 3);
    assert.match(end2.stderr, /truncated frame/);
    // bad arguments
    const bad = await new Deno.Command("python3", { args: [script, "--nope"], stderr: "piped" })
      .output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /bad arguments: unknown argument '--nope'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: --self-test and --bench", async () => {
  const { dir, script } = await writeWorker();
  try {
    const st = await new Deno.Command("python3", { args: [script, "--self-test"], stdout: "piped" })
      .output();
    assert.equal(st.code, 0);
    const info = JSON.parse(new TextDecoder().decode(st.stdout));
    assert.equal(info.ok, true);
    assert.equal(info.dill, HAVE_DILL);
    const file = join(dir, "task.bin");
    await Deno.writeFile(file, task("bench", ADD, [1, 2]));
    const b = await new Deno.Command("python3", {
      args: [script, "--bench", file, "2000"],
      stdout: "piped",
    }).output();
    assert.equal(b.code, 0);
    const r = JSON.parse(new TextDecoder().decode(b.stdout));
    assert.equal(r.tasks, 2000);
    assert.equal(r.ok, true);
    assert.ok(r.tasks_per_second > 100, JSON.stringify(r));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: killed mid-task, nothing was written to the frame stream", async () => {
  const { dir, script } = await writeWorker();
  const w = new Worker(script);
  try {
    await w.send(
      task("sleepy", serializeSource("s", "def s():\n    import time\n    time.sleep(30)\n")),
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await w.kill(), { signal: "SIGKILL", leftover: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("python worker: same results on the oldest and newest CPython 3.8+ found", async () => {
  const { dir, script } = await writeWorker();
  try {
    const pythons = ["python3", ...(await otherPythons())];
    const fn = serializeSource(
      "f",
      "def f(x, **kw):\n    if x < 0:\n        raise ValueError('negative')\n    return [x, kw]\n",
    );
    for (const py of pythons) {
      const w = new Worker(script, { FUNCX_RESULT_SIZE_LIMIT: "200" }, py);
      const ok = await run(w, task("a", fn, [2], { k: tuple(1.5) }));
      assert.deepEqual(deserialize(ok.result!), [2, { k: new PyTuple([1.5]) }], py);
      const err = decodeRemoteException((await run(w, task("b", fn, [-1]))).exception!);
      assert.deepEqual([err.type, err.message], ["ValueError", "negative"], py);
      assert.match(err.traceback, /in f\n/, py);
      const big = decodeRemoteException(
        (await run(w, task("c", fn, [1], { s: "x".repeat(500) }))).exception!,
      );
      assert.equal(big.type, "MaxResultSizeExceeded", py);
      assert.equal((await w.close()).code, 0, py);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "python worker: dill-serialized functions (id 01) when dill is installed",
  ignore: !HAVE_DILL,
  fn: async () => {
    const { dir, script } = await writeWorker();
    const w = new Worker(script);
    try {
      const fn = (await new Deno.Command("python3", {
        args: [
          "-c",
          "import base64, dill\ndef make(k):\n    return lambda x: x * k\nprint('01\\n' + base64.encodebytes(dill.dumps(make(3))).decode(), end='')",
        ],
        stdout: "piped",
      }).output()).stdout;
      const r = await run(w, task("dill", new TextDecoder().decode(fn), [14]));
      assert.equal(deserialize(r.result!), 42);
      assert.equal((await w.close()).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
