/**
 * Put a benchmark table into the `## Performance` section of a README (only that
 * section is replaced; everything before and after it is kept byte for byte).
 *
 * @example
 * ```sh
 * deno run -A scripts/bench/readme.ts README.md bench/results.md && deno fmt README.md
 * ```
 * @module
 */

const _HOW = [
  "How to reproduce (on loopback, nothing else needed than the checkout, `python3` and the",
  "`deno` on PATH): `deno task bench` (full: 20,000 tasks, 500 latency samples, a few",
  "minutes) or `deno task bench --quick` (2,000 tasks / 200 samples, under 2 minutes on an",
  "idle 2-core machine). It prints the table and writes `bench/results.json` (every figure,",
  "ratio, CPU µs per task per process, pass/fail against the targets) and `bench/results.md`.",
  "`--workers N` changes W, `--prefetch N` the endpoint's `executor.prefetch_capacity`,",
  "`--binary dist/funcx-endpoint` runs the endpoint from the compiled executable instead of",
  "`deno run main.ts`.",
  "",
  "What is measured: (1) the embedded Python worker's own code in a plain loop in W python3",
  "processes (the ceiling); (2) and (7) the real endpoint daemon (`start --foreground`, local",
  "provider, W python3 workers) fed by a test-side forwarder — real ZeroMQ ROUTERs with CURVE",
  "speaking the upstream protocol, no database — counting and acking results; (3)–(5) the",
  "real local service (HTTP API, forwarder, SQLite), a user logged in through the PKCE form,",
  "the endpoint started with `start`, tasks submitted and fetched with the SDK client;",
  "(6) VmRSS / VmHWM from `/proc/<pid>/status`. Timings live only in the benchmark, never in",
  "tests. Figures depend heavily on other load on the machine: the load average is recorded.",
  "",
  "Where the time goes, what each change measured back to back, and what was tried and not",
  "kept, is written up in `bench/FINDINGS.md`.",
].join("\n");

/**
 * Replace the body of `## Performance` in `readme` with `body` (+ how to reproduce).
 *
 * @example
 * ```ts
 * replacePerformanceSection("# X\n\n## Performance\n\nold\n", "table"); // "# X\n\n## Performance\n\ntable..."
 * ```
 */
export function replacePerformanceSection(readme: string, body: string): string {
  const m = /^## Performance[ \t]*$/m.exec(readme);
  if (!m) throw new Error('README has no "## Performance" heading');
  const start = m.index + m[0].length;
  const next = /^## /m.exec(readme.slice(start));
  const end = next ? start + next.index : readme.length;
  const tail = readme.slice(end);
  return readme.slice(0, start) + "\n\n" + body.trim() + "\n\n" + _HOW + "\n" +
    (tail ? "\n" + tail : "");
}

if (import.meta.main) {
  const [readmePath, tablePath] = Deno.args;
  if (!readmePath || !tablePath) {
    console.error("usage: deno run -A scripts/bench/readme.ts README.md bench/results.md");
    Deno.exit(2);
  }
  const out = replacePerformanceSection(
    Deno.readTextFileSync(readmePath),
    Deno.readTextFileSync(tablePath),
  );
  Deno.writeTextFileSync(readmePath, out);
}
