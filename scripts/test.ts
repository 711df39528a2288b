/**
 * `deno task test [extra deno test args]`: the whole check, as CI runs it.
 *
 * 1. `deno fmt --check`, `deno lint`, `deno check` of everything;
 * 2. when running as root, start the one-node local Slurm cluster
 *    (`scripts/local-slurm.sh start`, which installs slurm-wlm + munge if needed) so
 *    the Slurm provider tests run against a real Slurm;
 * 3. `deno test -A --parallel tests/` (test files run in parallel, each test file's
 *    tests in order).
 *
 * Environment: `FUNCX_TEST_NO_SLURM=1` skips step 2; `DENO_JOBS` bounds parallelism.
 * @module
 */
const root = new URL("..", import.meta.url).pathname;

async function run(title: string, cmd: string, args: string[], env: Record<string, string> = {}) {
  console.error(`\n==> ${title}: ${[cmd, ...args].join(" ")}`);
  const t0 = performance.now();
  const status = await new Deno.Command(cmd, {
    args,
    cwd: root,
    env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  if (!status.success) {
    console.error(`==> ${title} FAILED (exit ${status.code}, ${secs} s)`);
    Deno.exit(status.code || 1);
  }
  console.error(`==> ${title} ok (${secs} s)`);
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

const deno = Deno.execPath();
const extra = Deno.args;

await run("format", deno, ["fmt", "--check"]);
await run("lint", deno, ["lint"]);
await run("type check", deno, ["check", "main.ts", "src/", "scripts/", "tests/"]);

let slurmStarted = false;
const slurmScript = `${root}scripts/local-slurm.sh`;
if (!Deno.env.get("FUNCX_TEST_NO_SLURM") && isRoot()) {
  try {
    Deno.statSync(slurmScript);
    await run("local Slurm", "bash", [slurmScript, "start"]);
    slurmStarted = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error("==> local Slurm: scripts/local-slurm.sh missing, Slurm tests will skip");
  }
} else {
  console.error("==> local Slurm: not root or FUNCX_TEST_NO_SLURM set, Slurm tests will skip");
}

await run(
  "tests",
  deno,
  ["test", "-A", "--parallel", ...(extra.length ? extra : ["tests/"])],
  slurmStarted ? { FUNCX_TEST_SLURM: "1" } : {},
);
console.error("\nAll checks passed.");
