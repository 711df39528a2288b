/**
 * Pieces shared by the batch-system providers: where submit scripts go, job names,
 * and the common script body (FUNCX_HOME, worker_init, the launcher line).
 *
 * @example
 * ```ts
 * import { jobName } from "./batch.ts";
 * jobName("/home/u/.funcx/my-ep", "3"); // "funcx.my-ep.3"
 * ```
 * @module
 */
import { outputTail } from "./tail.ts";
import { basename, join } from "node:path";
import type { ProviderConfig } from "../config/types.ts";
import {
  type BlockSpec,
  commandError,
  type CommandResult,
  type JobStatus,
  type Provider,
  ProviderError,
  runCommand,
  shellQuote,
} from "./provider.ts";

/** Runs a batch command (replaceable for unit tests of the provider logic). */
export type CommandRunner = (
  cmd: string,
  args: string[],
  opts?: { cwd?: string },
) => Promise<CommandResult>;

/** Options of a batch-system provider ({@linkcode BatchProvider}). */
export interface BatchProviderOptions {
  /** The endpoint's provider section. */
  config: ProviderConfig;
  /** `$FUNCX_HOME/<NAME>`. */
  endpointDir: string;
  /** `$FUNCX_HOME`, exported to the job. */
  home: string;
  /** Command runner (default: run the real batch commands). */
  run?: CommandRunner;
}

/** What every batch submit script gets (each system adds its own queue/partition field). */
export interface BatchScriptInput {
  /** Job name. */
  jobName: string;
  /** Nodes (one manager each). */
  nodes: number;
  /** Walltime `HH:MM:SS`. */
  walltime: string;
  /** Account, when set. */
  account: string | null;
  /** Extra lines; bare options get the system's directive prefix. */
  schedulerOptions: string;
  /** Shell run before the managers. */
  workerInit: string;
  /** How the manager command is started on the job's nodes. */
  launcher: ProviderConfig["launcher"];
  /** Job stdout file. */
  stdout: string;
  /** Job stderr file. */
  stderr: string;
  /** `FUNCX_HOME` exported to the job. */
  home: string;
  /** Manager command line. */
  command: string[];
  /** Extra environment exported before the launch line. */
  env?: Record<string, string>;
}

/**
 * A batch system as a {@linkcode Provider}: a block is one job whose script is written to
 * `submit_scripts/` and handed to the submit command; cancelling runs the cancel command and
 * ignores the system's "already ended" answers. Subclasses give the commands, the script and
 * the status query.
 *
 * @example
 * ```ts ignore
 * import { SlurmProvider } from "./slurm.ts";
 * const p = new SlurmProvider({ config, endpointDir: "/h/ep", home: "/h" });
 * const jobId = await p.submit(block); // writes submit_scripts/block-0-….sbatch, runs sbatch
 * ```
 */
export abstract class BatchProvider implements Provider {
  /** Provider name (`slurm`, `pbs`). */
  abstract readonly label: string;
  /** The options given at construction. */
  protected readonly opts: BatchProviderOptions;
  /** Runs the batch commands. */
  protected readonly run: CommandRunner;
  /** Submit command and file extension of its scripts (`sbatch`, `qsub`). */
  protected abstract readonly submitCommand: string;
  /** Cancel command (`scancel`, `qdel`). */
  protected abstract readonly cancelCommand: string;
  /** A cancel error matching this means the job had already ended (not an error). */
  protected abstract readonly alreadyEnded: RegExp;

  /** Output files of the jobs submitted, by job id (writeSubmitScript's naming). */
  #outputs = new Map<string, string[]>();

  /** Create a provider; nothing is submitted yet. */
  constructor(opts: BatchProviderOptions) {
    this.opts = opts;
    this.run = opts.run ?? runCommand;
  }

  /** The submit script of `block` (with the common fields already filled in). */
  protected abstract script(common: BatchScriptInput): string;
  /** Arguments of the submit command for the script at `path`. */
  protected abstract submitArgs(path: string): string[];
  /** The job id in the submit command's output. */
  protected abstract parseJobId(stdout: string): string;
  /** States of the jobs. */
  abstract status(jobIds: string[]): Promise<Map<string, JobStatus>>;

