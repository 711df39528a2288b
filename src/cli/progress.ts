/**
 * Progress of a long wait on a terminal: one line on stderr, rewritten in place with the
 * elapsed time, erased when the wait ends. Nothing at all when stderr is not a terminal
 * (scripts, logs, CI), so output there stays exactly as before.
 *
 * @example
 * ```ts ignore
 * import { progress } from "./progress.ts";
 * const p = progress("waiting for the endpoint to connect");
 * try { await somethingLong(); } finally { p.done(); }
 * ```
 * @module
 */

/** A running progress line. */
export interface Progress {
  /** Replace the text after the label (e.g. "3 of 5 blocks"). */
  update(detail: string): void;
  /** Erase the line now (before printing other output); it is drawn again at the next tick. */
  clear(): void;
  /** Erase the line and stop the timer. Idempotent. */
  done(): void;
}

/** Options of {@linkcode progress}. */
export interface ProgressOptions {
  /** Whether to draw (default: stderr is a terminal). */
  tty?: boolean;
  /** Where to draw (default: stderr). */
  write?: (text: string) => void;
  /** Milliseconds between redraws (default 200). */
  periodMs?: number;
  /** Monotonic milliseconds (default `performance.now`). */
  now?: () => number;
}

const _FRAMES = ["|", "/", "-", "\\"];

/**
 * Show `label` with a spinner and the elapsed seconds until `done()`.
 *
 * @example
 * ```ts ignore
 * const p = progress("stopping", { tty: true, write: (t) => out.push(t) });
 * p.done();
 * ```
 */
export function progress(label: string, opts: ProgressOptions = {}): Progress {
  let tty = opts.tty;
  if (tty === undefined) {
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
  }
  if (!tty) return { update() {}, clear() {}, done() {} };
  const enc = new TextEncoder();
  const write = opts.write ?? ((t: string) => {
    try {
      Deno.stderr.writeSync(enc.encode(t));
    } catch { /* terminal gone */ }
  });
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  let detail = "";
  let frame = 0;
  let drawn = false;
  const draw = () => {
    const s = ((now() - t0) / 1000).toFixed(0);
    write(
      `\r\x1b[2K${_FRAMES[frame++ % _FRAMES.length]} ${label}${
        detail ? `: ${detail}` : ""
      } (${s} s)`,
    );
    drawn = true;
  };
  const timer = setInterval(draw, opts.periodMs ?? 200);
  Deno.unrefTimer(timer);
  let ended = false;
  return {
    update(d: string) {
      detail = d;
    },
    clear() {
      if (drawn) write("\r\x1b[2K");
      drawn = false;
    },
    done() {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      if (drawn) write("\r\x1b[2K");
    },
  };
}

/**
 * Await `work` with a {@linkcode progress} line labelled `label` (on a terminal only).
 *
 * @example
 * ```ts ignore
 * const r = await withProgress("stopping endpoint \"default\"", stopDaemon({ pidFile }));
 * ```
 */
export async function withProgress<T>(label: string, work: Promise<T>): Promise<T> {
  const p = progress(label);
  try {
    return await work;
  } finally {
    p.done();
  }
}
