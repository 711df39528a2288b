/**
 * LocalProvider: each block is one manager subprocess on this host.
 *
 * Managers are started with the given command (normally `selfCommand()` + `manager ...`)
 * and env `FUNCX_HOME` (after `worker_init`, run by bash, when configured); they stay in
 * the daemon's process group, so a SIGKILL of the group takes them too. Their
 * stdout/stderr go to `<worker_logs>/<block>/manager.stdio`.
 * Job ids are `local-<pid>`.
 *
 * @example
 * ```ts
 * import { LocalProvider } from "./local.ts";
 * const p = new LocalProvider({ home: "/home/u/.funcx", logDir: "/home/u/.funcx/ep/worker_logs" });
 * const id = await p.submit({ blockId: "0", command: ["python3", "-c", "pass"], nodes: 1, walltime: "00:01:00" });
 * await p.cancel([id]);
 * ```
 * @module
 */
import { outputTail } from "./tail.ts";
import { join } from "node:path";
import { commandLine } from "./batch.ts";
import { type BlockSpec, type JobStatus, type Provider, ProviderError } from "./provider.ts";

interface _Job {
  child: Deno.ChildProcess;
  status: JobStatus;
  cancelled: boolean;
  exited: Promise<void>;
}

/** Options of {@linkcode LocalProvider}. */
export interface LocalProviderOptions {
  /** The funcX home, passed to managers as `FUNCX_HOME`. */
  home: string;
  /** `<endpoint>/worker_logs`; each block logs under `<logDir>/<blockId>/`. */
  logDir: string;
  /** Shell lines run (with bash) before the manager, like a batch script's `worker_init`. */
  workerInit?: string;
  /** Seconds between SIGTERM and SIGKILL on cancel (default 5). */
  killGraceSeconds?: number;
  /**
   * Seconds to wait for a manager to exit by itself (the interchange sends it SHUTDOWN
   * before cancelling) before SIGTERM (default 2).
   */
  exitGraceSeconds?: number;
}

/** Runs blocks as local subprocesses. */
export class LocalProvider implements Provider {
  readonly label = "local";
  #opts: LocalProviderOptions;
  #jobs = new Map<string, _Job>();
  #dirs = new Map<string, string>();

  /** Create a provider; nothing is started yet. */
  constructor(opts: LocalProviderOptions) {
    this.#opts = opts;
  }

  /** Start the block's command; resolves with `local-<pid>`. */
  async submit(block: BlockSpec): Promise<string> {
    if (block.command.length === 0) throw new ProviderError("local: empty command");
    const dir = join(this.#opts.logDir, block.blockId);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    let child: Deno.ChildProcess;
    const init = this.#opts.workerInit?.trim();
    // With worker_init, bash runs it and then execs the manager (same pid).
    const argv = init
      ? ["bash", "-c", `${init}\nexec ${commandLine(block.command)}`]
      : block.command;
    try {
      child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        env: { ...block.env, FUNCX_HOME: this.#opts.home },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      throw new ProviderError(`local: cannot start ${block.command[0]}: ${(e as Error).message}`);
    }
    const jobId = `local-${child.pid}`;
    const out = await Deno.open(join(dir, "manager.stdio"), {
      create: true,
      append: true,
      mode: 0o600,
    });
    const copy = Promise.allSettled([
      _copy(child.stdout, out),
      _copy(child.stderr, out),
    ]).finally(() => out.close());
    const job: _Job = {
      child,
      status: { state: "RUNNING", message: "" },
      cancelled: false,
      exited: Promise.resolve(),
    };
    job.exited = child.status.then(async (s) => {
      // A process left behind by worker_init may hold the output pipe open for long: the
      // block has ended when its own process has; its output is kept for a moment, not waited for.
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([copy, new Promise((r) => grace = setTimeout(r, 2000))]);
      clearTimeout(grace);
      if (job.cancelled) job.status = { state: "CANCELLED", message: "" };
      else if (s.success) job.status = { state: "COMPLETED", message: "" };
      else {
        job.status = {
          state: "FAILED",
          message: s.signal ? `killed by signal ${s.signal}` : `exit code ${s.code}`,
        };
      }
    });
    this.#jobs.set(jobId, job);
    this.#dirs.set(jobId, dir);
    return jobId;
  }

  /** The end of a block's `manager.stdio` (one line), "" when unknown or empty. */
  outputTail(jobId: string): string {
    const dir = this.#dirs.get(jobId);
    return dir ? outputTail([join(dir, "manager.stdio")]) : "";
  }

  /** States of local jobs; ids this provider never started are `UNKNOWN`. */
  status(jobIds: string[]): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    for (const id of jobIds) {
      out.set(id, this.#jobs.get(id)?.status ?? { state: "UNKNOWN", message: "unknown job" });
    }
    return Promise.resolve(out);
  }

  /**
   * Wait briefly for a clean exit, then SIGTERM, then SIGKILL after the grace period;
   * resolves when the processes exited.
   */
  async cancel(jobIds: string[]): Promise<void> {
    const grace = (this.#opts.killGraceSeconds ?? 5) * 1000;
    const exitGrace = (this.#opts.exitGraceSeconds ?? 2) * 1000;
    await Promise.all(jobIds.map(async (id) => {
      const job = this.#jobs.get(id);
      if (!job || job.status.state !== "RUNNING") return;
      job.cancelled = true;
      let wait: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        job.exited,
        new Promise<void>((resolve) => (wait = setTimeout(resolve, exitGrace))),
      ]);
      clearTimeout(wait);
      if (job.status.state !== "RUNNING") return;
      _kill(job.child, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          _kill(job.child, "SIGKILL");
          resolve();
        }, grace);
      });
      await Promise.race([job.exited, killed]);
      clearTimeout(timer);
      await job.exited;
    }));
  }
}

function _kill(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch {
    // already exited
  }
}

async function _copy(src: ReadableStream<Uint8Array>, dst: Deno.FsFile): Promise<void> {
  for await (const chunk of src) {
    let off = 0;
    while (off < chunk.byteLength) off += await dst.write(chunk.subarray(off));
  }
}
