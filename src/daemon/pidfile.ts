/**
 * The daemon pid file: `"<pid>\n<start-ticks>\n<host>\n"`, where start-ticks is field 22 of
 * `/proc/<pid>/stat` (the process start time in clock ticks since boot). Comparing it
 * detects a pid reused by another process after a crash, so a stale file is never
 * mistaken for a running daemon. The host is the login node the daemon runs on: a funcX home
 * shared by several login nodes (NFS, GPFS) holds one lock for all of them, and a file
 * written on another host is never judged by a local pid check ({@linkcode checkPidFile}
 * gives `"remote"`). Files without a host line (older versions) belong to this host.
 *
 * The file is created exclusively and complete (written aside, then hard-linked into
 * place) and then held with an exclusive `Deno.FsFile.lock` for the life of the daemon.
 *
 * @example
 * ```ts
 * import { acquirePidFile, checkPidFile } from "./pidfile.ts";
 * const lock = await acquirePidFile("/home/u/.funcx/default/daemon.pid");
 * checkPidFile("/home/u/.funcx/default/daemon.pid").state; // "running"
 * lock.release();
 * ```
 * @module
 */
import { isLiveStat, procStat } from "./proc.ts";

export { type ProcStat, procStat } from "./proc.ts";

/** What a pid file holds. */
export interface PidInfo {
  pid: number;
  /** Start time of the process in clock ticks since boot (`/proc/<pid>/stat` field 22). */
  startTicks: number;
  /** Host name of the machine the process runs on (absent in files of older versions). */
  host?: string;
}

/** Result of {@linkcode checkPidFile}. */
export type PidFileState =
  | { state: "none" }
  | { state: "running"; pid: number; startTicks: number }
  | { state: "remote"; pid: number; startTicks: number; host: string }
  | { state: "stale"; pid?: number; startTicks?: number; reason: string };

/**
 * Thrown by {@linkcode acquirePidFile} when a live process, or a process on another host
 * (`host` set), holds the pid file.
 */
export class AlreadyRunningError extends Error {
  constructor(readonly pid: number, readonly path: string, readonly host?: string) {
    super(`already running (pid ${pid}${host ? ` on host ${host}` : ""}, pid file ${path})`);
    this.name = "AlreadyRunningError";
  }
}

/**
 * The host name of this machine (as `hostname` prints it; per UTS namespace).
 *
 * @example
 * ```ts
 * localHost(); // "login1"
 * ```
 */
export function localHost(): string {
  return Deno.hostname();
}

/**
 * True when `pid` is a live (non-zombie) process, and, if `startTicks` is given,
 * the same process that wrote it.
 *
 * @example
 * ```ts
 * isAlive(Deno.pid); // true
 * ```
 */
export function isAlive(pid: number, startTicks?: number): boolean {
  const st = procStat(pid);
  if (!isLiveStat(st)) return false;
  return startTicks === undefined || st.startTicks === startTicks;
}

/**
 * Parse pid file text; `undefined` when it is not `"<pid>\n<ticks>\n[<host>\n]"`.
 *
 * @example
 * ```ts
 * parsePidFile("42\n1234\nlogin1\n"); // { pid: 42, startTicks: 1234, host: "login1" }
 * ```
 */
export function parsePidFile(text: string): PidInfo | undefined {
  const m = /^(\d+)\n(\d+)(?:\n([^\s/]{1,253}))?\n?$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  const startTicks = Number(m[2]);
  if (pid <= 0 || !Number.isSafeInteger(pid) || !Number.isSafeInteger(startTicks)) {
    return undefined;
  }
  return m[3] === undefined ? { pid, startTicks } : { pid, startTicks, host: m[3] };
}

/**
 * The text of a pid file for `info`.
 *
 * @example
 * ```ts
 * formatPidFile({ pid: 42, startTicks: 1234, host: "login1" }); // "42\n1234\nlogin1\n"
 * ```
 */
export function formatPidFile(info: PidInfo): string {
  return `${info.pid}\n${info.startTicks}\n${info.host ? `${info.host}\n` : ""}`;
}

/**
 * Classify a pid file: none, running (live process with matching start time), remote
 * (written on another host: its liveness cannot be checked here), or stale (dead process,
 * reused pid, or garbage content).
 *
 * @example
 * ```ts
 * checkPidFile("/nonexistent/daemon.pid"); // { state: "none" }
 * ```
 */
