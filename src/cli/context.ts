/**
 * What every command gets: the funcX home and global flags.
 *
 * Each command file exports `register(program, ctx)` that adds its command to the
 * commander program; `app.ts` calls them all.
 *
 * @example
 * ```ts ignore
 * import type { CliContext } from "./context.ts";
 * export function register(program: Command, ctx: CliContext) {
 *   program.command("whoami").action(async () => { ctx.setExitCode(0); });
 * }
 * ```
 * @module
 */

/** Shared state of one CLI invocation. */
export interface CliContext {
  /** Absolute funcX home (already created). */
  home: string;
  /** `--debug` was given. */
  debug(): boolean;
  /** Set the process exit code (default 0). */
  setExitCode(code: number): void;
}

/** An error the CLI prints as one line (`funcx-endpoint: <message>`) and exits non-zero. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

/** The program name in messages. */
export const PROGRAM = "funcx-endpoint";

/**
 * `s` on one line: lines trimmed, blank ones dropped, joined by spaces.
 *
 * @example
 * ```ts
 * oneLine("a\n  b\n"); // "a b"
 * ```
 */
export function oneLine(s: string): string {
  return s.trim().split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
}

/**
 * Report an error that ends a command — the stack with `debug`, else one line
 * `funcx-endpoint: <message>` (permission errors say so) — and return the exit code.
 *
 * @example
 * ```ts ignore
 * return reportError(new CliError("no such endpoint"), false); // prints one line, returns 1
 * ```
 */
export function reportError(e: unknown, debug: boolean): number {
  if (debug) console.error(e);
  else console.error(`${PROGRAM}: ${oneLine(_message(e))}`);
  return e instanceof CliError ? e.exitCode : 1;
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
