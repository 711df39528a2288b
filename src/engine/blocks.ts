/**
 * The block lifecycle: when to launch and cancel blocks (the pure {@linkcode decide}), how
 * (a {@linkcode Provider}), and what their jobs' states mean for the managers in them — the
 * part of the interchange that Parsl keeps in its executor's status handling, apart from task
 * routing. It submits a block with the manager command the interchange gives it, polls the
 * provider, turns a job that ended, failed or never connected its manager into a clear
 * reason (`degraded.ts`) and a submission back-off, and cancels blocks on scale-in and stop.
 * The managers themselves belong to the interchange: a block that goes takes them with it
 * through {@linkcode BlockHost.loseManagers}.
 *
 * @example
 * ```ts ignore
 * import { Blocks } from "./blocks.ts";
 * const blocks = new Blocks({ config, provider, degraded, host, log });
 * blocks.strategize(performance.now(), { queued: 10, running: 0, runningOn: () => 0 });
 * await blocks.poll();
 * ```
 * @module
 */
import type { EndpointConfig } from "../config/types.ts";
import type { Logger } from "../daemon/log.ts";
import type { Degradation } from "./degraded.ts";
import { isTerminal, type JobState, type Provider } from "../providers/provider.ts";
import { decide, submitBackoffMs } from "../providers/strategy.ts";
import { sleep } from "../util/sleep.ts";

/** One block: a batch job (or local process group) running one manager per node. */
export interface Block {
  blockId: string;
  jobId: string | null;
  state: JobState;
  message: string;
  nodes: number;
  /** Since when none of its managers runs a task (`null`: busy). */
  idleSince: number | null;
  cancelled: boolean;
  /** A failure was already handled for this block. */
  ended: boolean;
  /** Its managers wait for a `PYTHON` message (launched before the interpreter was known). */
  deferredPython: boolean;
}

/** One block in `status.json` (DESIGN.md §5). */
export interface BlockStatus {
  /** Our block id. */
  block_id: string;
  /** Batch job id, `null` while the submission is in flight. */
  job_id: string | null;
  /** Job state. */
  state: JobState;
  /** Nodes requested. */
  nodes: number;
  /** Detail (reason, exit status, walltime...), may be empty. */
  message: string;
}

/** What the block lifecycle needs from the interchange that owns the managers. */
export interface BlockHost {
  /**
   * The command that starts a manager of `blockId`, and whether its managers must wait for
   * a `PYTHON` message (the interpreter is still being resolved).
   */
  managerCommand(blockId: string): { command: string[]; deferredPython: boolean };
  /** Environment of the block's managers (their token). */
  managerEnv(): Record<string, string>;
  /** `tcp://host:port` managers connect to (for the reason of a block that never connects). */
  address(): string;
  /**
   * The block's managers go with it: `SHUTDOWN` first when `shutdown`, then their started
   * tasks fail with `why` and the others are re-queued.
   */
  loseManagers(blockId: string, why: string, shutdown: boolean): void;
  /** Keep an error for `status.json` and log it. */
  error(message: string): void;
}

/** Tasks waiting and running, for the strategy. */
export interface BlockLoad {
  /** Tasks queued in the interchange. */
  queued: number;
  /** Tasks dispatched to managers and not finished. */
  running: number;
  /** Tasks running on the managers of one block. */
  runningOn(blockId: string): number;
}

/** Options of {@linkcode Blocks}. */
export interface BlocksOptions {
  /** Endpoint config (provider + executor sections). */
  config: EndpointConfig;
  /** The provider that runs blocks. */
  provider: Provider;
  /** Degraded bookkeeping shared with the interchange (managers' problems are its side). */
  degraded: Degradation;
  /** The interchange. */
  host: BlockHost;
  /** Where to log. */
  log: Logger;
}

const _KEEP_ENDED_BLOCKS = 20;
const _LOG = "interchange";

/** The blocks of one interchange and their lifecycle. */
export class Blocks {
  #opts: BlocksOptions;
  #blocks = new Map<string, Block>();
  #nextBlock = 0;
  #firstRun = true;
  #submitFailures = 0;
  #backoffUntil = 0;
  #polling = false;
  #stopping = false;
  #submits = new Set<Promise<void>>();

  /** Blocks of an interchange; nothing is launched before {@linkcode Blocks.strategize}. */
  constructor(opts: BlocksOptions) {
    this.#opts = opts;
  }

  /** The block `blockId`, current or recently ended. */
  get(blockId: string): Block | undefined {
    return this.#blocks.get(blockId);
  }

  /** True while `blockId` is neither cancelled nor ended: its managers may get tasks. */
  isLive(blockId: string): boolean {
    const b = this.#blocks.get(blockId);
    return b !== undefined && !b.cancelled && !b.ended;
  }

  /** A manager of the block registered: its job runs, it has connected. */
  managerConnected(block: Block): void {
    if (block.state === "PENDING" || block.state === "UNKNOWN") block.state = "RUNNING";
    this.#opts.degraded.blockConnected(block.blockId);
  }

