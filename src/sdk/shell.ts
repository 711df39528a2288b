/**
 * Shell functions (DESIGN.md §6): ordinary Python source that runs a command template
 * with `subprocess.run(shell=True)` and returns `{"cmd", "returncode", "stdout", "stderr"}`.
 * A timeout gives return code 124 and a note in stderr.
 *
 * @example
 * ```ts
 * import { shellFunctionSource } from "./shell.ts";
 * const src = shellFunctionSource("echo {name}", { timeout: 10 });
 * src.startsWith("def shell_function(**kwargs):"); // true
 * ```
 * @module
 */

/** Name of the generated Python function. */
export const SHELL_FUNCTION_NAME = "shell_function";

/** Options of {@linkcode shellFunctionSource}. */
export interface ShellFunctionOptions {
  /** Seconds before the command is killed (default: no limit). */
  timeout?: number;
}

/**
 * Python source of a shell function for `cmd` (a `str.format` template filled from the
 * task's kwargs).
 *
 * @example
 * ```ts
 * shellFunctionSource("ls {dir}").includes('"ls {dir}"'); // true
 * ```
 */
export function shellFunctionSource(cmd: string, opts: ShellFunctionOptions = {}): string {
  if (typeof cmd !== "string" || cmd.trim() === "") {
    throw new TypeError("shell function: cmd must be a non-empty command string");
  }
  const t = opts.timeout;
  if (t !== undefined && (!Number.isFinite(t) || t <= 0)) {
    throw new TypeError(`shell function: timeout must be a positive number of seconds, got ${t}`);
  }
  // A JSON string literal is a valid Python str literal.
  const literal = JSON.stringify(cmd);
  const timeout = t === undefined ? "None" : String(t);
  return `def ${SHELL_FUNCTION_NAME}(**kwargs):
    import subprocess
    cmd = ${literal}.format(**kwargs)
    timeout = ${timeout}
    try:
        p = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        err += "\\ncommand timed out after %s s" % timeout
        return {"cmd": cmd, "returncode": 124, "stdout": out, "stderr": err}
    return {"cmd": cmd, "returncode": p.returncode,
            "stdout": p.stdout.decode("utf-8", "replace"),
            "stderr": p.stderr.decode("utf-8", "replace")}
`;
}
