/**
 * The provider interface: how blocks (batch jobs or local process groups) running
 * managers are submitted, watched and cancelled.
 *
 * Implementations: `local.ts` (manager subprocesses on this host), `slurm.ts`
 * (`sbatch`/`squeue`/`sacct`/`scancel`) and `pbs.ts` (`qsub`/`qstat`/`qdel`).
 *
 * @example
 * ```ts
 * import type { Provider } from "./provider.ts";
 * async function launch(p: Provider) {
 *   const jobId = await p.submit({ blockId: "0", command: ["funcx-endpoint", "manager"], nodes: 1, walltime: "00:10:00" });
 *   const st = await p.status([jobId]);
 *   console.log(st.get(jobId)?.state);
 *   await p.cancel([jobId]);
 * }
 * ```
 * @module
 */

/** State of a block as reported in `status.json` (§5 of DESIGN.md). */
export type JobState = "PENDING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED" | "UNKNOWN";

/** The job states in which a block still holds (or will hold) resources. */
export const ACTIVE_STATES: ReadonlySet<JobState> = new Set(["PENDING", "RUNNING", "UNKNOWN"]);

/**
 * True when a job in `state` will not run (any more).
 *
 * @example
 * ```ts
 * isTerminal("FAILED"); // true
 * isTerminal("PENDING"); // false
 * ```
 */
export function isTerminal(state: JobState): boolean {
  return !ACTIVE_STATES.has(state);
}

/** What to run in a new block. */
export interface BlockSpec {
  /** Our block id ("0", "1", ...). */
  blockId: string;
  /** The manager command line (argv); batch providers run one per node. */
  command: string[];
  /** Extra environment for the command (exported by the submit script for batch jobs). */
  env?: Record<string, string>;
  /** Nodes in the block. */
  nodes: number;
  /** Walltime `HH:MM:SS` (batch providers). */
  walltime: string;
}

/** Status of one job. */
export interface JobStatus {
  /** Block state. */
  state: JobState;
  /** Human-readable detail (reason, exit code, "walltime exceeded" ...); may be empty. */
  message: string;
}

/** A resource provider (DESIGN.md §6). */
export interface Provider {
  /** Short name for logs and status: "local", "slurm", "pbs". */
  readonly label: string;
  /** Submit a block; resolves with the job id or rejects with {@linkcode ProviderError}. */
  submit(block: BlockSpec): Promise<string>;
  /**
   * The end of a job's output (stdout and stderr), one line (`a | b | c`), for `status` when a
   * block fails; optional.
   */
  outputTail?(jobId: string): string;
  /** Status of the given jobs (jobs the batch system forgot are `UNKNOWN` or final). */
  status(jobIds: string[]): Promise<Map<string, JobStatus>>;
  /** Cancel jobs; never throws for jobs that already ended. */
  cancel(jobIds: string[]): Promise<void>;
}

/**
 * A provider operation failed; `message` carries the batch system's own words.
 *
 * @example
 * ```ts
 * throw new ProviderError("sbatch failed (exit 1): sbatch: error: invalid partition specified: nope");
 * ```
 */
export class ProviderError extends Error {
  /** `message` carries the batch system's own words. */
  constructor(message: string) {
    super(message);
    this.name = "ProviderError";
  }
}

/**
 * Quote one word for a POSIX shell.
 *
 * @example
 * ```ts
 * shellQuote("a b"); // "'a b'"
 * shellQuote("plain-word_1"); // "plain-word_1"
 * ```
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Parse a walltime `HH:MM:SS` (or `MM:SS`, `D-HH:MM:SS`) into seconds; throws a clear error.
 *
 * @example
 * ```ts
 * walltimeSeconds("01:00:00"); // 3600
 * walltimeSeconds("1-00:00:10"); // 86410
 * ```
 */
export function walltimeSeconds(walltime: string): number {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(walltime.trim());
  if (!m) throw new ProviderError(`walltime "${walltime}" is invalid; expected HH:MM:SS`);
  const [, d, h, mi, s] = m;
  return Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(mi) * 60 + Number(s);
}

/** Output of a batch command run by {@linkcode runCommand}. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
}

/**
 * Run a batch-system command without a shell; a missing program becomes a clear error.
 *
 * @example
 * ```ts
 * const r = await runCommand("squeue", ["--noheader", "-j", "12"]);
 * if (r.code !== 0) console.error(r.stderr);
 * ```
 */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<CommandResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ProviderError(`${cmd}: command not found (is the batch system installed?)`);
    }
    throw new ProviderError(`${cmd}: ${(e as Error).message}`);
  }
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * One line describing a failed command: its name, exit code and stderr (or stdout).
 *
 * @example
 * ```ts
 * commandError("sbatch", { code: 1, stdout: "", stderr: "sbatch: error: bad\n" });
 * // "sbatch failed (exit 1): sbatch: error: bad"
 * ```
 */
export function commandError(cmd: string, r: CommandResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split("\n").map((l) => l.trim())
    .filter(Boolean).join("; ");
  return `${cmd} failed (exit ${r.code})${text ? `: ${text}` : ""}`;
}
