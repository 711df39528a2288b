/**
 * `deno task test [extra deno test args]`: the whole check, as CI runs it.
 *
 * 1. `deno fmt --check`, `deno lint`, `deno check` of everything; python3 is installed
 *    with apt when missing (as root);
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

async function _has(program: string): Promise<boolean> {
  const r = await new Deno.Command("bash", {
    args: ["-c", 'command -v "$1" >/dev/null', "has", program],
    stdin: "null",
  }).output();
  return r.success;
}

const deno = Deno.execPath();
const extra = Deno.args;

await run("format", deno, ["fmt", "--check"]);
await run("lint", deno, ["lint"]);
await run("type check", deno, ["check", "main.ts", "src/", "scripts/", "tests/"]);

// The workers run functions with python3 (3.8+, standard library only).
if (!await _has("python3")) {
  if (isRoot() && await _has("apt-get")) {
    await run("apt-get update", "apt-get", ["-o", "DPkg::Lock::Timeout=600", "update"]);
    await run("install python3", "apt-get", [
      "-o",
      "DPkg::Lock::Timeout=600",
      "install",
      "-y",
      "--no-install-recommends",
      "python3",
    ], { DEBIAN_FRONTEND: "noninteractive" });
  } else {
    console.error("==> python3 is not on PATH: the worker tests will fail; install python3");
  }
}

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

// The test run is echoed line by line and its summary (`ok | 63 passed | 0 failed | ...`)
// is repeated at the end as a plain `tests: N passed, N failed[, N skipped]` line.
const args = ["test", "-A", "--parallel", ...(extra.length ? extra : ["tests/"])];
console.error(`\n==> tests: deno ${args.join(" ")}`);
const t0 = performance.now();
const child = new Deno.Command(deno, {
  args,
  cwd: root,
  env: { NO_COLOR: "1", ...(slurmStarted ? { FUNCX_TEST_SLURM: "1" } : {}) },
  stdin: "null",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
let summary: { passed: number; failed: number; ignored: number } | undefined;
let pending = "";
const dec = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  pending += dec.decode(chunk, { stream: true });
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines) {
    const m =
      /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(.*)$/
        .exec(line.trim());
    if (m) {
      summary = {
        passed: Number(m[1]),
        failed: Number(m[2]),
        ignored: Number(/(\d+) ignored/.exec(m[3])?.[1] ?? 0),
      };
    }
  }
}
const status = await child.status;
const secs = ((performance.now() - t0) / 1000).toFixed(1);
if (summary) {
  console.log(
    `tests: ${summary.passed} passed, ${summary.failed} failed${
      summary.ignored ? `, ${summary.ignored} skipped` : ""
    }`,
  );
}
if (!status.success) {
  console.error(`==> tests FAILED (exit ${status.code}, ${secs} s)`);
  Deno.exit(status.code || 1);
}
if (!summary || summary.passed === 0) {
  console.error("==> tests: no test ran");
  Deno.exit(1);
}
console.error(`==> tests ok (${secs} s)\nAll checks passed.`);
