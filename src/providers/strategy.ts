/**
 * The scaling strategy: a pure function from the interchange's view of the world
 * (queue depth, running tasks, blocks) and the provider config to scaling decisions.
 *
 * Behaviour follows upstream's simple strategy:
 * - on the first call, launch `init_blocks` (capped at `max_blocks`);
 * - keep at least `min_blocks` active;
 * - while tasks wait, scale out toward
 *   `ceil(tasks * parallelism / slots_per_block)` blocks (at least one), capped at `max_blocks`;
 * - when nothing waits, cancel blocks that have been idle for `max_idletime`, down to
 *   `min_blocks`, never a block with running tasks;
 * - after a failed submission, no scale-out until the backoff has passed.
 *
 * @example
 * ```ts
 * import { decide } from "./strategy.ts";
 * const d = decide({
 *   now: 0, firstRun: true, queued: 0, running: 0, blocks: [], slotsPerNode: 2,
 *   maxIdletime: 60, backoffUntil: 0,
 *   provider: { init_blocks: 1, min_blocks: 0, max_blocks: 2, nodes_per_block: 1, parallelism: 1 },
 * });
 * // d = { scaleOut: 1, scaleIn: [] }
 * ```
 * @module
 */
import type { ProviderConfig } from "../config/types.ts";
import { ACTIVE_STATES, type JobState } from "./provider.ts";

/** One block as the strategy sees it. */
export interface StrategyBlock {
  /** Our block id. */
  blockId: string;
  /** Last known job state. */
  state: JobState;
  /** Tasks currently running (dispatched and not finished) on this block's managers. */
  running: number;
  /** Time (ms) since which the block had no task, or `null` while it has work. */
  idleSince: number | null;
}

/** Everything {@linkcode decide} looks at. */
export interface StrategyInput {
  /** Current time in ms. */
  now: number;
  /** True on the first call (launch `init_blocks`). */
  firstRun: boolean;
  /** Tasks waiting in the interchange, not dispatched yet. */
  queued: number;
  /** Tasks dispatched to managers and not finished. */
  running: number;
  /** Blocks not yet cancelled by us (any state). */
  blocks: StrategyBlock[];
  /** Worker slots per node (max workers per node). */
  slotsPerNode: number;
  /** Seconds a block may stay idle before it is scaled in. */
  maxIdletime: number;
  /** No scale-out before this time (ms), after a failed submission. */
  backoffUntil: number;
  /** The scaling knobs of the provider config. */
  provider: Pick<
    ProviderConfig,
    "init_blocks" | "min_blocks" | "max_blocks" | "nodes_per_block" | "parallelism"
  >;
}

/** What to do now. */
export interface StrategyDecision {
  /** Number of blocks to submit. */
  scaleOut: number;
  /** Blocks to cancel. */
  scaleIn: string[];
}

/**
 * Decide how many blocks to submit and which blocks to cancel. Pure.
 *
 * @example
 * ```ts
 * const d = decide({
 *   now: 120_000, firstRun: false, queued: 0, running: 0, slotsPerNode: 1,
 *   maxIdletime: 60, backoffUntil: 0,
 *   blocks: [{ blockId: "0", state: "RUNNING", running: 0, idleSince: 0 }],
 *   provider: { init_blocks: 1, min_blocks: 0, max_blocks: 1, nodes_per_block: 1, parallelism: 1 },
 * });
 * // d.scaleIn = ["0"]
 * ```
 */
export function decide(input: StrategyInput): StrategyDecision {
  const p = input.provider;
  const maxBlocks = Math.max(0, p.max_blocks);
  const minBlocks = Math.min(Math.max(0, p.min_blocks), maxBlocks);
  const active = input.blocks.filter((b) => ACTIVE_STATES.has(b.state));
  const nActive = active.length;
  const canSubmit = input.now >= input.backoffUntil;

  let target = nActive;
  if (input.firstRun) target = Math.max(target, Math.min(Math.max(0, p.init_blocks), maxBlocks));
  target = Math.max(target, minBlocks);

  const tasks = input.queued + input.running;
  if (input.queued > 0) {
    const perBlock = Math.max(1, input.slotsPerNode) * Math.max(1, p.nodes_per_block);
    const parallelism = Math.min(Math.max(p.parallelism, 0), 1);
    const wanted = Math.max(1, Math.ceil((tasks * parallelism) / perBlock));
    target = Math.max(target, Math.min(wanted, maxBlocks));
  }
  target = Math.min(target, maxBlocks);
  const scaleOut = canSubmit ? Math.max(0, target - nActive) : 0;

  const scaleIn: string[] = [];
  if (input.queued === 0 && scaleOut === 0) {
    const limitMs = Math.max(0, input.maxIdletime) * 1000;
    const expired = active
      .filter((b) => b.running === 0 && b.idleSince !== null && input.now - b.idleSince >= limitMs)
      // Pending blocks first (they hold nothing useful), then the longest idle.
      .sort((a, b) =>
        _pendingFirst(a.state) - _pendingFirst(b.state) ||
        (a.idleSince ?? 0) - (b.idleSince ?? 0)
      );
    const removable = Math.max(0, nActive - minBlocks);
    for (const b of expired.slice(0, removable)) scaleIn.push(b.blockId);
  }
  return { scaleOut, scaleIn };
}

function _pendingFirst(state: JobState): number {
  return state === "PENDING" ? 0 : 1;
}

/**
 * Backoff (ms) before retrying a submission after `failures` consecutive failures:
 * 5 s doubling up to 5 minutes.
 *
 * @example
 * ```ts
 * submitBackoffMs(1); // 5000
 * submitBackoffMs(10); // 300000
 * ```
 */
export function submitBackoffMs(failures: number, baseMs = 5000, capMs = 300_000): number {
  if (failures <= 0) return 0;
  return Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30));
}
