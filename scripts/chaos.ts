/**
 * `deno task chaos [--rounds N] [--seed S] [--keep-home]`: run the real local service and an
 * endpoint, stream tasks, kill one component per round (service, endpoint daemon, manager,
 * worker) with SIGKILL at a random moment, and check that every task ends in exactly one
 * final state. Prints `rounds, tasks, succeeded, failed-with-reason, lost, duplicated` last;
 * exits 1 when anything was lost, duplicated or wrong, or a component did not come back.
 *
 * @example
 * ```sh
 * deno task chaos --rounds 20 --seed 1
 * ```
 * @module
 */
import { progress } from "../src/cli/progress.ts";
import { formatReport, runChaos } from "./chaos/run.ts";

/** Parsed command line of the chaos script. */
export interface ChaosArgs {
  rounds: number;
  seed?: number;
  keepHome: boolean;
}

/**
 * Parse `--rounds N`, `--seed S`, `--keep-home` (also `--rounds=N`). Throws a one-line error
 * naming the flag and what is valid.
 *
 * @example
 * ```ts
 * parseChaosArgs(["--rounds", "20"]); // { rounds: 20, keepHome: false }
 * ```
 */
export function parseChaosArgs(argv: string[]): ChaosArgs {
  const out: ChaosArgs = { rounds: 5, keepHome: false };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === "--keep-home") {
      out.keepHome = true;
      continue;
    }
    if (flag !== "--rounds" && flag !== "--seed") {
      throw new Error(
        `unknown option ${JSON.stringify(argv[i])}; valid: --rounds N, --seed S, --keep-home`,
      );
    }
    if (value === undefined) value = argv[++i];
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < (flag === "--rounds" ? 1 : 0)) {
      throw new Error(
        `${flag}: ${JSON.stringify(value ?? "")} is not ${
          flag === "--rounds" ? "a positive integer" : "a non-negative integer"
        }`,
      );
    }
    if (flag === "--rounds") out.rounds = n;
    else out.seed = n;
  }
  return out;
}

if (import.meta.main) {
  let args: ChaosArgs;
  try {
    args = parseChaosArgs(Deno.args);
  } catch (e) {
    console.error(`chaos: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const started = Date.now();
  const running = progress(`chaos: ${args.rounds} round(s)`);
  const r = await runChaos({
    rounds: args.rounds,
    seed: args.seed,
    keepHome: args.keepHome,
    log: (l) => {
      running.clear();
      console.log(l);
      const round = /^round (\d+):/.exec(l)?.[1];
      if (round) running.update(`round ${round} of ${args.rounds} done`);
    },
  }).finally(() => running.done());
  console.log(`seed=${r.seed}, kills: ${r.kills.join(" ")}`);
  console.log(`failure reasons: ${JSON.stringify(r.reasons)}`);
  if (r.wrong > 0) console.log(`wrong=${r.wrong} (wrong value or failure without a clear reason)`);
  for (const ex of r.examples) console.log(`  ${ex}`);
  for (const p of r.problems) console.log(`problem: ${p}`);
  if (args.keepHome) console.log(`home kept: ${r.home}`);
  console.log(`elapsed ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(formatReport(r));
  Deno.exit(r.lost > 0 || r.duplicated > 0 || r.wrong > 0 || r.problems.length > 0 ? 1 : 0);
}
