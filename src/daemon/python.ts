/**
 * Start-up: skip version-manager shims for the Python workers of local blocks.
 *
 * With pyenv (and tools like it) `python3` on PATH is a shell shim that runs several
 * scripts (dozens of forks; bench/FINDINGS.md §14 has the cost) before it execs the chosen
 * interpreter with that interpreter's directory put in front of PATH. Every worker start paid
 * this. {@linkcode resolveShimmedPython} asks the configured
 * interpreter once, in the background while the daemon loads, where it really is; when the
 * only thing the launcher did was to prepend directories to PATH (the signature of such an
 * exec shim), workers can run that interpreter directly: the same Python, the same modules.
 * Anything else (a wrapper that sets other variables, a `worker_init`, a batch provider whose
 * nodes may resolve differently, parked `LD_*` variables) keeps the configured command.
 *
 * @example
 * ```ts ignore
 * import { resolveShimmedPython } from "./python.ts";
 * const python = await resolveShimmedPython(config, "/home/u/.funcx/default");
 * // "/home/u/.pyenv/versions/3.11.7/bin/python3" behind a pyenv shim, else config's value
 * ```
 * @module
 */
import type { EndpointConfig } from "../config/types.ts";
import { outputWithin } from "./proc.ts";

const _PROBE = "import os, sys\nprint(sys.executable)\nprint(os.environ.get('PATH', ''))";

/** Result of {@linkcode resolveShimmedPython}. */
export interface PythonChoice {
  /** The interpreter workers should run. */
  python: string;
  /** Why the configured command was replaced or kept (for the log). */
  reason: string;
}

/**
 * Decide from a probe's output whether `configured` is an exec shim: the interpreter path
 * `executable` is absolute and the launcher only prepended directories, the first of them
 * the interpreter's own, to our `path`. Pure; returns the interpreter to use or `null`.
 *
 * @example
 * ```ts
 * shimTarget("/p/versions/3.11/bin/python3", "/p/versions/3.11/bin:/p/libexec:/usr/bin", "/usr/bin");
 * // "/p/versions/3.11/bin/python3"
 * shimTarget("/usr/bin/python3", "/usr/bin", "/usr/bin"); // null (not a shim: nothing to skip)
 * ```
 */
export function shimTarget(executable: string, childPath: string, ourPath: string): string | null {
  if (!executable.startsWith("/") || /[\n\0]/.test(executable)) return null;
  const dir = executable.slice(0, executable.lastIndexOf("/")) || "/";
  if (childPath === ourPath || !childPath.endsWith(`:${ourPath}`)) return null;
  const added = childPath.slice(0, childPath.length - ourPath.length - 1).split(":");
  return added[0] === dir ? executable : null;
}

/**
 * The interpreter for the workers of local blocks: the configured `executor.python`, or the
 * interpreter behind it when it is an exec shim (see the module doc). Never throws; a probe
 * that fails or takes longer than `opts.timeoutMs` (10 s) keeps the configured command.
 * `opts.env` is the environment the workers get (default: this process's).
 *
 * @example
 * ```ts ignore
 * const { python, reason } = await resolveShimmedPython(config, endpointDir);
 * ```
 */
export async function resolveShimmedPython(
  config: EndpointConfig,
  cwd: string,
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<PythonChoice> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const configured = config.executor.python;
  if (config.provider.type !== "local") return { python: configured, reason: "batch provider" };
  if (config.provider.worker_init.trim()) {
    return { python: configured, reason: "worker_init may change the interpreter" };
  }
  const env = opts.env ?? Deno.env.toObject();
  if (Object.keys(env).some((k) => k.startsWith("FUNCX_ENV_"))) {
    return { python: configured, reason: "loader variables (LD_*) are set" };
  }
  const ourPath = env.PATH ?? "";
  let child: Deno.ChildProcess;
  try {
    // through bash, as the manager starts workers (the sandbox runs other programs only so)
    child = new Deno.Command("bash", {
      args: ["-c", 'exec "$0" -I -S -c "$1"', configured, _PROBE],
      cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (e) {
    return { python: configured, reason: `probe not started: ${(e as Error).message}` };
  }
  try {
    const out = await outputWithin(child, timeoutMs);
    if (!out.success) return { python: configured, reason: "probe failed" };
    const [exe = "", childPath = ""] = new TextDecoder().decode(out.stdout).split("\n");
    const target = shimTarget(exe.trim(), childPath.trim(), ourPath);
    return target
      ? { python: target, reason: `${configured} is an exec shim for ${target}` }
      : { python: configured, reason: "not a shim" };
  } catch (e) {
    return { python: configured, reason: `probe failed: ${(e as Error).message}` };
  }
}

const _CHECK = `case "$0" in
*/*) [ -e "$0" ] || exit 3; [ -d "$0" ] && exit 5; [ -x "$0" ] || exit 4; echo "$0" ;;
*) type -P -- "$0" || exit 3 ;;
esac`;

/**
 * Check that `executor.python` names an executable interpreter on this host: returns `null`
 * when it does, else the one-line problem naming the key. Only the file is checked (no
 * Python is started).
 *
 * @example
 * ```ts
 * await checkPython("/nonexistent/python3");
 * // 'executor.python: "/nonexistent/python3" does not exist'
 * ```
 */
export async function checkPython(
  python: string,
  env?: Record<string, string>,
): Promise<string | null> {
  let out: Deno.CommandOutput;
  try {
    // through bash: the sandbox may read only the funcX home, bash can look anywhere
    out = await new Deno.Command("bash", {
      args: ["-c", _CHECK, python],
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
  } catch (e) {
    return `executor.python: cannot check "${python}": ${(e as Error).message}`;
  }
  switch (out.code) {
    case 0:
      return null;
    case 3:
      return python.includes("/")
        ? `executor.python: "${python}" does not exist`
        : `executor.python: "${python}" is not found on PATH`;
    case 4:
      return `executor.python: "${python}" is not executable`;
    case 5:
      return `executor.python: "${python}" is a directory, not an interpreter`;
    default:
      return `executor.python: cannot check "${python}" (exit code ${out.code})`;
  }
}
