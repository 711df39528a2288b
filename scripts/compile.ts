/**
 * `deno task compile [--target T] [--output PATH] [--release V] [--commit C] [--dry-run]`:
 * build the single executable `dist/funcx-endpoint` (or `dist/funcx-endpoint-<target>`) with
 * the permission flags of `src/config/permissions.ts` baked in.
 *
 * The build's identity is baked in too, as the first script argument
 * `--funcx-build=<release>@<commit>` (`src/config/build.ts`): `--release` (a tag such as
 * `v1.2.0`, stored without the `v`; default: the tag on HEAD, else `dev`) and `--commit`
 * (default: `git rev-parse HEAD`). `--dry-run` prints the `deno compile` arguments as JSON
 * and builds nothing.
 *
 * The sandboxed CLI is loaded as a Web Worker (`src/cli/entry.ts`), so it is passed to
 * `--include`. `DENORT_BIN` (a local `denort` runtime) is honoured by `deno compile`
 * itself; when the runtime for the target can neither be found there nor downloaded,
 * this prints one line saying so and exits non-zero.
 *
 * @example
 * ```sh
 * deno task compile
 * deno task compile --target aarch64-unknown-linux-gnu
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { BUILD_FLAG, COMMIT_PATTERN, RELEASE_PATTERN } from "../src/config/build.ts";
import { COMPILE_FLAGS } from "../src/config/permissions.ts";

/** Targets `deno compile` supports that we release. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
] as const;

/** Files loaded dynamically at run time that `deno compile` must embed. */
export const INCLUDES = ["src/cli/entry.ts"];

const USAGE =
  "usage: deno task compile [--target T] [--output PATH] [--release V] [--commit C] [--dry-run]";

/**
 * The script argument that bakes the build identity into the binary; throws a one-line
 * error for a malformed release or commit.
 *
 * @example
 * ```ts
 * buildArg("v1.2.0", "0123abcd"); // "--funcx-build=1.2.0@0123abcd"
 * ```
 */
export function buildArg(release: string, commit: string): string {
  const r = release.replace(/^v(?=\d)/, "");
  if (!RELEASE_PATTERN.test(r)) {
    throw new Error(
      `--release: ${JSON.stringify(release)} is not a release; expected a tag like v1.2.0 ` +
        "(letters, digits and . + _ -)",
    );
  }
  if (!COMMIT_PATTERN.test(commit)) {
    throw new Error(
      `--commit: ${JSON.stringify(commit)} is not a commit; expected 7-64 lowercase hex digits`,
    );
  }
  return `${BUILD_FLAG}=${r}@${commit}`;
}

async function _git(root: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() || undefined : undefined;
  } catch {
    return undefined;
  }
}

function fail(msg: string): never {
  console.error(`compile: ${msg}`);
  Deno.exit(1);
}

if (import.meta.main) {
  let values: {
    target?: string;
    output?: string;
    release?: string;
    commit?: string;
    "dry-run"?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        target: { type: "string" },
        output: { type: "string", short: "o" },
        release: { type: "string" },
        commit: { type: "string" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    fail(`${(e as Error).message}; ${USAGE}`);
  }
  if (values.help) {
    console.log(
      `${USAGE}\ntargets: ${TARGETS.join(", ")}`,
    );
    Deno.exit(0);
  }
  const target = values.target;
  if (target !== undefined && !(TARGETS as readonly string[]).includes(target)) {
    fail(`--target: "${target}" is not supported; expected one of ${TARGETS.join(", ")}`);
  }
  const root = new URL("..", import.meta.url).pathname;
  const output = values.output ?? `dist/funcx-endpoint${target ? `-${target}` : ""}`;
  const release = values.release ??
    await _git(root, ["describe", "--tags", "--exact-match", "HEAD"]) ?? "dev";
  const commit = values.commit ?? await _git(root, ["rev-parse", "HEAD"]);
  if (commit === undefined) {
    fail("cannot tell the commit (git rev-parse HEAD failed); pass --commit");
  }
  let baked: string;
  try {
    baked = buildArg(release, commit);
  } catch (e) {
    fail((e as Error).message);
  }
  const denort = Deno.env.get("DENORT_BIN");
  if (denort && !values["dry-run"]) {
    try {
      Deno.statSync(denort);
    } catch {
      fail(`DENORT_BIN=${denort} does not exist`);
    }
  }
  const args = [
    "compile",
    ...COMPILE_FLAGS,
    ...INCLUDES.flatMap((f) => ["--include", f]),
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    "main.ts",
    baked,
  ];
  if (values["dry-run"]) {
    console.log(JSON.stringify({ args, output, baked }));
    Deno.exit(0);
  }
  console.error(`compile: deno ${args.join(" ")}${denort ? ` (DENORT_BIN=${denort})` : ""}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const lines = text.split("Stack backtrace:")[0].split("\n").map((l) => l.trim())
      .filter(Boolean);
    const url = /\(?(https?:\/\/[^\s)]+denort[^\s)]*)\)?/.exec(text)?.[1];
    const cause = lines.filter((l) => /^\d+: /.test(l)).at(-1)?.replace(/^\d+: /, "") ??
      lines.find((l) => /^error:/i.test(l))?.replace(/^error:\s*/i, "") ??
      lines.at(-1) ?? `exit code ${out.code}`;
    if (url || /denort|dl\.deno\.land|Setting up base binary/i.test(text)) {
      fail(
        `cannot get the Deno runtime (denort) for ${target ?? "this platform"}${
          url ? ` from ${url}` : ""
        }: ${cause}; set DENORT_BIN to a local denort ${Deno.version.deno} binary`,
      );
    }
    fail(`deno compile failed: ${cause}`);
  }
  if (!target || target === Deno.build.target) {
    // A full `deno` binary given as DENORT_BIN yields a `deno` clone, not our program.
    const v = await new Deno.Command(`${root}${output}`, {
      args: ["--version"],
      env: { FUNCX_HOME: Deno.makeTempDirSync({ prefix: "fx-compile-" }) },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(v.stdout).trim();
    if (!v.success || !said.startsWith("FuncX endpoint version:") || !said.includes(commit)) {
      Deno.removeSync(`${root}${output}`);
      fail(
        `the built ${output} does not run as funcx-endpoint (its --version said ${
          JSON.stringify(said.split("\n")[0])
        }); is DENORT_BIN a denort runtime rather than a full deno binary?`,
      );
    }
  }
  const size = Deno.statSync(`${root}${output}`).size;
  console.log(`${output} (${(size / 1024 / 1024).toFixed(1)} MiB)`);
}
