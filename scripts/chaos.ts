/**
 * `deno task chaos [--rounds N] [--seed S] [--faults LIST] [--keep-home]`: run the real local
 * service and an endpoint, stream tasks, inject one fault per round (SIGKILLs at random and
 * chosen moments, the service's disk full, the daemon SIGSTOPped, TCP stalls, half-open
 * connections, resets, slow drips and partitions on both links; see `chaos/faults.ts`), and
 * check that every acknowledged task ends in exactly one final state. Prints the figures per
 * fault kind, then `rounds, tasks, succeeded, failed-with-reason, lost, duplicated, ...` last;
 * exits 1 when anything was lost, duplicated, wrong or stuck, or a component did not come
 * back (the funcX home is then kept and its path printed).
 *
 * @example
 * ```sh
 * deno task chaos --rounds 20 --seed 1 --faults all
 * deno task chaos --rounds 5 --faults fwd-stall,mgr-partition
 * ```
 * @module
 */
import { progress } from "../src/cli/progress.ts";
import { formatPerKind, formatReport, runChaos } from "./chaos/run.ts";
import { type FaultKind, parseFaultList } from "./chaos/faults.ts";

/** Parsed command line of the chaos script. */
export interface ChaosArgs {
  rounds: number;
  seed?: number;
  keepHome: boolean;
  faults?: FaultKind[];
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
    if (flag !== "--rounds" && flag !== "--seed" && flag !== "--faults") {
      throw new Error(
        `unknown option ${
          JSON.stringify(argv[i])
        }; valid: --rounds N, --seed S, --faults LIST, --keep-home`,
      );
    }
    if (value === undefined) value = argv[++i];
    if (flag === "--faults") {
      if (value === undefined || value === "") throw new Error("--faults: a list is required");
      out.faults = parseFaultList(value);
      continue;
    }
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
    faults: args.faults,
    log: (l) => {
      running.clear();
      console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)} ${l}`);
      const round = /^round (\d+):/.exec(l)?.[1];
      if (round) running.update(`round ${round} of ${args.rounds}`);
    },
  }).finally(() => running.done());
  console.log(`seed=${r.seed}, kills: ${r.kills.join(" ")}`);
  console.log(`failure reasons: ${JSON.stringify(r.reasons)}`);
  if (r.wrong > 0) console.log(`wrong=${r.wrong} (wrong value or failure without a clear reason)`);
  for (const ex of r.examples) console.log(`  ${ex}`);
  for (const p of r.problems) console.log(`problem: ${p}`);
  for (const line of formatPerKind(r)) console.log(line);
  if (r.homeKept) console.log(`home kept: ${r.home}`);
  console.log(`elapsed ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(formatReport(r));
  const bad = r.lost + r.duplicated + r.wrong + r.stuck + r.problems.length;
  Deno.exit(bad > 0 ? 1 : 0);
}
