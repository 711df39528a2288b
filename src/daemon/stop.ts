/**
 * Stop a daemon recorded in a pid file: SIGTERM, wait for a clean exit up to a timeout,
 * then SIGKILL its whole process group; leftovers of the group are killed too and the
 * pid file is removed. Stopping something that is not running is a no-op.
 *
 * @example
 * ```ts
 * import { stopDaemon } from "./stop.ts";
 * const r = await stopDaemon({ pidFile: "/home/u/.funcx/default/daemon.pid" });
 * console.log(r.result); // "stopped" | "killed" | "stale" | "not-running"
 * ```
 * @module
 */
import { sleep } from "../util/sleep.ts";
import { checkPidFile, parsePidFile } from "./pidfile.ts";
import { allProcesses, isLiveStat, procEnvVar, procStat, sendSignal } from "./proc.ts";

/** Options of {@linkcode stopDaemon}. */
export interface StopOptions {
  pidFile: string;
  /** How long to wait for a clean exit after SIGTERM (default 30 s). */
  timeoutMs?: number;
  /** Poll interval (default 100 ms). */
  pollMs?: number;
  /**
   * funcX home of the daemon: with it, the leftovers of a daemon that died without
   * cleaning up (`kill -9`) are killed too (see {@linkcode killLeftovers}).
   */
  home?: string;
}

/** Outcome of {@linkcode stopDaemon}. */
export type StopResult =
  | { result: "not-running" }
  | { result: "stale"; reason: string; leftovers: number }
  | { result: "stopped"; pid: number }
  | { result: "killed"; pid: number }
  | { result: "remote"; pid: number; host: string };

/**
 * Wait until process `pid` (with start time `startTicks`) is gone; true if it went.
 *
 * @example
 * ```ts
 * await waitForExit(1234, 5678, 5000);
 * ```
 */
export async function waitForExit(
  pid: number,
  startTicks: number | undefined,
  timeoutMs: number,
  pollMs = 100,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs; // monotonic: clock jumps do not matter
  for (;;) {
    const st = procStat(pid);
    if (!isLiveStat(st) || (startTicks !== undefined && st.startTicks !== startTicks)) return true;
    if (performance.now() >= deadline) return false;
    await sleep(pollMs);
  }
}

/**
 * SIGKILL every live process of process group `pgid`; returns how many there were.
 *
 * @example
 * ```ts
 * killProcessGroup(1234);
 * ```
 */
export function killProcessGroup(pgid: number): number {
  const members = allProcesses().filter((p) => p.pgrp === pgid && isLiveStat(p));
  if (members.length > 0) sendSignal(-pgid, "SIGKILL");
  return members.length;
}

/**
 * Kill what is left of a dead daemon (managers, workers): processes in the process group
 * of the dead daemon's pid, started after it, whose environment has `FUNCX_HOME=home`.
 * Nothing is done while that pid is in use. Linux does not reuse a pid while a process
 * group of that id exists, and the environment check makes sure that even a corrupt pid
 * file cannot lead to killing a stranger. Returns how many were killed.
 *
 * @example
 * ```ts
 * killLeftovers(1234, 5678, "/home/u/.funcx"); // after `kill -9 1234`
 * ```
 */
export function killLeftovers(pid: number, startTicks: number, home: string): number {
  const procs = allProcesses();
  if (procs.some((p) => p.pid === pid && isLiveStat(p))) return 0;
  const group = procs.filter((p) => p.pgrp === pid && isLiveStat(p) && p.startTicks >= startTicks);
  if (group.length === 0) return 0;
  const homes = procEnvVar(group.map((p) => p.pid), "FUNCX_HOME");
  const ours = group.filter((p) => homes.get(p.pid) === home);
  for (const p of ours) sendSignal(p.pid, "SIGKILL");
  return ours.length;
}

function _removePidFile(path: string, pid: number) {
  try {
    const info = parsePidFile(Deno.readTextFileSync(path));
    if (!info || info.pid === pid) Deno.removeSync(path);
  } catch { /* gone */ }
}

/**
 * Stop the daemon of `pidFile`; see the module doc.
 *
 * @example
 * ```ts
 * await stopDaemon({ pidFile: "/home/u/.funcx/service/service.pid", timeoutMs: 10_000 });
 * ```
 */
export async function stopDaemon(opts: StopOptions): Promise<StopResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pollMs = opts.pollMs ?? 100;
  const s = checkPidFile(opts.pidFile);
  if (s.state === "none") return { result: "not-running" };
  // signals do not reach other hosts: the caller asks that daemon (daemon/stop_request.ts)
  if (s.state === "remote") return { result: "remote", pid: s.pid, host: s.host };
  if (s.state === "stale") {
    const leftovers = opts.home && s.pid !== undefined && s.startTicks !== undefined
      ? killLeftovers(s.pid, s.startTicks, opts.home)
      : 0;
    try {
      Deno.removeSync(opts.pidFile);
    } catch { /* gone */ }
    return { result: "stale", reason: s.reason, leftovers };
  }
  const { pid, startTicks } = s;
  const st = procStat(pid);
  const ownGroup = st?.pgrp === pid;
  sendSignal(pid, "SIGTERM");
  let result: StopResult = { result: "stopped", pid };
  if (!await waitForExit(pid, startTicks, timeoutMs, pollMs)) {
    if (ownGroup) sendSignal(-pid, "SIGKILL");
    else sendSignal(pid, "SIGKILL");
    await waitForExit(pid, startTicks, 5000, pollMs);
    result = { result: "killed", pid };
  }
  // Whatever is left of the daemon's process group (e.g. orphaned managers) goes too.
  if (ownGroup) killProcessGroup(pid);
  _removePidFile(opts.pidFile, pid);
  return result;
}
