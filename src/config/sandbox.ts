/**
 * The bootstrap that runs the program inside a permission-narrowed Web Worker.
 *
 * `main.ts` calls {@linkcode runSandboxed}; the worker module calls
 * {@linkcode workerMain} with a function that returns the exit code.
 *
 * @example
 * ```ts ignore
 * // main.ts
 * import { runSandboxed } from "./src/config/sandbox.ts";
 * await runSandboxed(new URL("./src/cli/entry.ts", import.meta.url));
 * ```
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildArgs, type BuildInfo, buildInfo, setBuild, splitBuildArg } from "./build.ts";
import { resolveHome } from "./paths.ts";
import { COMPILE_FLAGS, systemUnitDir, workerPermissions } from "./permissions.ts";

/** Message from the sandboxed worker to the bootstrap. */
interface ExitMessage {
  type: "exit";
  code: number;
}

/** The `--config-dir`/`-c` value in argv, if any (checked before the CLI parses it). */
export function configDirFromArgv(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    if (a === "-c" || a === "--config-dir" || a === "--config_dir") return argv[i + 1];
    const m = /^--config[-_]dir=(.*)$/.exec(a);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Files outside the funcX home that TLS needs read access to: `--tls-cert`/`--tls-key`
 * values, the CA bundle named by `ca_file` in the global config.yaml, and the bundles of
 * `SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`. Absolute paths.
 *
 * @example
 * ```ts
 * tlsReadPaths(["service", "start", "--tls-cert", "c.pem"], {}, "/h", "/etc/fx");
 * // ["/etc/fx/c.pem"]
 * ```
 */
export function tlsReadPaths(
  argv: readonly string[],
  env: Record<string, string>,
  home: string,
  cwd: string,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(tls-cert|tls-key)(?:=(.*))?$/.exec(argv[i]);
    if (m) out.push(resolve(cwd, m[2] ?? argv[++i] ?? ""));
  }
  for (const v of ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]) {
    if (env[v]) out.push(resolve(cwd, env[v]));
  }
  try {
    const text = Deno.readTextFileSync(join(home, "config.yaml"));
    const m = /^ca_file:\s*(?:"([^"]*)"|'([^']*)'|([^#\s][^#]*?))\s*(?:#.*)?$/m.exec(text);
    const v = m ? (m[1] ?? m[2] ?? m[3]) : undefined;
    if (v && v !== "null" && v !== "~") out.push(resolve(home, v));
  } catch { /* no global config */ }
  return out;
}

/** True when running as a `deno compile` binary. */
export function isCompiled(): boolean {
  return new URL(import.meta.url).pathname.includes("/deno-compile-");
}

/** The `node_modules` directory of a source checkout (undefined when compiled). */
export function sourceNodeModules(): string | undefined {
  if (isCompiled()) return undefined;
  return join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), "node_modules");
}

/**
 * Start `entry` in a Web Worker with the narrowed permissions and exit with its code.
 * The funcX home is created first so the worker can write to it.
 */
export async function runSandboxed(entry: URL, rawArgv: readonly string[] = Deno.args) {
  let home: string;
  let argv: string[];
  let build: BuildInfo | undefined;
  try {
    ({ build, argv } = splitBuildArg(rawArgv));
    home = resolveHome({
      configDir: configDirFromArgv(argv),
      env: Deno.env.toObject(),
      cwd: Deno.cwd(),
    });
    await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  } catch (e) {
    console.error(`funcx-endpoint: ${(e as Error).message}`);
    Deno.exit(1);
  }
  parkLoaderEnv();
  const permissions = workerPermissions({
    home,
    execPath: Deno.execPath(),
    nodeModules: sourceNodeModules(),
    compiled: isCompiled(),
    extraRead: tlsReadPaths(argv, Deno.env.toObject(), home, Deno.cwd()),
    systemUnitDir: systemUnitDir(argv, Deno.uid()),
  });
  const worker = new Worker(entry, {
    type: "module",
    name: "funcx-endpoint",
    deno: { permissions },
  });
  const done = Promise.withResolvers<number>();
  worker.onmessage = (ev: MessageEvent<ExitMessage>) => {
    if (ev.data?.type === "exit") done.resolve(ev.data.code);
  };
  worker.onerror = (ev) => {
    ev.preventDefault();
    console.error(`funcx-endpoint: ${ev.message}`);
    done.resolve(1);
  };
  worker.postMessage({ type: "start", argv, home, build } satisfies StartMessage);
  const code = await done.promise;
  Deno.exit(code);
}

/**
 * Move `LD_*`/`DYLD_*` variables (set by `module load`, XALT, darshan on most login nodes) to
 * `FUNCX_ENV_<NAME>`: Deno refuses to spawn any child while they are in the environment of a
 * process whose run permission is scoped. The manager restores them for Python workers.
 *
 * @example
 * ```ts
 * parkLoaderEnv(); // LD_LIBRARY_PATH=/opt/lib -> FUNCX_ENV_LD_LIBRARY_PATH=/opt/lib
 * ```
 */
export function parkLoaderEnv(): void {
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (/^(LD_|DYLD_)/.test(k)) {
      Deno.env.set(`FUNCX_ENV_${k}`, v);
      Deno.env.delete(k);
    }
  }
}

/** Start message the bootstrap sends to the worker. */
export interface StartMessage {
  type: "start";
  argv: string[];
  home: string;
  /** Identity baked into the binary (`--funcx-build`), if any. */
  build?: BuildInfo;
}

/**
 * Worker side: wait for the start message, run `fn`, report its exit code.
 * Exceptions become exit code 1 with a one-line message (no stack unless `FUNCX_DEBUG`).
 */
export function workerMain(fn: (msg: StartMessage) => Promise<number>) {
  const scope = globalThis as unknown as {
    onmessage: ((ev: MessageEvent<StartMessage>) => void) | null;
    postMessage: (m: ExitMessage) => void;
  };
  scope.onmessage = async (ev: MessageEvent<StartMessage>) => {
    if (ev.data?.type !== "start") return;
    scope.onmessage = null;
    setBuild(ev.data.build);
    let code = 1;
    try {
      code = await fn(ev.data);
    } catch (e) {
      if (Deno.env.get("FUNCX_DEBUG")) console.error(e);
      else console.error(`funcx-endpoint: ${(e as Error)?.message ?? e}`);
      code = 1;
    }
    scope.postMessage({ type: "exit", code });
  };
}

/**
 * How to start this program again (the daemon, managers): the executable and the
 * leading arguments before the CLI arguments.
 */
export function selfCommand(): { cmd: string; args: string[] } {
  if (isCompiled()) return { cmd: Deno.execPath(), args: [] };
  const main = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), "main.ts");
  // The parent already set up node_modules: `manual` skips Deno's node_modules lock, which
  // would otherwise serialise (and print "Blocking waiting for file lock" for) processes
  // started together, such as the managers of several blocks.
  return {
    cmd: Deno.execPath(),
    args: ["run", "--node-modules-dir=manual", ...COMPILE_FLAGS, main, ...buildArgs(buildInfo())],
  };
}