  /** Write the submit script to `submit_scripts/` and submit it; returns the job id. */
  async submit(block: BlockSpec): Promise<string> {
    const c = this.opts.config;
    const path = await writeSubmitScript(
      this.opts.endpointDir,
      block.blockId,
      this.submitCommand,
      (files) =>
        this.script({
          jobName: jobName(this.opts.endpointDir, block.blockId),
          nodes: block.nodes,
          walltime: block.walltime,
          account: c.account,
          schedulerOptions: c.scheduler_options,
          workerInit: c.worker_init,
          launcher: c.launcher,
          ...files,
          home: this.opts.home,
          command: block.command,
          env: block.env,
        }),
    );
    const r = await this.run(this.submitCommand, this.submitArgs(path), {
      cwd: this.opts.endpointDir,
    });
    if (r.code !== 0) throw new ProviderError(commandError(this.submitCommand, r));
    const jobId = this.parseJobId(r.stdout);
    const base = path.slice(0, path.length - this.submitCommand.length - 1);
    this.#outputs.set(jobId, [`${base}.stdout`, `${base}.stderr`]);
    if (this.#outputs.size > 1000) this.#outputs.delete(this.#outputs.keys().next().value!);
    return jobId;
  }

  /** The end of a job's stdout and stderr files (one line), "" when unknown or empty. */
  outputTail(jobId: string): string {
    const files = this.#outputs.get(jobId);
    return files ? outputTail(files) : "";
  }

  /** Cancel the jobs (jobs that already ended are not an error). */
  async cancel(jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    const r = await this.run(this.cancelCommand, jobIds);
    if (r.code !== 0 && !this.alreadyEnded.test(r.stderr)) {
      throw new ProviderError(commandError(this.cancelCommand, r));
    }
  }
}

/**
 * The job name of a block: `funcx.<endpoint name>.<block id>` (safe characters only).
 *
 * @example
 * ```ts
 * jobName("/h/default", "0"); // "funcx.default.0"
 * ```
 */
export function jobName(endpointDir: string, blockId: string): string {
  const name = basename(endpointDir).replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40);
  return `funcx.${name}.${blockId}`;
}

/** Where a block's job output goes, given to the script builder of {@linkcode writeSubmitScript}. */
export interface JobOutputFiles {
  /** `submit_scripts/block-<id>-<ms>.stdout`. */
  stdout: string;
  /** `submit_scripts/block-<id>-<ms>.stderr`. */
  stderr: string;
}

/**
 * Write a block's submit script to `<endpointDir>/submit_scripts/block-<id>-<ms>.<ext>` (kept
 * for the user to read, mode 0700) and return its path; `build` gets the job's output files.
 *
 * @example
 * ```ts
 * const path = await writeSubmitScript("/h/default", "0", "sbatch", (f) => `#!/bin/bash\n#SBATCH -o ${f.stdout}\n`);
 * ```
 */
export async function writeSubmitScript(
  endpointDir: string,
  blockId: string,
  ext: string,
  build: (files: JobOutputFiles) => string,
): Promise<string> {
  const dir = join(endpointDir, "submit_scripts");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const base = join(dir, `block-${blockId}-${Date.now()}`);
  const path = `${base}.${ext}`;
  await Deno.writeTextFile(path, build({ stdout: `${base}.stdout`, stderr: `${base}.stderr` }), {
    mode: 0o700,
  });
  return path;
}

/**
 * The lines of `scheduler_options` that are not blank, with the directive prefix added
 * to lines that do not start with `#` (so `--mem=4G` becomes `#SBATCH --mem=4G`).
 *
 * @example
 * ```ts
 * schedulerLines("--mem=4G\n#SBATCH --exclusive\n", "#SBATCH"); // ["#SBATCH --mem=4G", "#SBATCH --exclusive"]
 * ```
 */
export function schedulerLines(options: string, prefix: string): string[] {
  return options.split("\n").map((l) => l.trim()).filter(Boolean).map((l) =>
    l.startsWith("#") ? l : `${prefix} ${l}`
  );
}

/**
 * The body every submit script shares: environment, `worker_init`, then the launch line.
 *
 * @example
 * ```ts
 * scriptBody({ home: "/h", workerInit: "module load python", launch: "srun x" });
 * ```
 */
export function scriptBody(
  o: { home: string; workerInit: string; launch: string; env?: Record<string, string> },
): string[] {
  const exports = Object.entries(o.env ?? {}).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  const lines = [
    "",
    `export FUNCX_HOME=${shellQuote(o.home)}`,
    ...exports,
    "",
    "# worker_init; if it ends the script, the job's error output says so (shown by `status`)",
    `trap 'echo "funcx-endpoint: worker_init ended the job script with exit code $?" >&2' EXIT`,
    ...(o.workerInit.trim() ? o.workerInit.trimEnd().split("\n") : [":"]),
    "trap - EXIT",
    "",
    "# one manager per node",
    o.launch,
    "",
  ];
  return lines;
}

/**
 * A command line as a shell string.
 *
 * @example
 * ```ts
 * commandLine(["deno", "run", "a b.ts"]); // "deno run 'a b.ts'"
 * ```
 */
export function commandLine(argv: string[]): string {
  return argv.map(shellQuote).join(" ");
}
