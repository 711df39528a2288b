/**
 * Run the real endpoint CLI (`deno run <COMPILE_FLAGS> main.ts start NAME [--foreground]`)
 * for the benchmark: configure a funcX home (global config, endpoint config with the
 * local provider and W workers, a token file), start the daemon and wait until it is
 * connected with its workers up.
 *
 * @example
 * ```ts ignore
 * import { prepareHome, startEndpointProcess } from "./endpoint_proc.ts";
 * const home = prepareHome({ serviceUrl, workers: 2, token: "t" });
 * const ep = await startEndpointProcess({ home, workers: 2 });
 * await ep.stop();
 * ```
 * @module
 */
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../src/config/permissions.ts";
import { NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import type { StatusFile } from "../../src/daemon/state.ts";
import { findManagerPids } from "./_util.ts";

/** `main.ts` of this checkout. */
export const MAIN_TS: string = new URL("../../main.ts", import.meta.url).pathname;

/** A command line prefix that runs the endpoint program. */
export interface Program {
  cmd: string;
  args: string[];
}

let _program_: Program = { cmd: Deno.execPath(), args: ["run", ...COMPILE_FLAGS, MAIN_TS] };

/**
 * Run the endpoint from a `deno compile`d executable instead of `deno run main.ts`.
 *
 * @example
 * ```ts
 * useBinary("dist/funcx-endpoint");
 * ```
 */
export function useBinary(path: string): void {
  _program_ = { cmd: path, args: [] };
}

/**
 * Run the endpoint with another command line (e.g. another checkout's `main.ts`).
 *
 * @example
 * ```ts
 * useProgram({ cmd: Deno.execPath(), args: ["run", "-A", "/tmp/old/main.ts"] });
 * ```
 */
export function useProgram(p: Program): void {
  _program_ = p;
}

/**
 * The command line the endpoint is started with now.
 *
 * @example
 * ```ts
 * currentProgram().cmd;
 * ```
 */
export function currentProgram(): Program {
  return _program_;
}

function _program(): Program {
  return _program_;
}

/** Name of the benchmark endpoint. */
export const BENCH_ENDPOINT = "bench";

/**
 * Endpoint `config.yaml` for the benchmark: one local block with `workers` workers
 * (and `prefetch_capacity` when given; the default config otherwise).
 *
 * @example
 * ```ts
 * benchEndpointConfig(2);
 * ```
 */
export function benchEndpointConfig(workers: number, prefetch?: number): string {
  return [
    "heartbeat_period: 30",
    "heartbeat_threshold: 120",
    "log_level: info",
    "provider:",
    "  type: local",
    "  init_blocks: 1",
    "  min_blocks: 1",
    "  max_blocks: 1",
    "executor:",
    `  max_workers_per_node: ${workers}`,
    "  worker_max_idletime: 0",
    ...(prefetch === undefined ? [] : [`  prefetch_capacity: ${prefetch}`]),
    "",
  ].join("\n");
}

/**
 * Write the global config (service at `serviceUrl`), the endpoint config and, when
 * `token` is given, a token file, in `home` (a new temp dir when not given).
 *
 * @example
 * ```ts
 * const home = prepareHome({ serviceUrl: "http://127.0.0.1:8400/v2", workers: 2, token: "x" });
 * ```
 */
export function prepareHome(
  opts: { serviceUrl: string; workers: number; token?: string; home?: string; prefetch?: number },
): string {
  const home = opts.home ?? Deno.makeTempDirSync({ prefix: "fx-bench-" });
  const auth = opts.serviceUrl.replace(/\/v2\/?$/, "/auth");
  Deno.writeTextFileSync(
    join(home, "config.yaml"),
    `service_address: ${opts.serviceUrl}\nauth_address: ${auth}\nclient_id: ${NATIVE_CLIENT_ID}\n`,
    { mode: 0o600 },
  );
  const dir = join(home, BENCH_ENDPOINT);
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(
    join(dir, "config.yaml"),
    benchEndpointConfig(opts.workers, opts.prefetch),
    {
      mode: 0o600,
    },
  );
  if (opts.token !== undefined) {
    const cred = join(home, "credentials");
    Deno.mkdirSync(cred, { recursive: true, mode: 0o700 });
    Deno.writeTextFileSync(
      join(cred, "funcx_sdk_tokens.json"),
      JSON.stringify({
        funcx_service: {
          scope: "bench",
          access_token: opts.token,
          refresh_token: null,
          token_type: "Bearer",
          expires_at_seconds: Math.floor(Date.now() / 1000) + 7 * 86400,
          resource_server: "funcx_service",
        },
      }) + "\n",
      { mode: 0o600 },
    );
  }
  return home;
}

/** A running benchmark endpoint. */
export interface EndpointProcess {
  home: string;
  dir: string;
  /** Pid of the daemon (the process that runs the Endpoint). */
  pid: number;
  endpointId: string;
  /** Pids of its managers. */
  managerPids: number[];
  /**
   * Seconds from spawning the CLI until `ready` resolved (a probe task came back), or
   * until `status.json` said connected with every worker idle when no `ready` was given.
   */
  startupSeconds: number;
  status(): StatusFile | null;
  /** SIGTERM the daemon and wait until it is gone. */
  stop(): Promise<void>;
}

function _status(dir: string): StatusFile | null {
  try {
    return JSON.parse(Deno.readTextFileSync(join(dir, "status.json"))) as StatusFile;
  } catch {
    return null;
  }
}

function _alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Start the endpoint. `detached: true` runs the user command `start NAME` (daemonizes,
 * returns once connected); otherwise `start NAME --foreground` as a child. Either way
 * this resolves once `status.json` says connected with `workers` idle workers.
 *
 * @example
 * ```ts ignore
 * const ep = await startEndpointProcess({ home, workers: 2, detached: true });
 * ep.startupSeconds;
 * ```
 */
export async function startEndpointProcess(
  opts: {
    home: string;
    workers: number;
    detached?: boolean;
    timeoutMs?: number;
    args?: string[];
    /** Resolves once the endpoint answered a probe task (start-up measurement). */
    ready?: () => Promise<void>;
  },
): Promise<EndpointProcess> {
  const dir = join(opts.home, BENCH_ENDPOINT);
  try {
    Deno.removeSync(join(dir, "status.json"));
  } catch { /* first start */ }
  const prog = _program();
  const args = [...prog.args, "start", BENCH_ENDPOINT];
  if (!opts.detached) args.push("--foreground");
  args.push(...(opts.args ?? []));
  const t0 = performance.now();
  const child = new Deno.Command(prog.cmd, {
    args,
    env: { FUNCX_HOME: opts.home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const drained = (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) {
      stderr += dec.decode(c, { stream: true });
      if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    }
  })().catch(() => {});
  let exit: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exit = s));
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  let readyAt: number | undefined;
  let readyError: Error | undefined;
  opts.ready?.().then(() => readyAt = performance.now(), (e) => readyError = e);
  let st: StatusFile | null = null;
  while (true) {
    st = _status(dir);
    const idle = st?.managers.reduce((n, m) => n + m.idle_workers, 0) ?? 0;
    if (readyError) {
      child.kill("SIGKILL");
      await status;
      throw readyError;
    }
    const probed = !opts.ready || readyAt !== undefined;
    if (probed && st?.state === "connected" && idle >= opts.workers) break;
    if (exit && (!opts.detached || exit.code !== 0)) {
      await drained;
      throw new Error(
        `bench: endpoint exited (code ${exit.code}) before it was ready: ${stderr.slice(-2000)}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await status;
      throw new Error(
        `bench: endpoint not ready in time (state ${st?.state}): ${stderr.slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const startupSeconds = ((readyAt ?? performance.now()) - t0) / 1000;
  const pid = st.pid;
  if (opts.detached) await status;
  const managerPids = findManagerPids(dir);
  return {
    home: opts.home,
    dir,
    pid,
    endpointId: st.endpoint_id ?? "",
    managerPids,
    startupSeconds,
    status: () => _status(dir),
    async stop() {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch { /* gone */ }
      const until = Date.now() + 30_000;
      while (_alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      if (_alive(pid)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      for (const m of managerPids) {
        if (_alive(m)) {
          try {
            Deno.kill(m, "SIGKILL");
          } catch { /* gone */ }
        }
      }
      if (!opts.detached) await status;
      await drained;
    },
  };
}
