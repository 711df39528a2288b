/**
 * Hidden `funcx-endpoint debug-sandbox` command: really attempts a file write, a file
 * read or a program run from inside the sandbox and reports whether the permission
 * set allowed it. Used by the tests (and by anyone auditing a binary) to show that
 * nothing outside the funcX home can be touched.
 *
 * @example
 * ```ts
 * // funcx-endpoint debug-sandbox --write /etc/x   -> "write /etc/x: denied (NotCapable ...)", exit 3
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./context.ts";

/** Exit code when the sandbox refused an attempt. */
export const DENIED_EXIT_CODE = 3;

/** Result of one {@linkcode probe}. */
export interface ProbeResult {
  op: "write" | "read" | "run";
  target: string;
  allowed: boolean;
  error?: string;
}

/**
 * Attempt one operation for real.
 *
 * @example
 * ```ts
 * (await probe("write", "/etc/funcx-probe")).allowed; // false inside the sandbox
 * ```
 */
export async function probe(op: ProbeResult["op"], target: string): Promise<ProbeResult> {
  try {
    if (op === "write") {
      await Deno.writeTextFile(target, "funcx-endpoint sandbox probe\n", { append: true });
    } else if (op === "read") {
      await Deno.readFile(target);
    } else {
      await new Deno.Command(target, { stdout: "null", stderr: "null", stdin: "null" }).output();
    }
    return { op, target, allowed: true };
  } catch (e) {
    const err = e as Error;
    const denied = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
    return {
      op,
      target,
      allowed: !denied,
      error: `${err.name}: ${err.message.split("\n")[0]}`,
    };
  }
}

/**
 * Add the hidden `debug-sandbox` command.
 *
 * @example
 * ```ts
 * register(program, ctx);
 * ```
 */
export function register(program: Command, ctx: CliContext) {
  program
    .command("debug-sandbox", { hidden: true })
    .description("attempt a write/read/run and report whether the sandbox allowed it")
    .option("--write <path>", "append a line to this file")
    .option("--read <path>", "read this file")
    .option("--run <program>", "run this program without arguments")
    .action(async (opts) => {
      const attempts: [ProbeResult["op"], string | undefined][] = [
        ["write", opts.write],
        ["read", opts.read],
        ["run", opts.run],
      ];
      let denied = false;
      for (const [op, target] of attempts) {
        if (target === undefined) continue;
        const r = await probe(op, target);
        denied ||= !r.allowed;
        console.log(
          `${op} ${target}: ${r.allowed ? "allowed" : "denied"}${r.error ? ` (${r.error})` : ""}`,
        );
      }
      if (denied) ctx.setExitCode(DENIED_EXIT_CODE);
    });
}
