/**
 * Run the CLI from source exactly as the compiled binary would run it:
 * `deno run <COMPILE_FLAGS> main.ts <args>` with `FUNCX_HOME` set; or, when the environment
 * variable `FUNCX_TEST_BINARY` names an executable (a `deno compile`d funcx-endpoint), run
 * that instead, so the same tests check a binary as shipped.
 *
 * @example
 * ```ts
 * import { runCli, tempHome } from "./cli.ts";
 * const home = tempHome();
 * const r = await runCli(home, ["configure", "default"]);
 * // r.code === 0, r.stdout includes "A default profile has been created"
 * ```
 * @module
 */
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";

/** Output of {@linkcode runCli}. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runCli}. */
export interface RunCliOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Text fed to stdin (stdin is empty otherwise). */
  stdin?: string;
  /** Kill the CLI after this many ms (default 120 s). */
  timeoutMs?: number;
}

/** Absolute path of `main.ts`. */
export const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

/** The executable under test from `FUNCX_TEST_BINARY` (absolute), or `undefined` for source. */
export const TEST_BINARY: string | undefined = _testBinary(Deno.env.get("FUNCX_TEST_BINARY"));

function _testBinary(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const path = value.startsWith("/") ? value : `${Deno.cwd()}/${value}`;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    throw new Error(`FUNCX_TEST_BINARY=${value}: no such file`);
  }
  if (!info.isFile || !((info.mode ?? 0o111) & 0o111)) {
    throw new Error(`FUNCX_TEST_BINARY=${value}: not an executable file`);
  }
  return path;
}

/**
 * The build identity the program under test must report: `FUNCX_TEST_BUILD`
 * (`<release>@<commit>`, set by the release workflow to the tag and commit it built) when
 * given; `dev`/`unknown` when running from source; `undefined` for a binary without it.
 *
 * @example
 * ```ts
 * expectedBuild(); // { release: "dev", commit: "unknown" } from source
 * ```
 */
export function expectedBuild(): { release: string; commit: string } | undefined {
  const want = Deno.env.get("FUNCX_TEST_BUILD");
  if (want) {
    const at = want.lastIndexOf("@");
    return { release: want.slice(0, at).replace(/^v(?=\d)/, ""), commit: want.slice(at + 1) };
  }
  return TEST_BINARY ? undefined : { release: "dev", commit: "unknown" };
}

/**
 * The command that runs funcx-endpoint: {@linkcode TEST_BINARY} when given, else
 * `deno run <COMPILE_FLAGS> main.ts`; the CLI arguments follow `args`.
 *
 * @example
 * ```ts
 * const { cmd, args } = programCommand();
 * new Deno.Command(cmd, { args: [...args, "list"] });
 * ```
 */
export function programCommand(): { cmd: string; args: string[] } {
  return TEST_BINARY
    ? { cmd: TEST_BINARY, args: [] }
    : { cmd: Deno.execPath(), args: ["run", ...COMPILE_FLAGS, MAIN_TS] };
}

/**
 * Run `funcx-endpoint <args>` with funcX home `home`.
 *
 * @example
 * ```ts ignore
 * const { code, stderr } = await runCli(home, ["start", "a/b"]);
 * ```
 */
export async function runCli(
  home: string,
  args: string[],
  opts: RunCliOptions = {},
): Promise<CliResult> {
  const env: Record<string, string> = { ...opts.env, FUNCX_HOME: home, NO_COLOR: "1" };
  const program = programCommand();
  const child = new Deno.Command(program.cmd, {
    args: [...program.args, ...args],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  if (opts.stdin) await writer.write(new TextEncoder().encode(opts.stdin));
  await writer.close();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, opts.timeoutMs ?? 120_000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    // Deno itself prints this when parallel test runs set up node_modules at the same time.
    const stderr = dec.decode(out.stderr).replace(
      /^Blocking waiting for file lock on node_modules directory\n/gm,
      "",
    );
    return { code: out.code, stdout: dec.decode(out.stdout), stderr };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A fresh temporary funcX home.
 *
 * @example
 * ```ts
 * const home = tempHome(); // "/tmp/fx-home-abc123"
 * ```
 */
export function tempHome(): string {
  return Deno.makeTempDirSync({ prefix: "fx-home-" });
}

/** A funcx-endpoint process started by {@linkcode spawnMain}. */
export interface SpawnedMain {
  /** The process (stdout ignored, stderr collected). */
  child: Deno.ChildProcess;
  /** What it wrote on stderr so far (the newest part, bounded). */
  stderr(): string;
  /** Resolves when stderr reached its end. */
  drained: Promise<void>;
}

/**
 * Start `funcx-endpoint <args>` ({@linkcode programCommand}) with `FUNCX_HOME=home`, keeping
 * at most `maxStderr` characters of its stderr (the newest half when it overflows).
 *
 * @example
 * ```ts ignore
 * const p = spawnMain(home, ["service", "start", "--foreground", "--port", "0"], 200_000);
 * await p.child.status;
 * console.log(p.stderr());
 * ```
 */
export function spawnMain(home: string, args: string[], maxStderr: number): SpawnedMain {
  const program = programCommand();
  const child = new Deno.Command(program.cmd, {
    args: [...program.args, ...args],
    env: { FUNCX_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const drained = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += dec.decode(chunk, { stream: true });
      if (text.length > maxStderr) text = text.slice(-maxStderr / 2);
    }
  })().catch(() => {});
  return { child, stderr: () => text, drained };
}
