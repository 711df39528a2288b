/**
 * Stopping a daemon from another login node. Signals do not cross hosts, so `stop` on a
 * host other than the daemon's writes a stop request (`stop.request`, JSON) into the
 * endpoint directory of the shared funcX home; the daemon polls for it (inotify does not
 * see writes made by other NFS clients) and stops cleanly when the request names its own
 * host and pid. A request for another daemon (an old one) is removed and ignored.
 *
 * @example
 * ```ts
 * import { watchStopRequest, writeStopRequest } from "./stop_request.ts";
 * const w = watchStopRequest("/h/ep/stop.request", { pid: 42, host: "login1" }, (r) => console.log(r.from));
 * writeStopRequest("/h/ep/stop.request", { pid: 42, host: "login1" }, "login2");
 * w.close();
 * ```
 * @module
 */
import { atomicWrite } from "../endpoint/files.ts";

/** The content of a stop request. */
export interface StopRequest {
  /** Host and pid of the daemon that is asked to stop. */
  host: string;
  pid: number;
  /** Host the request was made on. */
  from: string;
  /** ISO time of the request. */
  time: string;
}

/**
 * Write a stop request for the daemon `target` (atomically: the daemon never reads half).
 *
 * @example
 * ```ts
 * writeStopRequest("/h/ep/stop.request", { host: "login1", pid: 42 }, "login2");
 * ```
 */
export function writeStopRequest(
  path: string,
  target: { host: string; pid: number },
  from: string,
  now = new Date(),
): void {
  const r: StopRequest = { host: target.host, pid: target.pid, from, time: now.toISOString() };
  atomicWrite(path, JSON.stringify(r) + "\n", 0o600);
}

/**
 * Read a stop request; `undefined` when there is none or it is malformed.
 *
 * @example
 * ```ts
 * readStopRequest("/h/ep/stop.request")?.from; // "login2"
 * ```
 */
export function readStopRequest(path: string): StopRequest | undefined {
  try {
    const j = JSON.parse(Deno.readTextFileSync(path));
    if (typeof j?.host !== "string" || typeof j?.pid !== "number") return undefined;
    return { host: j.host, pid: j.pid, from: String(j.from ?? "?"), time: String(j.time ?? "") };
  } catch {
    return undefined;
  }
}

function _remove(path: string) {
  try {
    Deno.removeSync(path);
  } catch { /* gone */ }
}

/**
 * Poll `path` every `pollMs` for a stop request naming `self`; call `onRequest` once for it
 * (the file is removed). Requests for other daemons are removed and ignored. A request
 * already present at the start is left over from an earlier daemon and removed unless it
 * names `self`.
 *
 * @example
 * ```ts ignore
 * const w = watchStopRequest(p.stopRequest, { pid: Deno.pid, host: Deno.hostname() }, () => stop());
 * w.close();
 * ```
 */
export function watchStopRequest(
  path: string,
  self: { pid: number; host: string },
  onRequest: (r: StopRequest) => void,
  pollMs = 1000,
): { close(): void } {
  let done = false;
  const check = () => {
    if (done) return;
    let exists = true;
    try {
      Deno.statSync(path);
    } catch {
      exists = false;
    }
    if (!exists) return;
    const r = readStopRequest(path);
    _remove(path);
    if (r && r.host === self.host && r.pid === self.pid) {
      done = true;
      clearInterval(timer);
      onRequest(r);
    }
  };
  const timer = setInterval(check, pollMs);
  check();
  return {
    close() {
      done = true;
      clearInterval(timer);
    },
  };
}
