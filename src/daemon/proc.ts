/**
 * Process inspection and signalling from inside the sandbox.
 *
 * The sandboxed worker may not read `/proc/<pid>/*` (Deno requires full read access for
 * it) nor call `Deno.kill` (it requires unrestricted `--allow-run`), but it may run
 * `bash`; so these helpers read `/proc` and send signals through bash builtins. Where
 * there is no `/proc` (macOS), `ps` is used instead, and the "start ticks" are the
 * process start time in seconds since the epoch (`ps -o lstart`).
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

const _MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

/**
 * Parse one line of `ps -o pid=,ppid=,pgid=,stat=,lstart=` (the fallback without
 * `/proc`); the session is not available there and is reported as the process group.
 *
 * @example
 * ```ts
 * parsePsLine(" 42  1  42 Ss   Wed Nov 25 14:03:16 2026")?.pgrp; // 42
 * ```
 */
export function parsePsLine(line: string): ProcStat | undefined {
  const m =
    /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+\w{3}\s+(\w{3})\s+(\d{1,2})\s+(\d\d):(\d\d):(\d\d)\s+(\d{4})\s*$/
      .exec(line);
  if (!m) return undefined;
  const month = _MONTHS.indexOf(m[5]);
  if (month < 0) return undefined;
  const start = new Date(
    Number(m[10]),
    month,
    Number(m[6]),
    Number(m[7]),
    Number(m[8]),
    Number(m[9]),
  );
  return {
    pid: Number(m[1]),
    state: m[4][0],
    ppid: Number(m[2]),
    pgrp: Number(m[3]),
    session: Number(m[3]),
    startTicks: Math.floor(start.getTime() / 1000),
  };
}

const _PS = "LC_ALL=C ps -o pid=,ppid=,pgid=,stat=,lstart=";

function _parseAll(stdout: string): ProcStat[] {
  const out: ProcStat[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    const st = line.startsWith("P ") ? parsePsLine(line.slice(2)) : parseStatLine(line);
    if (st) out.push(st);
  }
  return out;
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
    `if [ -r /proc/self/stat ] && [ -z "$FUNCX_PROC_PS" ]; then
       for p in "$@"; do read -r l < "/proc/$p/stat" 2>/dev/null && printf "%s\\n" "$l"; done
     else
       for p in "$@"; do ${_PS} -p "$p" 2>/dev/null | sed 's/^/P /'; done
     fi; true`,
    valid,
  );
  for (const st of _parseAll(r.stdout)) out.set(st.pid, st);
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
    `if [ -r /proc/self/stat ] && [ -z "$FUNCX_PROC_PS" ]; then
       for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null && printf "%s\\n" "$l"; done
     else
       ${_PS} -A | sed 's/^/P /'
     fi; true`,
    [],
  );
  return _parseAll(r.stdout);
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

/**
 * Collect a spawned child's output, SIGKILLing it if it runs longer than `ms` (the output so
 * far is returned, with the kill's exit status).
 *
 * @example
 * ```ts
 * const child = new Deno.Command("bash", { args: ["-c", "sleep 9"], stdout: "piped" }).spawn();
 * const out = await outputWithin(child, 1000); // killed after 1 s: out.success === false
 * ```
 */
export async function outputWithin(
  child: Deno.ChildProcess,
  ms: number,
): Promise<Deno.CommandOutput> {
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, ms);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}
