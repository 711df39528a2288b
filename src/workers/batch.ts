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
import { basename, join } from "node:path";
import { shellQuote } from "./provider.ts";

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
    "# worker_init",
    ...(o.workerInit.trim() ? o.workerInit.trimEnd().split("\n") : [":"]),
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
