/**
 * `deno task test [extra deno test args]`: the whole check, as CI runs it.
 *
 * 1. `deno fmt --check`, `deno lint`, the workflow lint (`scripts/lint_workflows.ts`),
 *    `deno check --doc` of everything (code and `@example` blocks); python3 is installed
 *    with apt when missing (as root);
 * 2. when running as root, start the one-node local Slurm cluster
 *    (`scripts/local-slurm.sh start`, which installs slurm-wlm + munge if needed) so
 *    the Slurm provider tests run against a real Slurm, and stop it again at the end (also on
 *    failure or Ctrl-C) unless another test run still uses it;
 * 3. each test file in its own `deno test -A` process, `DENO_JOBS` (default 3) at a time, each file's
 *    tests in order).
 *
 * Environment: `FUNCX_TEST_NO_SLURM=1` skips step 2; `DENO_JOBS` bounds parallelism.
 * @module
 */
const root = new URL("..", import.meta.url).pathname;

let slurmStarted = false;
const slurmScript = `${root}scripts/local-slurm.sh`;
// Test runs of several worktrees share the one local Slurm: each run registers its pid here
// and the last one to finish stops the daemons.
const slurmUsers = "/run/local-slurm/users";
const slurmMe = `${slurmUsers}/${Deno.pid}`;
/** Exit, stopping the local Slurm first when this run started it. */
async function _exit(code: number): Promise<never> {
  await _releaseSlurm();
  Deno.exit(code);
}

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
    await _exit(status.code || 1);
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
await run("workflow lint", deno, ["run", "-A", "scripts/lint_workflows.ts"]);
// `--doc`: the `@example` blocks are type-checked too (illustrative ones are marked `ts ignore`).
await run("type check", deno, ["check", "--doc", "main.ts", "src/", "scripts/", "tests/"]);

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

async function _releaseSlurm(): Promise<void> {
  if (!slurmStarted) return;
  slurmStarted = false;
  Deno.removeSync(slurmMe);
  const others = [...Deno.readDirSync(slurmUsers)].filter((e) => {
    try {
      Deno.statSync(`/proc/${e.name}`);
      return true;
    } catch {
      Deno.removeSync(`${slurmUsers}/${e.name}`); // a run that died without cleaning up
      return false;
    }
  });
  if (others.length > 0) {
    console.error(`==> local Slurm: still used by test run(s) ${others.map((e) => e.name)}`);
    return;
  }
  const st = await new Deno.Command("bash", { args: [slurmScript, "stop"], stdin: "null" })
    .spawn().status;
  console.error(`==> local Slurm: ${st.success ? "stopped" : `stop failed (exit ${st.code})`}`);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => void _exit(130));
}
if (!Deno.env.get("FUNCX_TEST_NO_SLURM") && isRoot()) {
  try {
    Deno.statSync(slurmScript);
    Deno.mkdirSync(slurmUsers, { recursive: true });
    Deno.writeTextFileSync(slurmMe, "");
    slurmStarted = true;
    await run("local Slurm", "bash", [slurmScript, "start"]);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error("==> local Slurm: scripts/local-slurm.sh missing, Slurm tests will skip");
  }
} else {
  console.error("==> local Slurm: not root or FUNCX_TEST_NO_SLURM set, Slurm tests will skip");
}

// Every test file runs in its own `deno test` process (a native crash in one file, e.g. in
// zeromq.js, cannot take the others down), DENO_JOBS at a time, slowest files first. Each
// file's output is printed in one piece when it ends; the totals are repeated at the end as a
// plain `tests: N passed, N failed[, N skipped]` line.
const files = extra.filter((a) => !a.startsWith("-"));
const flags = extra.filter((a) => a.startsWith("-"));
const testFiles = await _collect(files.length ? files : ["tests/"]);
const _SLOW = ["chaos", "e2e", "slurm", "bench", "security", "fuzz", "lifecycle"];
const weight = (f: string) => _SLOW.findIndex((k) => f.includes(k));
testFiles.sort((a, b) => {
  const wa = weight(a), wb = weight(b);
  return (wa < 0 ? 99 : wa) - (wb < 0 ? 99 : wb) || a.localeCompare(b);
});
const jobs = Math.max(1, Number(Deno.env.get("DENO_JOBS") ?? 3));
console.error(`\n==> tests: ${testFiles.length} files, ${jobs} at a time`);
const t0 = performance.now();
const totals = { passed: 0, failed: 0, ignored: 0 };
const failedFiles: string[] = [];
let next = 0;
async function _runOne(file: string) {
  const out = await new Deno.Command(deno, {
    args: ["test", "-A", ...flags, file],
    cwd: root,
    env: { NO_COLOR: "1", ...(slurmStarted ? { FUNCX_TEST_SLURM: "1" } : {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  let summary: { passed: number; failed: number; ignored: number } | undefined;
  for (const line of text.split("\n")) {
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
  // A file that died without its summary line (a native crash, a signal, a failed import)
  // says so, with its exit status, above whatever it printed.
  const crashed = !out.success && (!summary || summary.failed === 0);
  const head = crashed
    ? `\n---- ${file}: CRASHED (exit ${out.code}${
      out.signal ? `, ${out.signal}` : ""
    }) outside a test; its output follows${text.trim() ? "" : " (it printed nothing)"}\n`
    : `\n---- ${file}\n`;
  await _writeAll(head + text);
  if (summary) {
    totals.passed += summary.passed;
    totals.failed += summary.failed;
    totals.ignored += summary.ignored;
  }
  if (!out.success) {
    if (crashed) totals.failed++;
    failedFiles.push(`${file} (exit ${out.code}${out.signal ? `, ${out.signal}` : ""})`);
  }
}
await Promise.all(
  Array.from({ length: Math.min(jobs, testFiles.length) }, async () => {
    while (next < testFiles.length) await _runOne(testFiles[next++]);
  }),
);
const secs = ((performance.now() - t0) / 1000).toFixed(1);
console.log(
  `tests: ${totals.passed} passed, ${totals.failed} failed${
    totals.ignored ? `, ${totals.ignored} skipped` : ""
  }`,
);
await _releaseSlurm();
if (failedFiles.length) {
  console.error(`==> tests FAILED (${secs} s):\n  ${failedFiles.join("\n  ")}`);
  Deno.exit(1);
}
if (totals.passed === 0) {
  console.error("==> tests: no test ran");
  Deno.exit(1);
}
console.error(`==> tests ok (${secs} s)\nAll checks passed.`);

/** Write all of `text` to stdout (one write may take only part of it on a pipe). */
async function _writeAll(text: string): Promise<void> {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(await Deno.stdout.write(bytes));
}

/** Test files (`*_test.ts`) under the given files/directories, relative to the repo root. */
async function _collect(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  async function walk(rel: string) {
    const info = await Deno.stat(`${root}${rel}`);
    if (info.isFile) {
      found.push(rel);
      return;
    }
    for await (const e of Deno.readDir(`${root}${rel}`)) {
      const child = `${rel.replace(/\/$/, "")}/${e.name}`;
      if (e.isDirectory) await walk(child);
      else if (/_test\.ts$/.test(e.name)) found.push(child);
    }
  }
  for (const p of paths) await walk(p);
  return found.sort();
}
