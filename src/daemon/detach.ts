/**
 * Start this program again as a detached daemon: a new session (so it survives the
 * terminal and forms its own process group), stdin from /dev/null, and stdout/stderr
 * appended to a log file. The redirection is done by `bash -c 'exec "$@" >>LOG 2>&1'`,
 * so the daemon keeps bash's pid.
 *
 * @example
 * ```ts ignore
 * import { spawnDetached } from "./detach.ts";
 * const d = spawnDetached({
 *   args: ["start", "default", "--foreground", "--daemon"],
 *   home: "/home/u/.funcx",
 *   logFile: "/home/u/.funcx/default/endpoint.log",
 * });
 * const status = await Promise.race([d.exited, readyPromise]);
 * d.unref();
 * ```
 * @module
 */
import { selfCommand } from "../config/sandbox.ts";

/** Options of {@linkcode spawnDetached}. */
export interface DetachOptions {
  /** CLI arguments for the new process (after the program itself). */
  args: string[];
  /** funcX home, passed as `FUNCX_HOME`. */
  home: string;
  /** File that receives stdout and stderr (appended). */
  logFile: string;
  /** Working directory (default: the home). */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Program to run instead of {@linkcode selfCommand} (tests). */
  command?: { cmd: string; args: string[] };
}

/** A started daemon. */
export interface DetachedProcess {
  /** Pid of the daemon (also its process group and session id). */
  pid: number;
  /** Resolves when the daemon exits (only while this process has not exited). */
  exited: Promise<Deno.CommandStatus>;
  /** Let this process exit without waiting for the daemon. */
  unref(): void;
}

/**
 * Spawn the daemon detached; see the module doc.
 *
 * @example
 * ```ts ignore
 * const d = spawnDetached({ args: ["service", "start", "--foreground"], home, logFile });
 * d.unref();
 * ```
 */
export function spawnDetached(opts: DetachOptions): DetachedProcess {
  const self = opts.command ?? selfCommand();
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      'umask 077; log="$1"; shift; exec "$@" </dev/null >>"$log" 2>&1',
      "funcx-endpoint-daemon",
      opts.logFile,
      self.cmd,
      ...self.args,
      ...opts.args,
    ],
    cwd: opts.cwd ?? opts.home,
    env: { ...(opts.env ?? {}), FUNCX_HOME: opts.home },
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    pid: child.pid,
    exited: child.status,
    unref: () => child.unref(),
  };
}
