/**
 * PBSProProvider: blocks are PBS Pro jobs (`qsub`), watched with
 * `qstat -x -f -F json` and cancelled with `qdel`. The launcher starts one manager per
 * node: `mpiexec -n N -ppn 1` (launcher `mpiexec`), `pbsdsh -u` (launcher `pbsdsh`),
 * or the command itself (`none`, and `srun` — the config default — which PBS has no
 * equivalent of). Submit scripts stay in `<endpoint>/submit_scripts/`.
 *
 * @example
 * ```ts
 * import { pbsScript } from "./pbs.ts";
 * pbsScript({ jobName: "funcx.default.0", nodes: 2, walltime: "01:00:00", queue: "debug",
 *   account: null, schedulerOptions: "", workerInit: "", launcher: "mpiexec",
 *   stdout: "/h/o", stderr: "/h/e", home: "/h", command: ["funcx-endpoint", "manager"] });
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

/** Input of {@linkcode pbsScript}. */
export interface PbsScriptInput extends BatchScriptInput {
  /** `-q` queue, when set. */
  queue: string | null;
}

/**
 * The qsub script of a block.
 *
 * @example
 * ```ts
 * pbsScript({ jobName: "j", nodes: 1, walltime: "00:10:00", queue: null, account: "A1",
 *   schedulerOptions: "", workerInit: "", launcher: "none", stdout: "/o", stderr: "/e",
 *   home: "/h", command: ["x"] }).includes("#PBS -A A1"); // true
 * ```
 */
export function pbsScript(i: PbsScriptInput): string {
  const secs = walltimeSeconds(i.walltime);
  const hh = String(Math.floor(secs / 3600)).padStart(2, "0");
  const mm = String(Math.floor((secs % 3600) / 60)).padStart(2, "0");
  const ss = String(secs % 60).padStart(2, "0");
  const d = (s: string) => `#PBS ${s}`;
  const lines = [
    "#!/bin/bash",
    "# funcx-endpoint block submit script (PBS Pro)",
    d(`-N ${i.jobName.slice(0, 236)}`),
    d(`-l select=${i.nodes}`),
    d(`-l place=scatter`),
    d(`-l walltime=${hh}:${mm}:${ss}`),
    d(`-o ${i.stdout}`),
    d(`-e ${i.stderr}`),
  ];
  if (i.queue) lines.push(d(`-q ${i.queue}`));
  if (i.account) lines.push(d(`-A ${i.account}`));
  lines.push(...schedulerLines(i.schedulerOptions, "#PBS"));
  const cmd = commandLine(i.command);
  let launch: string;
  if (i.launcher === "mpiexec") launch = `mpiexec -n ${i.nodes} -ppn 1 ${cmd}`;
  else if (i.launcher === "pbsdsh") launch = `pbsdsh -u -- ${cmd}`;
  else launch = cmd;
  lines.push(...scriptBody({ home: i.home, workerInit: i.workerInit, launch, env: i.env }));
  return lines.join("\n");
}

/**
 * The job id `qsub` printed (`1234.server`).
 *
 * @example
 * ```ts
 * parseQsub("1234.pbs01\n"); // "1234.pbs01"
 * ```
 */
export function parseQsub(stdout: string): string {
  const m = /^\s*(\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.-]+)?)\s*$/m.exec(stdout);
  if (!m) {
    throw new ProviderError(
      `qsub: cannot find a job id in its output: ${JSON.stringify(stdout.trim())}`,
    );
  }
  return m[1];
}

/**
 * Map a PBS job state letter (plus exit status for finished jobs) to a block state.
 *
 * @example
 * ```ts
 * pbsState("Q"); // { state: "PENDING", message: "" }
 * pbsState("F", -29); // { state: "FAILED", message: "walltime exceeded (exit status -29)" }
 * ```
 */
export function pbsState(letter: string, exitStatus?: number, comment = ""): JobStatus {
  const s = letter.trim().toUpperCase();
  if (["Q", "H", "W", "T", "S", "U", "M"].includes(s)) {
    return { state: "PENDING", message: comment };
  }
  if (["R", "E", "B"].includes(s)) return { state: "RUNNING", message: "" };
  if (s === "F" || s === "X" || s === "C") {
    if (exitStatus === undefined || exitStatus === 0) return { state: "COMPLETED", message: "" };
    if (exitStatus === -29) {
      return { state: "FAILED", message: `walltime exceeded (exit status ${exitStatus})` };
    }
    if (exitStatus === 271 || exitStatus === 265) {
      return { state: "CANCELLED", message: `killed (exit status ${exitStatus})` };
    }
    return {
      state: "FAILED",
      message: `exit status ${exitStatus}${comment ? `; ${comment}` : ""}`,
    };
  }
  return { state: "UNKNOWN", message: `unknown PBS state ${JSON.stringify(letter)}` };
}

/**
 * Parse `qstat -x -f -F json` output into job states.
 *
 * @example
 * ```ts
 * parseQstatJson('{"Jobs":{"1.s":{"job_state":"R"}}}').get("1.s"); // { state: "RUNNING", message: "" }
 * ```
 */
export function parseQstatJson(stdout: string): Map<string, JobStatus> {
  const out = new Map<string, JobStatus>();
  let doc: { Jobs?: Record<string, Record<string, unknown>> };
  try {
    // PBS prints some non-JSON numbers (e.g. "Exit_status":-29 is fine, but NaN is not).
    doc = JSON.parse(stdout.trim() || "{}");
  } catch {
    throw new ProviderError("qstat: output is not valid JSON");
  }
  for (const [id, job] of Object.entries(doc.Jobs ?? {})) {
    const letter = String(job.job_state ?? "");
    const exit = typeof job.Exit_status === "number" ? job.Exit_status : undefined;
    out.set(id, pbsState(letter, exit, typeof job.comment === "string" ? job.comment : ""));
  }
  return out;
}

/** Options of {@linkcode PBSProProvider}. */
export type PbsProviderOptions = BatchProviderOptions;

/** PBS Pro jobs as blocks. */
export class PBSProProvider extends BatchProvider {
  readonly label = "pbs";
  protected readonly submitCommand = "qsub";
  protected readonly cancelCommand = "qdel";
  protected readonly alreadyEnded = /Unknown Job Id|has finished|invalid state/i;

  protected script(common: BatchScriptInput): string {
    return pbsScript({ ...common, queue: this.opts.config.queue });
  }

  protected submitArgs(path: string): string[] {
    return [path];
  }

  protected parseJobId(stdout: string): string {
    return parseQsub(stdout);
  }

  /** States from `qstat -x -f -F json`; jobs qstat does not know are reported COMPLETED. */
  async status(jobIds: string[]): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    if (jobIds.length === 0) return out;
    const r = await this.run("qstat", ["-x", "-f", "-F", "json", ...jobIds]);
    // qstat exits non-zero when some ids are unknown but still prints the others.
    if (r.code !== 0 && !r.stdout.trim()) {
      if (!/Unknown Job Id/i.test(r.stderr)) throw new ProviderError(commandError("qstat", r));
    }
    const known = r.stdout.trim() ? parseQstatJson(r.stdout) : new Map<string, JobStatus>();
    for (const id of jobIds) {
      out.set(id, known.get(id) ?? { state: "COMPLETED", message: "job no longer known to PBS" });
    }
    return out;
  }
}
