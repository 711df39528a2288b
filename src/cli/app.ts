/**
 * The `funcx-endpoint` command line: a commander program with one module per command.
 *
 * Errors are printed as one line, `funcx-endpoint: <message>`, with a non-zero exit
 * code; `--debug` (or `FUNCX_DEBUG=1`) also prints the stack.
 *
 * @example
 * ```ts
 * import { runCli } from "./app.ts";
 * const code = await runCli(["list", "--json"], "/home/u/.funcx");
 * ```
 * @module
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { buildInfo, formatVersion } from "../config/build.ts";
import { type CliContext, oneLine, PROGRAM, reportError } from "./context.ts";
type _Register = (program: Command, ctx: CliContext) => void;

/**
 * Every command, in help order, with the module that registers it. Modules are imported only
 * when needed: a run of `start`, the daemon or a manager loads only its own command's code
 * (start-up time and memory), while help, completion and unknown commands load them all.
 */
const _COMMANDS: readonly (readonly [string, () => Promise<{ register: _Register }>])[] = [
  ["configure", () => import("./configure.ts")],
  ["start", () => import("./start.ts")],
  ["stop", () => import("./stop.ts")],
  ["restart", () => import("./restart.ts")],
  ["list", () => import("./list.ts")],
  ["delete", () => import("./delete.ts")],
  ["enable-on-boot", () => import("./boot.ts").then((m) => ({ register: m.registerEnable }))],
  ["disable-on-boot", () => import("./boot.ts").then((m) => ({ register: m.registerDisable }))],
  ["status", () => import("./status.ts")],
  ["logs", () => import("./logs.ts")],
  ["login", () => import("./login.ts")],
  ["logout", () => import("./logout.ts")],
  ["whoami", () => import("./whoami.ts")],
  ["service", () => import("./service.ts")],
  ["manager", () => import("./manager.ts")],
  ["debug-sandbox", () => import("./probe.ts")],
  // last: it lists the commands registered before it
  ["completion", () => import("./completion.ts")],
];

/**
 * Build the commander program for one invocation: every command, or only `only` (its
 * module is the only one imported).
 *
 * @example
 * ```ts
 * const program = await buildProgram({ home: "/tmp/h", debug: () => false, setExitCode: () => {} });
 * program.helpInformation().includes("configure"); // true
 * ```
 */
export async function buildProgram(ctx: CliContext, only?: string): Promise<Command> {
  const program = new Command()
    .name(PROGRAM)
    .description(
      "funcX endpoint: run functions submitted to a funcX service on this machine or cluster.",
    )
    .version(formatVersion(buildInfo()), "-v, --version", "show the version")
    .option("-d, --debug", "debug logging, and stack traces on errors")
    .option(
      "-c, --config-dir <dir>",
      "funcX home holding the configs and state (default $FUNCX_HOME or ~/.funcx)",
    )
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`${PROGRAM}: ${oneLine(str.replace(/^error: /, ""))}\n`),
    });
  program.addHelpText(
    "after",
    `\nThe funcX home (${ctx.home}) holds config.yaml and one directory per endpoint.\n` +
      `Run \`${PROGRAM} <command> --help\` for the options of a command.`,
  );
  const wanted = _COMMANDS.filter(([name]) => only === undefined || name === only);
  const modules = await Promise.all(wanted.map(([, load]) => load()));
  for (const m of modules) m.register(program, ctx);
  return program;
}

/**
 * The command `args` run, when it can be loaded on its own (a known command other than
 * `completion`, not preceded by help/version flags); `undefined` means load every command.
 */
function _commandOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-d" || a === "--debug") continue;
    if (a === "-c" || a === "--config-dir") {
      i++;
      continue;
    }
    if (a.startsWith("--config-dir=")) continue;
    if (a.startsWith("-")) return undefined;
    const known = _COMMANDS.some(([name]) => name === a);
    return known && a !== "completion" ? a : undefined;
  }
  return undefined;
}

/** `--config_dir` (upstream spelling) → `--config-dir`; everything else unchanged. */
function _normalizeArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (rest || a === "--") {
      rest = true;
      out.push(a);
    } else if (a === "--config_dir") out.push("--config-dir");
    else if (a.startsWith("--config_dir=")) out.push(`--config-dir=${a.slice(13)}`);
    else out.push(a);
  }
  return out;
}

/**
 * Run the CLI with `argv` (without the program name) in funcX home `home`; returns the
 * exit code. Never throws and never calls `Deno.exit`.
 *
 * @example
 * ```ts
 * const code = await runCli(["--version"], "/tmp/h"); // prints "FuncX endpoint version: 0.3.4\nrelease: ...", 0
 * ```
 */
export async function runCli(argv: string[], home: string): Promise<number> {
  let exitCode = 0;
  const args = _normalizeArgv(argv);
  let debug = !!Deno.env.get("FUNCX_DEBUG") || _globalDebugFlag(args);
  const ctx: CliContext = {
    home,
    debug: () => debug,
    setExitCode: (code) => {
      exitCode = code;
    },
  };
  const program = await buildProgram(ctx, _commandOf(args));
  program.hook("preAction", () => {
    debug = debug || !!(program.opts() as { debug?: boolean }).debug;
  });
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    return reportError(e, debug);
  }
  return exitCode;
}

function _globalDebugFlag(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--debug" || a === "-d") return true;
    if (!a.startsWith("-")) return false;
  }
  return false;
}
