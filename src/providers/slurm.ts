/**
 * SlurmProvider: blocks are Slurm batch jobs (`sbatch`), watched with `squeue` (then
 * `scontrol show job` / `sacct` for jobs that left the queue) and cancelled with
 * `scancel`. Each job runs one manager per node with `srun` (or directly for
 * `launcher: none`). Submit scripts and job output stay in `<endpoint>/submit_scripts/`.
 *
 * The parsing of every batch command's output is pure and exported for tests.
 *
 * @example
 * ```ts
 * import { SlurmProvider } from "./slurm.ts";
 * import { DEFAULT_ENDPOINT_CONFIG } from "../config/types.ts";
 * const p = new SlurmProvider({
 *   config: { ...DEFAULT_ENDPOINT_CONFIG.provider, type: "slurm", partition: "debug" },
 *   endpointDir: "/home/u/.funcx/default", home: "/home/u/.funcx",
 * });
 * const jobId = await p.submit({ blockId: "0", command: ["funcx-endpoint", "manager"], nodes: 1, walltime: "00:30:00" });
 * ```
 * @module
 */
import {
  BatchProvider,
  type BatchProviderOptions,
  type BatchScriptInput,
  commandLine,
  schedulerLines,
  scriptBody,
} from "./batch.ts";
import { commandError, type JobStatus, ProviderError, walltimeSeconds } from "./provider.ts";

export type { CommandRunner } from "./batch.ts";

/** Options of {@linkcode SlurmProvider}. */
export type SlurmProviderOptions = BatchProviderOptions;

/** Input of {@linkcode slurmScript}. */
export interface SlurmScriptInput extends BatchScriptInput {
  /** `--partition`, when set. */
  partition: string | null;
}

/**
 * The sbatch script of a block.
 *
 * @example
 * ```ts
 * slurmScript({ jobName: "funcx.default.0", nodes: 1, walltime: "00:10:00", partition: "debug",
 *   account: null, schedulerOptions: "", workerInit: "", launcher: "srun",
 *   stdout: "/h/ep/submit_scripts/b.out", stderr: "/h/ep/submit_scripts/b.err", home: "/h",
 *   command: ["funcx-endpoint", "manager"] }).includes("#SBATCH --partition=debug"); // true
 * ```
 */
export function slurmScript(i: SlurmScriptInput): string {
  walltimeSeconds(i.walltime); // validates
  const d = (s: string) => `#SBATCH ${s}`;
  const lines = [
    "#!/bin/bash",
    `# funcx-endpoint block submit script (Slurm)`,
    d(`--job-name=${i.jobName}`),
    d(`--nodes=${i.nodes}`),
    d(`--ntasks-per-node=1`),
    d(`--time=${i.walltime}`),
    d(`--output=${i.stdout}`),
    d(`--error=${i.stderr}`),
  ];
  if (i.partition) lines.push(d(`--partition=${i.partition}`));
  if (i.account) lines.push(d(`--account=${i.account}`));
  lines.push(...schedulerLines(i.schedulerOptions, "#SBATCH"));
  const cmd = commandLine(i.command);
  const launch = i.launcher === "none"
    ? cmd
    : `srun --nodes=${i.nodes} --ntasks=${i.nodes} --ntasks-per-node=1 ${cmd}`;
  lines.push(...scriptBody({ home: i.home, workerInit: i.workerInit, launch, env: i.env }));
  return lines.join("\n");
}

/**
 * The job id in `sbatch --parsable` output (`1234` or `1234;cluster`).
 *
 * @example
 * ```ts
 * parseSbatch("1234\n"); // "1234"
 * parseSbatch("Submitted batch job 77\n"); // "77"
 * ```
 */
export function parseSbatch(stdout: string): string {
  const t = stdout.trim();
  let m = /^(\d+(?:_\d+)?)(?:;\S+)?$/m.exec(t);
  if (m) return m[1];
  m = /Submitted batch job (\d+)/.exec(t);
  if (m) return m[1];
  throw new ProviderError(`sbatch: cannot find a job id in its output: ${JSON.stringify(t)}`);
}

/**
 * Map a Slurm job state (long or short form) to a block state and detail.
 *
 * @example
 * ```ts
 * slurmState("TIMEOUT"); // { state: "FAILED", message: "walltime exceeded (TIMEOUT)" }
 * slurmState("PD"); // { state: "PENDING", message: "" }
 * ```
 */
export function slurmState(raw: string): JobStatus {
  const s = raw.trim().toUpperCase().split(/[\s+]/)[0];
  const pending = [
    "PENDING",
    "PD",
    "CONFIGURING",
    "CF",
    "REQUEUED",
    "RQ",
    "REQUEUE_HOLD",
    "RH",
    "REQUEUE_FED",
    "RF",
    "RESIZING",
    "RS",
    "SUSPENDED",
    "S",
    "STOPPED",
    "ST",
    "SPECIAL_EXIT",
    "SE",
  ];
  const running = ["RUNNING", "R", "COMPLETING", "CG", "STAGE_OUT", "SO", "SIGNALING", "SI"];
  if (pending.includes(s)) return { state: "PENDING", message: "" };
  if (running.includes(s)) return { state: "RUNNING", message: "" };
  if (s === "COMPLETED" || s === "CD") return { state: "COMPLETED", message: "" };
  if (s === "CANCELLED" || s === "CA") return { state: "CANCELLED", message: "" };
  if (s === "TIMEOUT" || s === "TO") {
    return { state: "FAILED", message: "walltime exceeded (TIMEOUT)" };
  }
  const failed: Record<string, string> = {
    FAILED: "job failed",
    F: "job failed",
    NODE_FAIL: "node failure",
    NF: "node failure",
    BOOT_FAIL: "node boot failure",
    BF: "node boot failure",
    OUT_OF_MEMORY: "out of memory",
    OOM: "out of memory",
    DEADLINE: "deadline reached",
    DL: "deadline reached",
    PREEMPTED: "preempted",
    PR: "preempted",
    REVOKED: "revoked",
    RV: "revoked",
  };
  if (s in failed) return { state: "FAILED", message: `${failed[s]} (${s})` };
  return { state: "UNKNOWN", message: `unknown Slurm state ${JSON.stringify(raw.trim())}` };
}

