/**
 * Figure (1), the ceiling: the embedded Python worker's own `--bench` loop (the same
 * unpack/deserialize/call/serialize path as when serving) over one no-op Task message,
 * run in W python3 processes at once. Tasks/s = sum of the per-process rates.
 *
 * @example
 * ```ts
 * import { measureLimit } from "./limit.ts";
 * const r = await measureLimit({ workers: 2, tasks: 20_000 });
 * r.tasksPerSecond;
 * ```
 * @module
 */
import { join } from "node:path";
import { packTask } from "../../src/protocol/messages.ts";
import { PYTHON_WORKER_FILENAME, PYTHON_WORKER_SOURCE } from "../../src/workers/python_worker.ts";
import { noopTaskBody } from "./_util.ts";

/** Result of {@linkcode measureLimit}. */
export interface LimitResult {
  workers: number;
  /** Tasks per process. */
  tasksPerWorker: number;
  /** All tasks / the longest per-process loop time (the loops run at the same time). */
  tasksPerSecond: number;
  /** Per-process rates. */
  perWorker: number[];
}

/**
 * Run the worker's `--bench FILE N` loop in `workers` processes in parallel, each over
 * `tasks / workers` copies of a no-op task (`sleepMs` body).
 *
 * @example
 * ```ts
 * await measureLimit({ workers: 1, tasks: 2000 });
 * ```
 */
export async function measureLimit(
  opts: { workers: number; tasks: number; sleepMs?: number; python?: string },
): Promise<LimitResult> {
  const dir = Deno.makeTempDirSync({ prefix: "fx-bench-limit-" });
  try {
    const worker = join(dir, PYTHON_WORKER_FILENAME);
    Deno.writeTextFileSync(worker, PYTHON_WORKER_SOURCE);
    const taskFile = join(dir, "task.bin");
    Deno.writeFileSync(
      taskFile,
      packTask(crypto.randomUUID(), "RAW", noopTaskBody(opts.sleepMs ?? 0)),
    );
    const per = Math.max(1, Math.ceil(opts.tasks / opts.workers));
    const runs = Array.from(
      { length: opts.workers },
      () =>
        new Deno.Command(opts.python ?? "python3", {
          args: ["-u", worker, "--bench", taskFile, String(per)],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output(),
    );
    const outs = await Promise.all(runs);
    const seconds = outs.map((o, i) => {
      const text = new TextDecoder().decode(o.stdout).trim();
      if (!o.success) {
        throw new Error(
          `bench: limit worker ${i} failed (exit ${o.code}): ${
            new TextDecoder().decode(o.stderr).trim().split("\n").pop()
          }`,
        );
      }
      const r = JSON.parse(text) as { seconds: number; ok: boolean };
      if (!r.ok) throw new Error(`bench: limit worker ${i}: the no-op task did not succeed`);
      return r.seconds;
    });
    return {
      workers: opts.workers,
      tasksPerWorker: per,
      tasksPerSecond: (per * opts.workers) / Math.max(...seconds),
      perWorker: seconds.map((s) => per / s),
    };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
