/**
 * What every command gets: the funcX home and global flags.
 *
 * Each command file exports `register(program, ctx)` that adds its command to the
 * commander program; `app.ts` calls them all.
 *
 * @example
 * ```ts
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