/**
 * Parse `squeue --noheader --format=%i|%T|%r` output into job states.
 *
 * @example
 * ```ts
 * parseSqueue("12|PENDING|Resources\n13|RUNNING|None\n").get("12");
 * // { state: "PENDING", message: "Resources" }
 * ```
 */
export function parseSqueue(stdout: string): Map<string, JobStatus> {
  const out = new Map<string, JobStatus>();
  for (const line of stdout.split("\n")) {
    const parts = line.trim().split("|");
    if (parts.length < 2 || !parts[0]) continue;
    const st = slurmState(parts[1]);
    const reason = (parts[2] ?? "").trim();
    if (reason && reason !== "None" && reason !== "(null)") {
      st.message = st.message ? `${st.message}; ${reason}` : reason;
    }
    out.set(parts[0].trim(), st);
  }
  return out;
}

/**
 * Parse one-line `scontrol show job -o ID` output; `undefined` when it names no job.
 *
 * @example
 * ```ts
 * parseScontrolJob("JobId=5 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15");
 * // { id: "5", status: { state: "FAILED", message: "walltime exceeded (TIMEOUT); TimeLimit; exit code 0:15" } }
 * ```
 */
export function parseScontrolJob(stdout: string): { id: string; status: JobStatus } | undefined {
  const id = /\bJobId=(\d+)/.exec(stdout)?.[1];
  const state = /\bJobState=(\S+)/.exec(stdout)?.[1];
  if (!id || !state) return undefined;
  const status = slurmState(state);
  const notes: string[] = [];
  const reason = /\bReason=(\S+)/.exec(stdout)?.[1];
  if (reason && reason !== "None") notes.push(reason);
  const exit = /\bExitCode=(\S+)/.exec(stdout)?.[1];
  if (exit && exit !== "0:0" && status.state !== "PENDING" && status.state !== "RUNNING") {
    notes.push(`exit code ${exit}`);
  }
  if (notes.length) status.message = [status.message, ...notes].filter(Boolean).join("; ");
  return { id, status };
}

/**
 * Parse `sacct -n -X -P --format=JobID,State,ExitCode` output.
 *
 * @example
 * ```ts
 * parseSacct("7|CANCELLED by 0|0:15\n").get("7"); // { state: "CANCELLED", message: "" }
 * ```
 */
export function parseSacct(stdout: string): Map<string, JobStatus> {
  const out = new Map<string, JobStatus>();
  for (const line of stdout.split("\n")) {
    const [id, state, exit] = line.trim().split("|");
    if (!id || !state || id.includes(".")) continue;
    const st = slurmState(state);
    if (exit && exit !== "0:0" && st.state === "FAILED") st.message += `; exit code ${exit}`;
    out.set(id, st);
  }
  return out;
}

/** Slurm batch jobs as blocks. */
export class SlurmProvider extends BatchProvider {
  readonly label = "slurm";
  protected readonly submitCommand = "sbatch";
  protected readonly cancelCommand = "scancel";
  protected readonly alreadyEnded = /Invalid job id|already completing or completed/i;

  protected script(common: BatchScriptInput): string {
    return slurmScript({ ...common, partition: this.opts.config.partition });
  }

  protected submitArgs(path: string): string[] {
    return ["--parsable", path];
  }

  protected parseJobId(stdout: string): string {
    return parseSbatch(stdout);
  }

  /** States from squeue, then scontrol/sacct for jobs that left the queue. */
  async status(jobIds: string[]): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    if (jobIds.length === 0) return out;
    const q = await this.run("squeue", [
      "--noheader",
      "--me",
      "--states=all",
      "--format=%i|%T|%r",
    ]);
    if (q.code !== 0) throw new ProviderError(commandError("squeue", q));
    const queued = parseSqueue(q.stdout);
    const missing: string[] = [];
    for (const id of jobIds) {
      const s = queued.get(id);
      if (s) out.set(id, s);
      else missing.push(id);
    }
    if (missing.length === 0) return out;
    const stillMissing: string[] = [];
    for (const id of missing) {
      const r = await this.run("scontrol", ["show", "job", "-o", id]);
      const parsed = r.code === 0 ? parseScontrolJob(r.stdout) : undefined;
      if (parsed) out.set(id, parsed.status);
      else stillMissing.push(id);
    }
    if (stillMissing.length) {
      const r = await this.run("sacct", [
        "-n",
        "-X",
        "-P",
        "--format=JobID,State,ExitCode",
        "-j",
        stillMissing.join(","),
      ]).catch(() => undefined);
      const acct = r && r.code === 0 ? parseSacct(r.stdout) : new Map<string, JobStatus>();
      for (const id of stillMissing) {
        out.set(
          id,
          acct.get(id) ?? { state: "COMPLETED", message: "job no longer known to Slurm" },
        );
      }
    }
    return out;
  }
}
