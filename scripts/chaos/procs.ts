/**
 * Process helpers for the chaos run: find the processes of one funcX home through `/proc`
 * (service, endpoint daemon, managers, Python workers), kill them with a signal and wait
 * until they are gone, and pick free TCP ports.
 *
 * @example
 * ```ts
 * import { findProcesses, killAndWait } from "./procs.ts";
 * const workers = findProcesses("/tmp/fx-chaos-1", "worker");
 * if (workers.length > 0) await killAndWait(workers[0].pid);
 * ```
 * @module
 */

/** Kinds of processes the chaos run can kill. */
export type ProcKind = "manager" | "worker";

/** One process found in `/proc`. */
export interface ProcInfo {
  pid: number;
  argv: string[];
}

/**
 * The command line of `pid` (empty when it is gone or unreadable).
 *
 * @example
 * ```ts
 * readCmdline(Deno.pid); // ["/usr/bin/deno", "run", ...]
 * ```
 */
export function readCmdline(pid: number): string[] {
  try {
    const raw = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    return raw.split("\0").filter((s) => s !== "");
  } catch {
    return [];
  }
}

/**
 * True while `pid` exists and is not a zombie.
 *
 * @example
 * ```ts
 * isAlive(Deno.pid); // true
 * ```
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * All live processes whose command line mentions `home`, of the given kind:
 * `manager` = `funcx-endpoint manager ...` (its `--logdir` lies below the home),
 * `worker` = `python3 .../funcx_worker.py` below the home.
 *
 * @example
 * ```ts ignore
 * findProcesses(home, "manager").map((p) => p.pid);
 * ```
 */
export function findProcesses(home: string, kind: ProcKind): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    const argv = readCmdline(pid);
    if (argv.length === 0 || !argv.some((a) => a.includes(home))) continue;
    if (!isAlive(pid)) continue;
    // the manager's own argv names the worker script too (--worker-script): test it first
    const isManager = argv.includes("manager") && argv.includes("--task-url");
    const isWorker = !isManager && argv.some((a) => a.endsWith("funcx_worker.py"));
    if ((kind === "worker" && isWorker) || (kind === "manager" && isManager)) {
      out.push({ pid, argv });
    }
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/**
 * Every live process whose command line or `FUNCX_HOME` names `home` (for cleanup).
 *
 * @example
 * ```ts ignore
 * for (const pid of processesOfHome(home)) Deno.kill(pid, "SIGKILL");
 * ```
 */
export function processesOfHome(home: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if (pid === Deno.pid || !isAlive(pid)) continue;
    let mine = readCmdline(pid).some((a) => a.includes(home));
    if (!mine) {
      try {
        const env = Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0");
        mine = env.includes(`FUNCX_HOME=${home}`);
      } catch { /* not ours or gone */ }
    }
    if (mine) out.push(pid);
  }
  return out;
}

/**
 * Send `signal` to `pid` and wait (bounded) until it is gone. Returns false when it
 * was already gone.
 *
 * @example
 * ```ts ignore
 * await killAndWait(pid); // SIGKILL
 * ```
 */
export async function killAndWait(
  pid: number,
  signal: Deno.Signal = "SIGKILL",
  timeoutMs = 15_000,
): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    Deno.kill(pid, signal);
  } catch {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return true;
}

function _canBind(port: number): boolean {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * A free port for HTTP and a base port with three free consecutive ports for the forwarder.
 *
 * @example
 * ```ts
 * const { http, forwarder } = freePorts();
 * ```
 */
export function freePorts(): { http: number; forwarder: number } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const http = (l.addr as Deno.NetAddr).port;
  l.close();
  for (let i = 0; i < 200; i++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if (base <= http && http <= base + 2) continue;
    if (_canBind(base) && _canBind(base + 1) && _canBind(base + 2)) {
      return { http, forwarder: base };
    }
  }
  throw new Error("no three consecutive free ports found for the forwarder");
}
