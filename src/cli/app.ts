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
import { ENDPOINT_VERSION } from "../config/types.ts";
import { type CliContext, CliError } from "./context.ts";
import { register as registerCompletion } from "./completion.ts";
import { register as registerConfigure } from "./configure.ts";
import { register as registerDelete } from "./delete.ts";
import { register as registerList } from "./list.ts";
import { register as registerLogin } from "./login.ts";
import { register as registerLogout } from "./logout.ts";
import { register as registerLogs } from "./logs.ts";
import { register as registerManager } from "./manager.ts";
import { register as registerProbe } from "./probe.ts";
import { register as registerService } from "./service.ts";
import { register as registerStart } from "./start.ts";
import { register as registerRestart } from "./restart.ts";
import { register as registerStatus } from "./status.ts";
import { register as registerStop } from "./stop.ts";
import { register as registerWhoami } from "./whoami.ts";

/** The program name used in messages. */
export const PROGRAM = "funcx-endpoint";

/**
 * Build the commander program for one invocation.
 *
 * @example
 * ```ts
 * const program = buildProgram({ home: "/tmp/h", debug: () => false, setExitCode: () => {} });
 * program.helpInformation().includes("configure"); // true
 * ```
 */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command()
    .name(PROGRAM)
    .description(
      "funcX endpoint: run functions submitted to a funcX service on this machine or cluster.",
    )
    .version(`FuncX endpoint version: ${ENDPOINT_VERSION}`, "-v, --version", "show the version")
    .option("-d, --debug", "debug logging, and stack traces on errors")
    .option(
      "-c, --config-dir <dir>",
      "funcX home holding the configs and state (default $FUNCX_HOME or ~/.funcx)",
    )
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`${PROGRAM}: ${_oneLine(str.replace(/^error: /, ""))}\n`),
    });
  program.addHelpText(
    "after",
    `\nThe funcX home (${ctx.home}) holds config.yaml and one directory per endpoint.\n` +
      `Run \`${PROGRAM} <command> --help\` for the options of a command.`,
  );
  registerConfigure(program, ctx);
  registerStart(program, ctx);
  registerStop(program, ctx);
  registerRestart(program, ctx);
  registerList(program, ctx);
  registerDelete(program, ctx);
  registerStatus(program, ctx);
  registerLogs(program, ctx);
  registerLogin(program, ctx);
  registerLogout(program, ctx);
  registerWhoami(program, ctx);
  registerService(program, ctx);
  registerManager(program, ctx);
  registerProbe(program, ctx);
  registerCompletion(program, ctx);
  return program;
}

function _oneLine(s: string): string {
  return s.trim().split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
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
 * const code = await runCli(["--version"], "/tmp/h"); // prints "FuncX endpoint version: 0.3.4", 0
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
  const program = buildProgram(ctx);
  program.hook("preAction", () => {
    debug = debug || !!(program.opts() as { debug?: boolean }).debug;
  });
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (debug) console.error(e);
    else console.error(`${PROGRAM}: ${_oneLine(_message(e))}`);
    return e instanceof CliError ? e.exitCode : 1;
  }
  return exitCode;
}

function _message(e: unknown): string {
  if (e instanceof Error) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return `permission denied: ${e.message}`;
    }
    return e.message || e.name;
  }
  return String(e);
}

function _globalDebugFlag(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--debug" || a === "-d") return true;
    if (!a.startsWith("-")) return false;
  }
  return false;
}
