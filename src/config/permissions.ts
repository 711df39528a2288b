/**
 * The one source of truth for the permissions of `funcx-endpoint`.
 *
 * `deno compile` bakes {@linkcode COMPILE_FLAGS} into the binary; `deno task cli`,
 * the tests, the demo and the daemon's re-exec of itself run `main.ts` under exactly
 * the same flags. Those flags are broad only for the tiny bootstrap in `main.ts`,
 * which immediately runs the real program in a Web Worker whose permissions are
 * narrowed by {@linkcode workerPermissions}: read/write only the funcX home, run
 * only python3, the shell used for `worker_init`, the batch-system commands, `systemctl`
 * (enable-on-boot) and itself.
 *
 * @example
 * ```ts
 * import { COMPILE_FLAGS } from "./permissions.ts";
 * const cmd = ["deno", "run", ...COMPILE_FLAGS, "main.ts", "list"];
 * ```
 * @module
 */

/** Flags baked into the compiled binary and used for every source run of `main.ts`. */
export const COMPILE_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-env",
  "--allow-sys",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--unstable-worker-options",
  // V8 sizes its heap for memory rather than peak speed (a smaller young generation, earlier
  // GCs): a lower daemon peak with many queued tasks at the same throughput (bench/FINDINGS.md
  // §14).
  "--v8-flags=--optimize-for-size",
];

/** Programs the sandboxed program may start (besides itself). */
export const ALLOWED_PROGRAMS: readonly string[] = [
  "python3",
  "bash",
  "sbatch",
  "squeue",
  "sacct",
  "scancel",
  "srun",
  "scontrol",
  "qsub",
  "qstat",
  "qdel",
  // enable-on-boot / disable-on-boot
  "systemctl",
];

/** What {@linkcode workerPermissions} needs to know about the running program. */
export interface SandboxInput {
  /** Absolute path of the funcX home (created before the worker starts). */
  home: string;
  /** Absolute path of the running executable (`Deno.execPath()`). */
  execPath: string;
  /** Directory holding `node_modules` when run from source, else `undefined`. */
  nodeModules?: string;
  /** True when running as a `deno compile` binary. */
  compiled: boolean;
  /** Files outside the home the program must read (TLS certificate/key, CA bundle). */
  extraRead?: readonly string[];
  /**
   * Set only for root running `enable-on-boot`/`disable-on-boot` ({@linkcode systemUnitDir}):
   * the one directory outside the home it may write, for the system unit.
   */
  systemUnitDir?: string;
}

/** Where `enable-on-boot` as root installs the system unit. */
export const SYSTEM_UNIT_DIR = "/etc/systemd/system";

/**
 * The extra directory a command may write: {@linkcode SYSTEM_UNIT_DIR} for root's
 * `enable-on-boot`/`disable-on-boot`, else none.
 *
 * @example
 * ```ts
 * systemUnitDir(["enable-on-boot", "ep"], 0); // "/etc/systemd/system"
 * systemUnitDir(["start", "ep"], 0); // undefined
 * ```
 */
export function systemUnitDir(argv: readonly string[], uid: number | null): string | undefined {
  if (uid !== 0) return undefined;
  return argv.some((a) => a === "enable-on-boot" || a === "disable-on-boot")
    ? SYSTEM_UNIT_DIR
    : undefined;
}

/**
 * Permissions of the Web Worker that runs the CLI, computed at start.
 *
 * @example
 * ```ts
 * const p = workerPermissions({ home: "/home/u/.funcx", execPath: "/usr/bin/deno", compiled: false });
 * // p.write === ["/home/u/.funcx"]
 * ```
 */
export function workerPermissions(input: SandboxInput): Deno.PermissionOptionsObject {
  const read = [input.home, "/proc", input.execPath, ...(input.extraRead ?? [])];
  if (input.nodeModules) read.push(input.nodeModules);
  const write = [input.home];
  if (input.systemUnitDir) {
    read.push(input.systemUnitDir);
    write.push(input.systemUnitDir);
  }
  return {
    read,
    write,
    net: true,
    env: true,
    sys: true,
    // no native code: the transport is TypeScript on Deno's own sockets (src/io/zmtp/)
    ffi: false,
    run: [...ALLOWED_PROGRAMS, input.execPath],
  };
}
