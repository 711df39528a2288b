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
import { join } from "node:path";
import type { CliContext } from "./context.ts";

/** Exit code when an attempt was refused (or failed). */
export const DENIED_EXIT_CODE = 3;

/** Result of one {@linkcode probe}. */
export interface ProbeResult {
  op: "write" | "read" | "run" | "symlink";
  target: string;
  /** allowed: it succeeded; denied: a permission error; failed: another error. */
  outcome: "allowed" | "denied" | "failed";
  error?: string;
}

/**
 * Attempt one operation for real.
 *
 * @example
 * ```ts
 * (await probe("write", "/etc/funcx-probe", "/home/u/.funcx")).outcome; // "denied" inside the sandbox
 * ```
 */
export async function probe(
  op: ProbeResult["op"],
  target: string,
  home: string,
): Promise<ProbeResult> {
  try {
    if (op === "write") {
      await Deno.writeTextFile(target, "funcx-endpoint sandbox probe\n", { append: true });
    } else if (op === "symlink") {
      // a link inside the home pointing at `target`
      await Deno.symlink(target, join(home, ".probe-link"));
    } else if (op === "read") {
      await Deno.readFile(target);
    } else {
      await new Deno.Command(target, { stdout: "null", stderr: "null", stdin: "null" }).output();
    }
    return { op, target, outcome: "allowed" };
  } catch (e) {
    const err = e as Error;
    const denied = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
    return {
      op,
      target,
      outcome: denied ? "denied" : "failed",
      error: `${err.name}: ${err.message.split("\n")[0]}`,
    };
  }
}

/**
 * Add the hidden `debug-sandbox` command.
 *
 * @example
 * ```ts ignore
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
    .option("--symlink <target>", "create HOME/.probe-link pointing at target")
    .action(async (opts) => {
      const attempts: [ProbeResult["op"], string | undefined][] = [
        ["write", opts.write],
        ["read", opts.read],
        ["run", opts.run],
        ["symlink", opts.symlink],
      ];
      let refused = false;
      for (const [op, target] of attempts) {
        if (target === undefined) continue;
        const r = await probe(op, target, ctx.home);
        refused ||= r.outcome !== "allowed";
        console.log(`${op} ${target}: ${r.outcome}${r.error ? ` (${r.error})` : ""}`);
      }
      if (refused) ctx.setExitCode(DENIED_EXIT_CODE);
    });
}
