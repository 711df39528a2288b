/**
 * Whether the endpoint is Degraded, and why: the interchange's bookkeeping of what keeps
 * work from running although the endpoint is connected.
 *
 * - a manager reports that its workers die before their first task (health.ts);
 * - a block's job ends before its manager ever connected, or fails: its job output tail
 *   becomes the reason, and the next submission waits a capped exponential back-off
 *   ({@linkcode blockBackoffMs}) so a broken `worker_init` does not submit job after job;
 * - a running job whose manager has not connected within a deadline is reported too.
 *
 * A reason is announced (to be logged) once per distinct text, numbers ignored. Pure state;
 * the clock is an input.
 *
 * @example
 * ```ts
 * import { Degradation } from "./degraded.ts";
 * const d = new Degradation();
 * d.blockFailed("0", "job 12 FAILED: exit 3", 0).backoffMs; // 15000
 * d.reason; // "block 0: job 12 FAILED: exit 3"
 * ```
 * @module
 */

/**
 * Wait before the next block submission after `failures` consecutive block failures:
 * 15 s, 30 s, 60 s ... capped at 10 min. (From t=0: submissions at 0, ≥15, ≥45, ≥105 s: at
 * most 4 in any first 2 minutes however fast the jobs fail.)
 *
 * @example
 * ```ts
 * [0, 1, 2, 3].map((n) => blockBackoffMs(n)); // [0, 15000, 30000, 60000]
 * ```
 */
export function blockBackoffMs(failures: number, baseMs = 15_000, capMs = 600_000): number {
  if (failures <= 0) return 0;
  return Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30));
}

function _kind(reason: string): string {
  return reason.replace(/\d+/g, "#");
}

/** See the module doc. */
export class Degradation {
  #managers = new Map<string, string>();
  #blocks = new Map<string, string>();
  #connected = new Set<string>();
  #runningSince = new Map<string, number>();
  #failures = 0;
  #seen = new Set<string>();

  /** Consecutive block failures (reset when a manager connects). */
  get blockFailures(): number {
    return this.#failures;
  }

  /** The current reason (managers first, then blocks), or null when nothing is wrong. */
  get reason(): string | null {
    for (const [id, p] of this.#managers) return `manager ${id}: ${p}`;
    for (const [id, p] of this.#blocks) return `block ${id}: ${p}`;
    return null;
  }

  #announce(reason: string): string | undefined {
    const k = _kind(reason);
    if (this.#seen.has(k)) return undefined;
    if (this.#seen.size > 1000) this.#seen.clear();
    this.#seen.add(k);
    return reason;
  }

  /**
   * A manager's reported problem (null: fine). Returns the reason when it is new (to log).
   *
   * @example
   * ```ts
   * new Degradation().manager("m1", "workers exit before their first task"); // "workers exit before their first task"
   * ```
   */
  manager(id: string, problem: string | null): string | undefined {
    if (problem === null) {
      this.#managers.delete(id);
      return undefined;
    }
    this.#managers.set(id, problem);
    return this.#announce(problem);
  }

  /** The problem a manager reported, if any. */
  problemOf(id: string): string | undefined {
    return this.#managers.get(id);
  }

  /** A manager is gone (its problem with it). */
  managerGone(id: string): void {
    this.#managers.delete(id);
  }

  /** A manager of `blockId` connected: the block works, failures are forgotten. */
  blockConnected(blockId: string): void {
    this.#connected.add(blockId);
    this.#blocks.clear(); // a working block: earlier failures no longer describe the endpoint
    this.#runningSince.delete(blockId);
    this.#failures = 0;
  }

  /** True when a manager of `blockId` has ever connected. */
  hasConnected(blockId: string): boolean {
    return this.#connected.has(blockId);
  }

  /**
   * A block's job ended badly. Returns the back-off for the next submission and the reason
   * when it is new (to log).
   */
  blockFailed(
    blockId: string,
    reason: string,
    _now: number,
  ): { backoffMs: number; announce?: string } {
    this.#failures++;
    this.#blocks.set(blockId, reason);
    this.#runningSince.delete(blockId);
    return { backoffMs: blockBackoffMs(this.#failures), announce: this.#announce(reason) };
  }

  /**
   * A block's job runs at `now` and none of its managers has connected: true once that has
   * lasted `deadlineMs` (the caller then reports it).
   */
  blockWaiting(blockId: string, now: number, deadlineMs: number): boolean {
    if (this.#connected.has(blockId)) return false;
    const since = this.#runningSince.get(blockId);
    if (since === undefined) {
      this.#runningSince.set(blockId, now);
      return false;
    }
    return now - since >= deadlineMs;
  }

  /** Report that a running block's manager has not connected (kept until it does or ends). */
  blockNotConnecting(blockId: string, reason: string): string | undefined {
    this.#blocks.set(blockId, reason);
    return this.#announce(reason);
  }

  /** A block is gone for good (scaled in, pruned): forget its problem. */
  blockGone(blockId: string): void {
    this.#blocks.delete(blockId);
    this.#connected.delete(blockId);
    this.#runningSince.delete(blockId);
  }
}
