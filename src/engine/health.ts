/**
 * How a manager notices that its workers cannot run at all (a broken interpreter, a failing
 * import, a bad `worker_init`), instead of restarting them twice a second forever:
 *
 * - a worker that dies before it returned its first result is an *early death*; consecutive
 *   early deaths space the next start by a capped exponential back-off
 *   ({@linkcode respawnDelayMs});
 * - from the first early death on, the manager is *failing* with a one-line reason built from
 *   the dead worker's exit status and stderr tail ({@linkcode reasonLine}); it reports that to
 *   the interchange (the endpoint shows Degraded) until a worker returns a result or stays up
 *   for {@linkcode HEALTHY_AFTER_MS};
 * - worker stderr files are bounded in number and size ({@linkcode WorkerLogBudget}).
 *
 * Pure logic and small state; the clock is an input.
 *
 * @example
 * ```ts
 * import { WorkerHealth } from "./health.ts";
 * const h = new WorkerHealth();
 * const { delayMs } = h.exited({ ranTask: false, how: "exit code 127", stderrTail: "python3: not found" }, 0);
 * h.problem; // "workers exit before their first task (1 in a row; exit code 127): python3: not found"
 * ```
 * @module
 */

/** A worker that stays up this long after a start is healthy again (ms). */
export const HEALTHY_AFTER_MS = 10_000;

/**
 * Delay before the next worker start after `earlyDeaths` consecutive early deaths:
 * 0 for none, then base, 2·base, 4·base ... capped.
 *
 * @example
 * ```ts
 * [0, 1, 2, 3, 9].map((n) => respawnDelayMs(n)); // [0, 1000, 2000, 4000, 60000]
 * ```
 */
export function respawnDelayMs(earlyDeaths: number, baseMs = 1000, capMs = 60_000): number {
  if (earlyDeaths <= 0) return 0;
  return Math.min(capMs, baseMs * 2 ** Math.min(earlyDeaths - 1, 30));
}

/**
 * The last few non-empty lines of `text`, joined with ` | `, at most `maxChars` (the end kept).
 *
 * @example
 * ```ts
 * reasonLine("a\n\nb\nc\n", 2); // "b | c"
 * ```
 */
export function reasonLine(text: string, maxLines = 3, maxChars = 400): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).slice(-maxLines);
  const s = lines.join(" | ");
  return s.length > maxChars ? `…${s.slice(s.length - maxChars + 1)}` : s;
}

/** What {@linkcode WorkerHealth.exited} needs to know about a dead worker. */
export interface WorkerExit {
  /** The worker returned at least one result. */
  ranTask: boolean;
  /** `exit code N` or `killed by signal S`. */
  how: string;
  /** The end of its stderr. */
  stderrTail: string;
}

/**
 * Early-death accounting of one manager's workers.
 *
 * @example
 * ```ts
 * const h = new WorkerHealth();
 * h.exited({ ranTask: false, how: "exit code 1", stderrTail: "" }, 0).delayMs; // 1000
 * h.ranTask(); h.problem; // null
 * ```
 */
export class WorkerHealth {
  #early = 0;
  #problem: string | null = null;
  #lastStart = -Infinity;

  constructor(private readonly _baseMs = 1000, private readonly _capMs = 60_000) {}

  /** Consecutive early deaths. */
  get earlyDeaths(): number {
    return this.#early;
  }

  /** The current one-line problem, or null when the workers are fine. */
  get problem(): string | null {
    return this.#problem;
  }

  /** A worker died; returns how long to wait before starting the next one. */
  exited(e: WorkerExit, _now: number): { delayMs: number } {
    if (e.ranTask) return { delayMs: 0 };
    this.#early++;
    const tail = reasonLine(e.stderrTail);
    this.#problem = `workers exit before their first task (${this.#early} in a row; ${e.how})${
      tail ? `: ${tail}` : ""
    }`;
    return { delayMs: respawnDelayMs(this.#early, this._baseMs, this._capMs) };
  }

  /** A worker was started at `now`. */
  started(now: number): void {
    this.#lastStart = now;
  }

  /** A worker returned a result: the workers work. Returns true when a problem was cleared. */
  ranTask(): boolean {
    return this.#clear();
  }

  /**
   * Periodic check: a worker alive for {@linkcode HEALTHY_AFTER_MS} since the last start
   * clears the problem. Returns true when a problem was cleared.
   */
  tick(now: number, anyAlive: boolean): boolean {
    if (anyAlive && this.#early > 0 && now - this.#lastStart >= HEALTHY_AFTER_MS) {
      return this.#clear();
    }
    return false;
  }

  #clear(): boolean {
    const had = this.#problem !== null;
    this.#early = 0;
    this.#problem = null;
    return had;
  }
}

/**
 * Keeps the stderr files of a manager's workers bounded: at most `maxFiles` files (the oldest
 * of dead workers are removed) and `maxBytes` per file (the rest of a file's output is dropped
 * after one marker line).
 *
 * @example
 * ```ts
 * const b = new WorkerLogBudget(3, 1 << 20);
 * b.allow(1000, 500); // of 500 bytes, how many may still go to a file holding 1000
 * ```
 */
export class WorkerLogBudget {
  #files: string[] = [];

  constructor(readonly maxFiles = 20, readonly maxBytes = 1 << 20) {}

  /** Register a new file; returns the paths to delete now (oldest beyond `maxFiles`). */
  add(path: string): string[] {
    this.#files.push(path);
    return this.#files.length > this.maxFiles
      ? this.#files.splice(0, this.#files.length - this.maxFiles)
      : [];
  }

  /**
   * How many of `n` bytes may be written to a file that holds `written` bytes.
   *
   * @example
   * ```ts
   * new WorkerLogBudget(1, 10).allow(8, 5); // 2
   * ```
   */
  allow(written: number, n: number): number {
    return Math.max(0, Math.min(n, this.maxBytes - written));
  }
}