export function checkPidFile(path: string, host: string = localHost()): PidFileState {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: "none" };
    throw e;
  }
  const info = parsePidFile(text);
  if (!info) return { state: "stale", reason: "unreadable pid file content" };
  if (info.host !== undefined && info.host !== host) {
    return { state: "remote", pid: info.pid, startTicks: info.startTicks, host: info.host };
  }
  const st = procStat(info.pid);
  if (!isLiveStat(st)) {
    return {
      state: "stale",
      pid: info.pid,
      startTicks: info.startTicks,
      reason: `process ${info.pid} is not running`,
    };
  }
  if (st.startTicks !== info.startTicks) {
    return {
      state: "stale",
      pid: info.pid,
      startTicks: info.startTicks,
      reason: `pid ${info.pid} now belongs to another process (start time differs)`,
    };
  }
  return { state: "running", pid: info.pid, startTicks: info.startTicks };
}

/**
 * Like {@linkcode checkPidFile}, but a stale file is removed (if unchanged meanwhile).
 *
 * @example
 * ```ts
 * const s = cleanStalePidFile("/home/u/.funcx/default/daemon.pid");
 * if (s.state === "stale") console.log(`cleaned up: ${s.reason}`);
 * ```
 */
export function cleanStalePidFile(path: string, host: string = localHost()): PidFileState {
  const s = checkPidFile(path, host);
  if (s.state === "stale") _removeIfContent(path, s.pid);
  return s;
}

function _removeIfContent(path: string, pid: number | undefined) {
  try {
    const now = parsePidFile(Deno.readTextFileSync(path));
    if (pid !== undefined && now && now.pid !== pid) return;
    Deno.removeSync(path);
  } catch { /* already gone */ }
}

/** A held pid file; {@linkcode PidFile.release} removes it. */
export class PidFile {
  #released = false;
  /** @internal use {@linkcode acquirePidFile} */
  constructor(readonly path: string, readonly info: PidInfo, private readonly _file: Deno.FsFile) {}

  /**
   * Unlock and remove the pid file (idempotent).
   *
   * @example
   * ```ts
   * (await acquirePidFile("/tmp/x.pid")).release();
   * ```
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      const now = parsePidFile(Deno.readTextFileSync(this.path));
      if (
        now && now.pid === this.info.pid && now.startTicks === this.info.startTicks &&
        now.host === this.info.host
      ) {
        Deno.removeSync(this.path);
      }
    } catch { /* already removed */ }
    try {
      this._file.unlockSync();
    } catch { /* closed */ }
    try {
      this._file.close();
    } catch { /* closed */ }
  }
}

/**
 * Create the pid file for the current process exclusively and lock it. A stale file is
 * cleaned up first; a live owner gives {@linkcode AlreadyRunningError}.
 *
 * @example
 * ```ts
 * const pf = await acquirePidFile("/home/u/.funcx/default/daemon.pid");
 * try {
 *   // run the daemon
 * } finally {
 *   pf.release();
 * }
 * ```
 */
export async function acquirePidFile(
  path: string,
  self: PidInfo = currentProcess(),
): Promise<PidFile> {
  // Write the full content to a private file, then hard-link it into place: link(2) fails
  // when the pid file exists, so creation is exclusive and nobody ever sees it half written.
  const tmp = `${path}.${self.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  Deno.writeTextFileSync(tmp, formatPidFile(self), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        Deno.linkSync(tmp, path);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        const s = checkPidFile(path);
        if (s.state === "running") throw new AlreadyRunningError(s.pid, path);
        if (s.state === "remote") throw new AlreadyRunningError(s.pid, path, s.host);
        if (s.state === "stale") _removeIfContent(path, s.pid);
        continue;
      }
      const file = await Deno.open(path, { read: true, write: true });
      await file.lock(true);
      return new PidFile(path, self, file);
    }
    throw new Error(`cannot create pid file ${path}: it keeps reappearing`);
  } finally {
    try {
      Deno.removeSync(tmp);
    } catch { /* gone */ }
  }
}

/**
 * The pid, start ticks and host of this process.
 *
 * @example
 * ```ts
 * currentProcess().pid === Deno.pid; // true
 * ```
 */
export function currentProcess(): PidInfo {
  const st = procStat(Deno.pid);
  if (!st) throw new Error("cannot read /proc/self/stat (is /proc mounted?)");
  return { pid: Deno.pid, startTicks: st.startTicks, host: localHost() };
}

/**
 * Remove the pid file of a daemon on another host that is gone for good (the explicit
 * `stop --clear-dead-host`); only when the file still names that host and pid.
 * Returns true when it was removed.
 *
 * @example
 * ```ts
 * clearRemotePidFile("/home/u/.funcx/default/daemon.pid", "login2", 4242);
 * ```
 */
export function clearRemotePidFile(path: string, host: string, pid: number): boolean {
  try {
    const now = parsePidFile(Deno.readTextFileSync(path));
    if (!now || now.host !== host || now.pid !== pid) return false;
    Deno.removeSync(path);
    return true;
  } catch {
    return false;
  }
}