  /** The block's managers were given tasks. */
  busy(blockId: string): void {
    const b = this.#blocks.get(blockId);
    if (b) b.idleSince = null;
  }

  /** None of the block's managers runs a task any more (from `now`, if it was busy). */
  idle(blockId: string, now: number): void {
    const b = this.#blocks.get(blockId);
    if (!b || b.idleSince !== null) return;
    b.idleSince = now;
  }

  /** Current and recently ended blocks for `status.json`. */
  status(): BlockStatus[] {
    return [...this.#blocks.values()].map((b) => ({
      block_id: b.blockId,
      job_id: b.jobId,
      state: b.state,
      nodes: b.nodes,
      message: b.message,
    }));
  }

  /** Ask the strategy what to do now, and launch or cancel blocks accordingly. */
  strategize(now: number, load: BlockLoad): void {
    const live = [...this.#blocks.values()].filter((b) => !b.cancelled && !b.ended);
    const decision = decide({
      now,
      firstRun: this.#firstRun,
      queued: load.queued,
      running: load.running,
      blocks: live.map((b) => ({
        blockId: b.blockId,
        state: b.state,
        running: load.runningOn(b.blockId),
        idleSince: b.idleSince,
      })),
      slotsPerNode: this.#slotsPerNode(),
      maxIdletime: this.#opts.config.executor.max_idletime,
      backoffUntil: this.#backoffUntil,
      provider: this.#opts.config.provider,
    });
    this.#firstRun = false;
    for (const id of decision.scaleIn) this.#scaleIn(id);
    for (let i = 0; i < decision.scaleOut; i++) this.#scaleOut(now);
  }

  /** Ask the provider for the state of every unfinished job (one call at a time). */
  async poll(): Promise<void> {
    if (this.#stopping || this.#polling) return;
    const blocks = [...this.#blocks.values()].filter((b) => b.jobId && !isTerminal(b.state));
    if (blocks.length === 0) return;
    this.#polling = true;
    const provider = this.#opts.provider;
    try {
      const st = await provider.status(blocks.map((b) => b.jobId!));
      if (this.#stopping) return;
      for (const b of blocks) {
        const s = st.get(b.jobId!);
        if (!s) continue;
        if (s.state === "RUNNING" && b.state !== "RUNNING") b.state = "RUNNING";
        else if (s.state !== b.state && !(s.state === "PENDING" && b.state === "RUNNING")) {
          b.state = s.state;
        }
        if (s.message) b.message = s.message;
        if (isTerminal(s.state)) this.#blockEnded(b, s.state, s.message);
        else if (s.state === "RUNNING") this.#blockWaiting(b);
      }
      this.#pruneBlocks();
    } catch (e) {
      this.#opts.host.error(`${provider.label}: status failed: ${(e as Error).message}`);
    } finally {
      this.#polling = false;
    }
  }

  /** Stop launching and polling; resolves once the submissions in flight have settled. */
  async halt(): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled([...this.#submits]);
  }

  /** Cancel every unfinished job and wait (≤ 30 s) until the provider reports them ended. */
  async cancelAll(): Promise<void> {
    const jobs = [...this.#blocks.values()].filter((b) => b.jobId && !isTerminal(b.state));
    const ids = jobs.map((b) => b.jobId!);
    for (const b of jobs) b.cancelled = true;
    if (!ids.length) return;
    this.#opts.log.info(_LOG, "cancelling %d block(s): %s", ids.length, ids.join(", "));
    try {
      await this.#opts.provider.cancel(ids);
    } catch (e) {
      this.#opts.host.error(`cancel failed: ${(e as Error).message}`);
    }
    await this.#waitEnded(ids, 30_000);
  }

  // ---- internals -------------------------------------------------------------------

  #slotsPerNode(): number {
    const ex = this.#opts.config.executor;
    if (ex.max_workers_per_node > 0) return ex.max_workers_per_node;
    return Math.max(
      1,
      Math.floor(navigator.hardwareConcurrency / Math.max(1, ex.cores_per_worker)),
    );
  }

  #scaleOut(now: number): void {
    const { host, provider, log } = this.#opts;
    const p = this.#opts.config.provider;
    const blockId = String(this.#nextBlock++);
    const { command, deferredPython } = host.managerCommand(blockId);
    const block: Block = {
      blockId,
      jobId: null,
      state: "PENDING",
      message: "submitting",
      nodes: p.nodes_per_block,
      idleSince: now,
      cancelled: false,
      ended: false,
      deferredPython,
    };
    this.#blocks.set(blockId, block);
    log.info(_LOG, "submitting block %s (%d node(s))", blockId, p.nodes_per_block);
    const done = provider.submit({
      blockId,
      command,
      env: host.managerEnv(),
      nodes: p.nodes_per_block,
      walltime: p.walltime,
    }).then(
      (jobId) => {
        block.jobId = jobId;
        block.message = "";
        this.#submitFailures = 0;
        this.#backoffUntil = 0;
        log.info(_LOG, "block %s submitted as job %s", blockId, jobId);
        if (this.#stopping || block.cancelled) {
          block.cancelled = true;
          return provider.cancel([jobId]).catch(() => {});
        }
      },
      (e) => {
        this.#blocks.delete(blockId);
        this.#submitFailures++;
        const wait = submitBackoffMs(this.#submitFailures);
        this.#backoffUntil = performance.now() + wait;
        host.error(
          `${provider.label}: submitting block ${blockId} failed: ${(e as Error).message}` +
            ` (retry in ${Math.round(wait / 1000)}s)`,
        );
      },
    ).finally(() => this.#submits.delete(done));
    this.#submits.add(done);
  }

  #scaleIn(blockId: string): void {
    const b = this.#blocks.get(blockId);
    if (!b || b.cancelled) return;
    b.cancelled = true;
    this.#opts.log.info(_LOG, "scaling in idle block %s (job %s)", blockId, b.jobId ?? "-");
    this.#opts.host.loseManagers(blockId, "block scaled in", true);
    if (b.jobId) {
      const jobId = b.jobId;
      this.#opts.provider.cancel([jobId]).catch((e) =>
        this.#opts.host.error(`cancelling job ${jobId} failed: ${(e as Error).message}`)
      );
    }
  }

  #blockEnded(b: Block, state: JobState, message: string): void {
    if (b.ended) return;
    b.ended = true;
    const why = `block ${b.blockId} (job ${b.jobId}) ended: ${state}${
      message ? ` (${message})` : ""
    }`;
    if (b.cancelled) this.#opts.log.info(_LOG, "%s", why);
    else if (!this.#blockFailed(b, state, message)) this.#opts.host.error(why);
    this.#opts.host.loseManagers(b.blockId, why, false);
  }

  #pruneBlocks(): void {
    const ended = [...this.#blocks.values()].filter((b) => b.ended);
    for (const b of ended.slice(0, Math.max(0, ended.length - _KEEP_ENDED_BLOCKS))) {
      this.#blocks.delete(b.blockId);
      this.#opts.degraded.blockGone(b.blockId);
    }
  }

  /**
   * A job that ended before its manager ever connected, or FAILED: its output tail goes to the
   * block's message and the next submission backs off. False when it is not such a failure.
   */
  #blockFailed(b: Block, state: JobState, message: string): boolean {
    const { degraded, provider, host, log } = this.#opts;
    const connected = degraded.hasConnected(b.blockId);
    if (connected && state !== "FAILED") return false;
    const tail = b.jobId ? provider.outputTail?.(b.jobId) ?? "" : "";
    const what = connected
      ? `job ${b.jobId} ${state}`
      : `job ${b.jobId} ended (${state}) before its manager connected`;
    const reason = `${what}${message ? ` (${message})` : ""}${tail ? `; job output: ${tail}` : ""}`;
    b.message = `${message ? `${message}; ` : ""}${tail ? `output: ${tail}` : "no job output"}`;
    const f = degraded.blockFailed(b.blockId, reason, performance.now());
    this.#backoffUntil = Math.max(this.#backoffUntil, performance.now() + f.backoffMs);
    const line = `block ${b.blockId}: ${reason}; next block in ${Math.round(f.backoffMs / 1000)}s`;
    if (f.announce) host.error(`Degraded: ${line}`);
    else log.warn(_LOG, "%s", line);
    return true;
  }

  /** A running job whose manager has not connected within twice the heartbeat threshold. */
  #blockWaiting(b: Block): void {
    const { degraded, provider, host } = this.#opts;
    const deadline = 2 * this.#opts.config.executor.heartbeat_threshold * 1000;
    if (!degraded.blockWaiting(b.blockId, performance.now(), deadline)) return;
    const tail = b.jobId ? provider.outputTail?.(b.jobId) ?? "" : "";
    const reason =
      `job ${b.jobId} runs but its manager has not connected to ${host.address()} for ${
        Math.round(deadline / 1000)
      }s${tail ? `; job output: ${tail}` : ""}`;
    b.message = tail ? `manager not connected; output: ${tail}` : "manager not connected";
    const fresh = degraded.blockNotConnecting(b.blockId, reason);
    if (fresh) host.error(`Degraded: block ${b.blockId}: ${fresh}`);
  }

  async #waitEnded(jobIds: string[], timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let pending = jobIds;
    while (pending.length && performance.now() < deadline) {
      try {
        const st = await this.#opts.provider.status(pending);
        for (const b of this.#blocks.values()) {
          const s = b.jobId ? st.get(b.jobId) : undefined;
          if (s) {
            b.state = s.state === "COMPLETED" || s.state === "FAILED" ? "CANCELLED" : s.state;
            if (isTerminal(s.state)) b.ended = true;
          }
        }
        pending = pending.filter((id) => {
          const s = st.get(id);
          return !s || !isTerminal(s.state);
        });
      } catch (e) {
        this.#opts.log.warn(_LOG, "status while stopping failed: %s", (e as Error).message);
      }
      if (pending.length) await sleep(300);
    }
    if (pending.length) {
      this.#opts.host.error(`jobs still present after cancel: ${pending.join(", ")}`);
    }
  }
}
