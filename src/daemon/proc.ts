/**
 * Process inspection and signalling from inside the sandbox.
 *
 * The sandboxed worker may not read `/proc/<pid>/*` (Deno requires full read access for
 * it) nor call `Deno.kill` (it requires unrestricted `--allow-run`), but it may run
 * `bash`; so these helpers read `/proc` and send signals through bash builtins.
 *
 * @example
 * ```ts
 * import { procStat, sendSignal } from "./proc.ts";
 * const st = procStat(1234);
 * if (st) sendSignal(st.pid, "SIGTERM");
 * ```
 * @module
 */

/** Fields of `/proc/<pid>/stat` we use. */
export interface ProcStat {
  pid: number;
  /** One-letter state; `Z` (zombie) and `X` (dead) count as not alive. */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Start time in clock ticks since boot (field 22). */
  startTicks: number;
}

const _dec = new TextDecoder();

function _bash(script: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const out = new Deno.Command("bash", {
    args: ["-c", script, "funcx-endpoint", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  return { code: out.code, stdout: _dec.decode(out.stdout), stderr: _dec.decode(out.stderr) };
}

/**
 * Parse one `/proc/<pid>/stat` line.
 *
 * @example
 * ```ts
 * parseStatLine("42 (a b) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0")?.startTicks; // 777
 * ```
 */
export function parseStatLine(line: string): ProcStat | undefined {
  const open = line.indexOf(" (");
  const close = line.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(line.slice(0, open));
  const rest = line.slice(close + 2).trim().split(/\s+/);
  if (!Number.isInteger(pid) || rest.length < 20) return undefined;
  // rest[0] is field 3 (state); field N is rest[N - 3].
  return {
    pid,
    state: rest[0],
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    session: Number(rest[3]),
    startTicks: Number(rest[19]),
  };
}

/**
 * `/proc/<pid>/stat` of several processes (missing ones are left out).
 *
 * @example
 * ```ts
 * procStats([Deno.pid]).get(Deno.pid)?.state; // "S"
 * ```
 */
export function procStats(pids: readonly number[]): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  const valid = pids.filter((p) => Number.isSafeInteger(p) && p > 0).map(String);
  if (valid.length === 0) return out;
  const r = _bash(
    'for p in "$@"; do read -r l < "/proc/$p/stat" 2>/dev/null && printf "%s\\n" "$l"; done; true',
    valid,
  );
  for (const line of r.stdout.split("\n")) {
    const st = line ? parseStatLine(line) : undefined;
    if (st) out.set(st.pid, st);
  }
  return out;
}

/**
 * `/proc/<pid>/stat` of one process, `undefined` when there is none.
 *
 * @example
 * ```ts
 * procStat(Deno.pid)?.pid === Deno.pid; // true
 * ```
 */
export function procStat(pid: number): ProcStat | undefined {
  return procStats([pid]).get(pid);
}

/**
 * Every process visible in `/proc`.
 *
 * @example
 * ```ts
 * allProcesses().filter((p) => p.pgrp === 1234);
 * ```
 */
export function allProcesses(): ProcStat[] {
  const r = _bash(
    'for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null && printf "%s\\n" "$l"; done; true',
    [],
  );
  const out: ProcStat[] = [];
  for (const line of r.stdout.split("\n")) {
    const st = line ? parseStatLine(line) : undefined;
    if (st) out.push(st);
  }
  return out;
}

/**
 * The value of environment variable `name` of each of `pids` (missing when the process
 * is gone, unreadable or lacks the variable).
 *
 * @example
 * ```ts
 * procEnvVar([1234], "FUNCX_HOME").get(1234); // "/home/u/.funcx"
 * ```
 */
export function procEnvVar(pids: readonly number[], name: string): Map<number, string> {
  const out = new Map<number, string>();
  const valid = pids.filter((p) => Number.isSafeInteger(p) && p > 0).map(String);
  if (valid.length === 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return out;
  const r = _bash(
    'n="$1"; shift; for p in "$@"; do ' +
      'v=$(tr "\\0" "\\n" < "/proc/$p/environ" 2>/dev/null | grep -m1 "^$n=") && ' +
      'printf "%s\\t%s\\n" "$p" "${v#*=}"; done; true',
    [name, ...valid],
  );
  for (const line of r.stdout.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab > 0) out.set(Number(line.slice(0, tab)), line.slice(tab + 1));
  }
  return out;
}

/**
 * True when `st` is a live (not zombie/dead) process.
 *
 * @example
 * ```ts
 * isLiveStat(procStat(Deno.pid)); // true
 * ```
 */
export function isLiveStat(st: ProcStat | undefined): st is ProcStat {
  return st !== undefined && st.state !== "Z" && st.state !== "X";
}

/** Signals the daemon code sends. */
export type SignalName = "SIGTERM" | "SIGKILL" | "SIGINT" | "SIGHUP";

/**
 * Send `signal` to a process (`target > 0`) or a process group (`target < 0`, i.e.
 * `-pgid`). Returns false when there was no such process.
 *
 * @example
 * ```ts
 * sendSignal(-1234, "SIGKILL"); // kill process group 1234
 * ```
 */
export function sendSignal(target: number, signal: SignalName): boolean {
  if (!Number.isSafeInteger(target) || target === 0 || target === -1) {
    throw new Error(`refusing to signal ${target}`);
  }
  const r = _bash('kill -s "$1" -- "$2" 2>/dev/null', [signal.slice(3), String(target)]);
  return r.code === 0;
}
