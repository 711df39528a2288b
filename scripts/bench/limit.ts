/**
 * Figure (1), the ceiling: the embedded Python worker's own code (`run_task`: unpack the
 * Task message, deserialize, call, serialize the result dict) in a plain loop, in W
 * python3 processes at once. The processes import the written worker file, start their
 * loops together on a signal (interpreter start-up is not counted), and report their
 * loop times; tasks/s = all tasks / the slowest loop.
 *
 * @example
 * ```ts
 * import { LimitRunner } from "./limit.ts";
 * const lim = await LimitRunner.start(4);
 * (await lim.measure({ workers: 2, tasks: 20_000 })).tasksPerSecond;
 * await lim.close();
 * ```
 * @module
 */
import { join } from "node:path";
import { packTask } from "../../src/protocol/messages.ts";
import { PYTHON_WORKER_FILENAME, PYTHON_WORKER_SOURCE } from "../../src/engine/python_worker.ts";
import { noopTaskBody } from "./_util.ts";

/** Result of {@linkcode LimitRunner.measure}. */
export interface LimitResult {
  workers: number;
  sleepMs: number;
  /** Tasks per process. */
  tasksPerWorker: number;
  /** All tasks / the longest loop time (the loops run at the same time). */
  tasksPerSecond: number;
}

// Imports the worker file as a module and runs its run_task() in a loop on request:
// stdin "RUN <file> <n>" -> stdout {"seconds": s, "ok": bool}.
const _DRIVER = `
import importlib.util, json, pickle, sys, time
spec = importlib.util.spec_from_file_location("funcx_worker", sys.argv[1])
w = importlib.util.module_from_spec(spec)
spec.loader.exec_module(w)
limit = w.DEFAULT_RESULT_SIZE_LIMIT
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    _, path, n = line.split()
    with open(path, "rb") as f:
        payload = f.read()
    ok = "result" in pickle.loads(w.run_task(payload, limit))
    t0 = time.perf_counter()
    for _ in range(int(n)):
        w.run_task(payload, limit)
    print(json.dumps({"seconds": time.perf_counter() - t0, "ok": ok}), flush=True)
`;

interface _Proc {
  child: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  lines: AsyncIterator<string>;
}

/** A pool of python3 processes running the worker code on request. */
export class LimitRunner {
  #dir: string;
  #procs: _Proc[];
  #files = new Map<number, string>();

  private constructor(dir: string, procs: _Proc[]) {
    this.#dir = dir;
    this.#procs = procs;
  }

  /**
   * Write the worker file and start `maxWorkers` python3 processes that import it.
   *
   * @example
   * ```ts
   * const lim = await LimitRunner.start(4);
   * ```
   */
  static async start(maxWorkers: number, python = "python3"): Promise<LimitRunner> {
    const dir = Deno.makeTempDirSync({ prefix: "fx-bench-limit-" });
    const worker = join(dir, PYTHON_WORKER_FILENAME);
    Deno.writeTextFileSync(worker, PYTHON_WORKER_SOURCE);
    const driver = join(dir, "driver.py");
    Deno.writeTextFileSync(driver, _DRIVER);
    const procs: _Proc[] = [];
    for (let i = 0; i < maxWorkers; i++) {
      const child = new Deno.Command(python, {
        args: ["-u", driver, worker],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
        _lineSplitter(),
      )[Symbol.asyncIterator]();
      procs.push({ child, writer: child.stdin.getWriter(), lines });
    }
    const r = new LimitRunner(dir, procs);
    for (const p of procs) await r.#read(p);
    return r;
  }

  /**
   * Run `tasks` no-op tasks (body sleeping `sleepMs`) spread over the first `workers`
   * processes, all loops started at once.
   *
   * @example
   * ```ts ignore
   * await lim.measure({ workers: 1, tasks: 2000 });
   * ```
   */
  async measure(opts: { workers: number; tasks: number; sleepMs?: number }): Promise<LimitResult> {
    const sleepMs = opts.sleepMs ?? 0;
    if (opts.workers > this.#procs.length) {
      throw new Error(
        `bench: limit runner has ${this.#procs.length} processes, ${opts.workers} asked`,
      );
    }
    let file = this.#files.get(sleepMs);
    if (!file) {
      file = join(this.#dir, `task-${sleepMs}.bin`);
      Deno.writeFileSync(file, packTask(crypto.randomUUID(), "RAW", noopTaskBody(sleepMs)));
      this.#files.set(sleepMs, file);
    }
    const per = Math.max(1, Math.ceil(opts.tasks / opts.workers));
    const procs = this.#procs.slice(0, opts.workers);
    const cmd = new TextEncoder().encode(`RUN ${file} ${per}\n`);
    await Promise.all(procs.map((p) => p.writer.write(cmd)));
    const outs = await Promise.all(procs.map((p) => this.#read(p)));
    const seconds = outs.map((o, i) => {
      if (!o.ok) throw new Error(`bench: limit process ${i}: the no-op task did not succeed`);
      return Number(o.seconds);
    });
    return {
      workers: opts.workers,
      sleepMs,
      tasksPerWorker: per,
      tasksPerSecond: (per * opts.workers) / Math.max(...seconds),
    };
  }

  /** End the processes and remove the files. */
  async close(): Promise<void> {
    for (const p of this.#procs) await p.writer.close().catch(() => {});
    for (const p of this.#procs) await p.child.status;
    Deno.removeSync(this.#dir, { recursive: true });
  }

  async #read(p: _Proc): Promise<Record<string, unknown>> {
    const r = await p.lines.next();
    if (r.done) throw new Error("bench: a limit process exited early (see its stderr above)");
    return JSON.parse(r.value);
  }
}

function _lineSplitter(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctl) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        ctl.enqueue(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
    flush(ctl) {
      if (buf) ctl.enqueue(buf);
    },
  });
}
