/**
 * The interchange: the endpoint's task queue and dispatcher (DESIGN.md §4.4).
 *
 * It binds a ZeroMQ ROUTER for managers on `executor.address` (random port), queues the
 * tasks the endpoint submits, dispatches them to managers by free capacity (+ prefetch),
 * hands results back through `onResults` in batches, and turns every failure it can see into
 * a clear task failure: a manager that stops heart-beating (`ManagerLost`), a block whose job
 * ended or hit its walltime. Blocks are launched, polled and cancelled by its
 * {@linkcode Blocks} (blocks.ts: the pure scaling strategy driving a provider); submission
 * errors of the batch system are kept in `status().errors` and retried with backoff.
 *
 * @example
 * ```ts
 * import { Interchange } from "./interchange.ts";
 * import { DEFAULT_ENDPOINT_CONFIG } from "../config/types.ts";
 * import { createLogger } from "../daemon/log.ts";
 * const ix = new Interchange({
 *   endpointDir: "/home/u/.funcx/default", endpointId: "uuid", config: DEFAULT_ENDPOINT_CONFIG,
 *   log: createLogger(), onResults: (rs) => console.log(rs.length, "results"),
 * });
 * await ix.start();
 * ix.submit([{ taskId: "t1", containerId: "RAW", body: new Uint8Array([5]) }]);
 * await ix.stop();
 * ```
 * @module
 */
import { join } from "node:path";
import { setImmediate } from "node:timers";
import type { EndpointConfig } from "../config/types.ts";
import type { Logger } from "../daemon/log.ts";
import { selfCommand } from "../config/sandbox.ts";
import type { Provider } from "../providers/provider.ts";
import { Blocks, type BlockStatus } from "./blocks.ts";
import { lostTaskResult } from "./lost.ts";
import { createProvider } from "../providers/providers.ts";
import { ByteSlab } from "./slab.ts";
import { bindManagerSocket, type BoundAddress } from "./bind.ts";
import { Degradation } from "./degraded.ts";
import { HostUnreachableError, Router, SocketClosedError } from "../io/zmtp/mod.ts";
import {
  decodeManagerMessage,
  encodeBare,
  encodePython,
  encodeTasks,
  type ManagerMessage,
  type RegisterInfo,
  WireError,
} from "./wire.ts";

/** Upstream `TaskStatusCode` values used in EPStatusReport. */
export const TaskStatusCode = {
  WAITING_FOR_NODES: 1,
  WAITING_FOR_LAUNCH: 2,
  RUNNING: 3,
  SUCCESS: 4,
  FAILED: 5,
} as const;

/** A task as submitted by the endpoint. */
export interface InterchangeTask {
  /** Upstream task id (a UUID). */
  taskId: string;
  /** Container id from the Task message (`RAW` when none). */
  containerId: string;
  /** The upstream packed Task message bytes. */
  body: Uint8Array;
}

/** A result handed back to the endpoint: the pickled result dict, untouched. */
export interface InterchangeResult {
  /** The task the result belongs to. */
  taskId: string;
  /** The pickled result dict. */
  message: Uint8Array;
  /** Made up by the interchange (ManagerLost): the task's manager or the endpoint stopped. */
  lost?: true;
}

export type { BlockStatus } from "./blocks.ts";

/** One manager in {@linkcode InterchangeStatus}. */
export interface ManagerStatus {
  /** Manager id (its ZeroMQ routing id). */
  id: string;
  /** Block the manager belongs to. */
  block_id: string;
  /** Host it runs on. */
  hostname: string;
  /** Worker processes it runs. */
  workers: number;
  /** Workers without a task. */
  idle_workers: number;
  /** Tasks dispatched to it and not finished. */
  running: number;
  /** Why its workers cannot run (they die before their first task), when they cannot. */
  problem?: string;
  /** Milliseconds since its last message (monotonic clock): the heartbeat threshold counts from it. */
  last_message_ms_ago: number;
}

/** An error kept for `status.json`. */
export interface StatusError {
  /** ISO time of the (last) occurrence. */
  time: string;
  /** Where it happened. */
  source: "provider" | "interchange";
  /** One line: what went wrong. */
  message: string;
}

/** What the endpoint writes into `status.json` (DESIGN.md §5). */
export interface InterchangeStatus {
  /** Task counters: waiting here, on managers, and finished since start. */
  tasks: { queued: number; running: number; completed: number; failed: number };
  /** Current and recently ended blocks. */
  blocks: BlockStatus[];
  /** Registered managers. */
  managers: ManagerStatus[];
  /** Recent errors, oldest first. */
  errors: StatusError[];
  /** `tcp://host:port` managers connect to (empty before start). */
  address: string;
  /** Why work cannot run although the endpoint is up (degraded.ts), null when it can. */
  degraded?: string | null;
}

/** Constructor options (DESIGN.md §4.4, plus optional knobs for tests). */
export interface InterchangeOptions {
  /** `$FUNCX_HOME/<NAME>`. */
  endpointDir: string;
  /** The endpoint's UUID (for logs). */
  endpointId: string;
  /** Endpoint config (provider + executor sections). */
  config: EndpointConfig;
  /** Where to log. */
  log: Logger;
  /** Receives results in batches; must not throw. */
  onResults: (results: InterchangeResult[]) => void;
  /** Provider to use instead of the one `config.provider.type` names. */
  provider?: Provider;
  /** How often the strategy, heartbeats and lost-manager checks run (ms, default 1000). */
  strategyPeriodMs?: number;
  /** How often the provider is asked for job states (ms, default 2000). */
  pollPeriodMs?: number;
  /** Python worker script to use; default: write the embedded one to `<endpoint>/worker/`. */
  workerScript?: string;
  /** Command that starts this program (default `selfCommand()`). */
  selfCommand?: { cmd: string; args: string[] };
  /**
   * The workers' interpreter while it is still being worked out (`daemon/python.ts`). Blocks
   * launched before it is known start their managers with `--python-from interchange`: they
   * boot meanwhile and get a `PYTHON` message once it resolves (it is also written to
   * `config.executor.python`). Default: `config.executor.python` as it is.
   */
  python?: Promise<string>;
}

interface _Manager {
  uid: string;
  identity: Uint8Array;
  info: RegisterInfo;
  idle: number;
  /** Dispatched tasks not finished, kept so a clean exit can re-queue them. */
  inflight: Map<string, InterchangeTask>;
  /** In-flight tasks the manager said a worker is running or starts next (STARTED). */
  started: Set<string>;
  lastSeen: number;
  /** Results per second (smoothed), sizes the dispatch window. */
  rate: number;
  /** Results counted since `rateSince` (ms, performance.now()). */
  rateCount: number;
  rateSince: number;
}

/**
 * Tasks a manager may hold beyond its workers: enough for ~50 ms of its measured throughput so
 * it never idles waiting for the next TASKS message, at least `prefetch_capacity` plus the
 * tasks its workers hold written ahead (2 each), at most 4,096.
 */
function _window(m: _Manager, prefetch: number): number {
  const w = m.info.workers;
  return w * 2 + Math.min(4096, Math.max(prefetch, Math.ceil(m.rate * 0.05)));
}

const _MAX_ERRORS = 50;
const _LOG = "interchange";

/** The endpoint's task queue and dispatcher; its blocks are a {@linkcode Blocks}. */
export class Interchange {
  #opts: InterchangeOptions;
  #log: Logger;
  #provider: Provider;
  #router: Router | undefined;
  #address = "";
  #queue: InterchangeTask[] = [];
  #queueHead = 0;
  /** Holds the bodies of queued tasks (not the submitted frames); see `slab.ts`. */
  #slab = new ByteSlab();
  /** taskId → manager uid (dispatched) or "" (queued). */
  #tasks = new Map<string, string>();
  #managers = new Map<string, _Manager>();
  /** Registered managers with room for more tasks, in round-robin order. */
  #ready = new Set<_Manager>();
  /** Block id → tasks running on its managers (dispatched, not finished). */
  #blockRunning = new Map<string, number>();
  #blocks: Blocks;
  #completed = 0;
  #failed = 0;
  #errors: StatusError[] = [];
  #outbox: InterchangeResult[] = [];
  #flushQueued = false;
  #dispatchQueued = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  /** Degraded state: managers' worker problems, failed blocks and their back-off. */
  #degraded = new Degradation();
  #lastHeartbeat = -Infinity;
  #started = false;
  #stopping = false;
  #ticking = false;
  #shutdownSent = new Map<string, number>();
  #badPeers = new Set<string>();
  #workerScript = "";
  #token = [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");

  /** False while `opts.python` is still being resolved. */
  #pythonKnown = true;

  /** Create an interchange; nothing runs before {@linkcode Interchange.start}. */
  constructor(opts: InterchangeOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    if (opts.python) {
      this.#pythonKnown = false;
      const configured = opts.config.executor.python;
      opts.python.catch(() => configured).then((p) => this.#pythonResolved(p));
    }
    this.#provider = opts.provider ?? createProvider({
      config: opts.config,
      endpointDir: opts.endpointDir,
      log: opts.log,
    });
    this.#blocks = new Blocks({
      config: opts.config,
      provider: this.#provider,
      degraded: this.#degraded,
      log: opts.log,
      host: {
        managerCommand: (blockId) => this.#managerCommand(blockId),
        managerEnv: () => ({ FUNCX_MANAGER_TOKEN: this.#token }),
        address: () => this.#address,
        loseManagers: (blockId, why, shutdown) => this.#loseManagers(blockId, why, shutdown),
        error: (message) => this.#error("provider", message),
      },
    });
  }

  /** Bind the manager socket, write the worker, launch `init_blocks`, start the strategy. */
  async start(): Promise<void> {
    if (this.#started) throw new Error("interchange already started");
    this.#started = true;
    this.#workerScript = this.#opts.workerScript ?? await this.#writeWorker();
    const ex = this.#opts.config.executor;
    // no per-manager queue limit: the dispatch window bounds what each manager is sent
    const router = new Router({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    let where: BoundAddress;
    try {
      where = await bindManagerSocket(router, ex);
    } catch (e) {
      await router.close();
      throw e;
    }
    this.#router = router;
    this.#address = where.url;
    this.#log.info(
      _LOG,
      "manager socket on %s (executor.address %s: %s; provider %s)",
      where.url,
      where.spec,
      where.how,
      this.#provider.label,
    );
    router.setHandler(([identity, ...frames]) => {
      try {
        this.#handle(identity, frames);
      } catch (e) {
        this.#log.error(_LOG, "handling a manager message failed: %s", (e as Error).message);
      }
    });
    const period = this.#opts.strategyPeriodMs ?? 1000;
    this.#timers.push(setInterval(() => this.#tick(), period));
    this.#timers.push(setInterval(() => this.#blocks.poll(), this.#opts.pollPeriodMs ?? 2000));
    this.#tick();
  }

  /**
   * Queue tasks (duplicates of queued or running tasks are ignored). Small bodies are copied
   * into the interchange's slab: the caller's buffers are not kept.
   */
  submit(tasks: InterchangeTask[]): void {
    if (this.#stopping) {
      this.#log.warn(_LOG, "interchange stopping: %d task(s) refused", tasks.length);
      return;
    }
    for (const t of tasks) {
      if (this.#tasks.has(t.taskId)) {
        this.#log.warn(_LOG, "task %s is already queued or running; duplicate ignored", t.taskId);
        continue;
      }
      this.#tasks.set(t.taskId, "");
      this.#queue.push({ ...t, body: this.#slab.copy(t.body) });
    }
    this.#dispatch();
  }

  /** Blocks, managers, task counts and recent errors for `status.json`. */
  status(): InterchangeStatus {
    const blocks: BlockStatus[] = this.#blocks.status();
    const managers: ManagerStatus[] = [...this.#managers.values()].map((m) => ({
      id: m.uid,
      block_id: m.info.block_id,
      hostname: m.info.hostname,
      workers: m.info.workers,
      idle_workers: m.idle,
      running: m.inflight.size,
      ...(this.#degraded.problemOf(m.uid) ? { problem: this.#degraded.problemOf(m.uid) } : {}),
      last_message_ms_ago: Math.round(performance.now() - m.lastSeen),
    }));
    const queued = this.#queue.length - this.#queueHead;
    return {
      tasks: {
        queued,
        running: this.#tasks.size - queued,
        completed: this.#completed,
        failed: this.#failed,
      },
      blocks,
      managers,
      errors: [...this.#errors],
      address: this.#address,
      degraded: this.#degraded.reason,
    };
  }

  /** Status codes of live tasks (queued → WAITING_FOR_NODES, dispatched → RUNNING). */
  taskStatuses(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, mgr] of this.#tasks) {
      out.set(id, mgr === "" ? TaskStatusCode.WAITING_FOR_NODES : TaskStatusCode.RUNNING);
    }
    return out;
  }

  /**
   * Stop: SHUTDOWN every manager, cancel every block and wait until the provider reports
   * them ended. Tasks still queued or running get a failure result (delivered through
   * `onResults` before this resolves), so no task is silently dropped.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    await this.#blocks.halt();
    for (const m of this.#managers.values()) this.#send(m.identity, encodeBare("SHUTDOWN"));
    for (const m of [...this.#managers.values()]) {
      this.#failManager(m, "endpoint stopped while the task was running");
    }
    while (this.#queueHead < this.#queue.length) {
      const t = this.#queue[this.#queueHead++];
      this.#tasks.delete(t.taskId);
      this.#emitLost(t.taskId, "endpoint stopped before the task was dispatched");
    }
    this.#flush();
    await this.#blocks.cancelAll();
    // queued messages (results acks, shutdowns) get up to 2 s to reach the managers
    await this.#router?.close({ linger: 2000 });
    this.#log.info(_LOG, "stopped");
  }

  // ---- internals -------------------------------------------------------------------

  async #writeWorker(): Promise<string> {
    const { PYTHON_WORKER_SOURCE } = await import("./python_worker.ts");
    const dir = join(this.#opts.endpointDir, "worker");
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, "funcx_worker.py");
    const tmp = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, PYTHON_WORKER_SOURCE, { mode: 0o600 });
    await Deno.rename(tmp, path);
    return path;
  }

  #handle(identity: Uint8Array, frames: Uint8Array[]): void {
    const key = _idKey(identity);
    let msg: ManagerMessage;
    try {
      msg = decodeManagerMessage(frames);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.#badPeer(key, `bad message from peer ${key}: ${e.message}`);
      return;
    }
    const now = performance.now();
    if (msg.type === "REGISTER") {
      this.#register(identity, key, msg, now);
      return;
    }
    const m = this.#managers.get(key);
    if (!m) {
      // a manager removed at scale-in or stop says goodbye after it was removed: normal
      if (msg.type === "BYE") {
        this.#log.debug(_LOG, "BYE from manager %s, already removed", key);
        return;
      }
      this.#badPeer(key, `${msg.type} from unregistered manager ${key}; telling it to shut down`);
      this.#shutdownPeer(identity, key, now);
      return;
    }
    m.lastSeen = now;
    switch (msg.type) {
      case "HEARTBEAT":
        break;
      case "BYE":
        this.#bye(m, msg.reason);
        break;
      case "CAPACITY":
        this.#managerProblem(m, msg.problem);
        m.idle = Math.min(msg.free, m.info.workers);
        this.#scheduleDispatch();
        break;
      case "STARTED":
        for (const id of msg.taskIds) if (m.inflight.has(id)) m.started.add(id);
        break;
      case "RESULTS":
        for (const r of msg.results) {
          if (!m.inflight.has(r.taskId)) {
            this.#log.warn(_LOG, "result for task %s not running on %s; dropped", r.taskId, key);
            continue;
          }
          m.inflight.delete(r.taskId);
          m.started.delete(r.taskId);
          this.#running(m.info.block_id, -1);
          m.rateCount++;
          this.#tasks.delete(r.taskId);
          if (r.failed) this.#failed++;
          else this.#completed++;
          this.#outbox.push({ taskId: r.taskId, message: r.message });
        }
        if (now - m.rateSince >= 100) {
          const r = m.rateCount * 1000 / (now - m.rateSince);
          m.rate = m.rate === 0 ? r : (m.rate + r) / 2;
          m.rateCount = 0;
          m.rateSince = now;
        }
        if (!this.#ready.has(m)) this.#ready.add(m);
        this.#markIdle(m.info.block_id, now);
        this.#scheduleFlush();
        this.#scheduleDispatch();
        break;
    }
  }

  /** A manager exits cleanly: every task it still holds never started, so re-queue it. */
  #bye(m: _Manager, reason: string): void {
    this.#removeManager(m);
    this.#degraded.managerGone(m.uid);
    const back = [...m.inflight.values()];
    m.inflight.clear();
    m.started.clear();
    this.#requeue(back);
    this.#log.info(
      _LOG,
      "manager %s of block %s exited (%s); %d unstarted task(s) re-queued",
      m.uid,
      m.info.block_id,
      reason,
      back.length,
    );
    this.#markIdle(m.info.block_id, performance.now());
    this.#dispatch();
  }

  /** The interpreter is known: later blocks get `--python`, waiting managers a `PYTHON`. */
  #pythonResolved(python: string): void {
    this.#opts.config.executor.python = python;
    this.#pythonKnown = true;
    for (const m of this.#managers.values()) {
      if (this.#blocks.get(m.info.block_id)?.deferredPython) {
        this.#send(m.identity, encodePython(python));
      }
    }
  }

  #register(identity: Uint8Array, key: string, info: RegisterInfo, now: number): void {
    if (info.token !== this.#token) {
      this.#badPeer(key, `REGISTER from ${key} without this interchange's token; ignored`);
      return;
    }
    if (info.uid !== key) {
      this.#badPeer(key, `REGISTER uid "${info.uid}" does not match the routing id ${key}`);
      return;
    }
    const block = this.#blocks.get(info.block_id);
    if (!block || block.cancelled || block.ended || this.#stopping) {
      this.#log.info(
        _LOG,
        "manager %s of %s block %s told to shut down",
        key,
        block ? "ended" : "unknown",
        info.block_id,
      );
      this.#shutdownPeer(identity, key, now, true);
      return;
    }
    const old = this.#managers.get(key);
    if (old) this.#removeManager(old);
    const m: _Manager = {
      uid: key,
      identity,
      info,
      idle: info.workers,
      inflight: old?.inflight ?? new Map(),
      started: old?.started ?? new Set(),
      lastSeen: now,
      rate: 0,
      rateCount: 0,
      rateSince: now,
    };
    this.#managers.set(key, m);
    this.#running(info.block_id, m.inflight.size);
    this.#ready.add(m);
    this.#blocks.managerConnected(block);
    if (block.deferredPython && this.#pythonKnown) {
      this.#send(identity, encodePython(this.#opts.config.executor.python));
    }
    this.#log.info(
      _LOG,
      "manager %s registered: block %s, host %s, pid %d, %d workers",
      key,
      info.block_id,
      info.hostname,
      info.pid,
      info.workers,
    );
    this.#dispatch();
  }

  #badPeer(key: string, message: string): void {
    if (this.#badPeers.has(key)) return;
    if (this.#badPeers.size > 1000) this.#badPeers.clear();
    this.#badPeers.add(key);
    this.#log.warn(_LOG, "%s", message);
  }

  #shutdownPeer(identity: Uint8Array, key: string, now: number, force = false): void {
    const last = this.#shutdownSent.get(key) ?? -Infinity;
    if (!force && now - last < 5000) return;
    if (this.#shutdownSent.size > 1000) this.#shutdownSent.clear();
    this.#shutdownSent.set(key, now);
    this.#send(identity, encodeBare("SHUTDOWN"));
  }

  #send(identity: Uint8Array, frames: Uint8Array[]): void {
    const router = this.#router;
    if (!router) return;
    // queued right away when nothing waits before it (no promise per message)
    if (router.waitingSends === 0) {
      try {
        if (router.trySend([identity, ...frames])) return;
      } catch (e) {
        if (e instanceof HostUnreachableError) {
          this.#log.debug(_LOG, "message to a disconnected manager dropped: %s", e.message);
        } else this.#log.warn(_LOG, "message to a manager dropped: %s", e);
        return;
      }
    }
    router.send([identity, ...frames]).catch((e) => {
      if (e instanceof SocketClosedError) return;
      if (e instanceof HostUnreachableError) {
        this.#log.debug(_LOG, "message to a disconnected manager dropped: %s", e.message);
      } else this.#log.warn(_LOG, "message to a manager dropped: %s", e);
    });
  }

  #dispatch(): void {
    if (this.#stopping) return;
    if (this.#queueHead >= this.#queue.length || this.#ready.size === 0) return;
    const prefetch = Math.max(0, this.#opts.config.executor.prefetch_capacity);
    const batches = new Map<_Manager, InterchangeTask[]>();
    const live = (m: _Manager) => this.#blocks.isLive(m.info.block_id);
    // Only managers with room are visited (#ready), and each pass stops once the queue is
    // empty: the work is per task dispatched, not per registered manager.
    // Pass 1: each manager gets as many tasks as it has free workers, in one message.
    for (const m of this.#ready) {
      if (this.#queueHead >= this.#queue.length) break;
      const free = m.info.workers - m.inflight.size;
      if (free <= 0 || !live(m)) continue;
      const take = Math.min(free, this.#queue.length - this.#queueHead);
      const ts = this.#queue.slice(this.#queueHead, this.#queueHead + take);
      this.#queueHead += take;
      batches.set(m, ts);
    }
    // Pass 2: the prefetch allowance, one task per manager per round, spreading them out.
    let progress = true;
    while (progress && this.#queueHead < this.#queue.length) {
      progress = false;
      for (const m of this.#ready) {
        if (this.#queueHead >= this.#queue.length) break;
        const given = batches.get(m)?.length ?? 0;
        if (m.inflight.size + given >= _window(m, prefetch) || !live(m)) continue;
        const t = this.#queue[this.#queueHead++];
        if (!batches.has(m)) batches.set(m, []);
        batches.get(m)!.push(t);
        progress = true;
      }
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    for (const [m, tasks] of batches) {
      for (const t of tasks) {
        t.body = this.#slab.detach(t.body);
        m.inflight.set(t.taskId, t);
        this.#tasks.set(t.taskId, m.uid);
      }
      this.#running(m.info.block_id, tasks.length);
      // round robin: a manager just given tasks goes to the back; a full one leaves #ready
      this.#ready.delete(m);
      if (m.inflight.size < _window(m, prefetch)) this.#ready.add(m);
      this.#blocks.busy(m.info.block_id);
      m.idle = Math.max(0, m.idle - tasks.length);
      for (let i = 0; i < tasks.length; i += 256) {
        this.#send(m.identity, encodeTasks(tasks.slice(i, i + 256)));
      }
      this.#log.debug(_LOG, "dispatched %d task(s) to %s", tasks.length, m.uid);
    }
  }

  /** Count `n` more (or fewer) tasks running on block `blockId`'s managers. */
  #running(blockId: string, n: number): void {
    const v = (this.#blockRunning.get(blockId) ?? 0) + n;
    if (v > 0) this.#blockRunning.set(blockId, v);
    else this.#blockRunning.delete(blockId);
  }

  /** Forget a manager (it left, or was lost): its tasks no longer count as running. */
  #removeManager(m: _Manager): void {
    if (this.#managers.get(m.uid) === m) this.#managers.delete(m.uid);
    this.#ready.delete(m);
    this.#running(m.info.block_id, -m.inflight.size);
  }

  #markIdle(blockId: string, now: number): void {
    if (this.#blocks.get(blockId)?.idleSince !== null) return;
    if ((this.#blockRunning.get(blockId) ?? 0) > 0) return;
    this.#blocks.idle(blockId, now);
  }

  #emitLost(taskId: string, message: string, containerId?: string): void {
    this.#failed++;
    let bytes: Uint8Array;
    try {
      bytes = lostTaskResult(taskId, "ManagerLost", message, containerId);
    } catch (e) {
      this.#log.error(
        _LOG,
        "cannot build the failure of task %s: %s",
        taskId,
        (e as Error).message,
      );
      return;
    }
    this.#outbox.push({ taskId, message: bytes, lost: true });
    this.#scheduleFlush();
  }

  /** Put tasks back at the front of the queue, in order (they never started). */
  #requeue(back: InterchangeTask[]): void {
    for (const t of back) this.#tasks.set(t.taskId, "");
    for (let i = back.length - 1; i >= 0; i--) {
      if (this.#queueHead > 0) this.#queue[--this.#queueHead] = back[i];
      else this.#queue.unshift(back[i]);
    }
  }

  /**
   * Forget a lost manager: tasks a worker of it had started (STARTED) fail with ManagerLost,
   * the others never ran and are re-queued for another manager.
   */
  #failManager(m: _Manager, why: string): void {
    this.#removeManager(m);
    this.#degraded.managerGone(m.uid);
    const back: InterchangeTask[] = [];
    let failed = 0;
    for (const [taskId, t] of m.inflight) {
      if (!m.started.has(taskId)) {
        back.push(t);
        continue;
      }
      failed++;
      this.#tasks.delete(taskId);
      this.#emitLost(
        taskId,
        `manager ${m.uid} (block ${m.info.block_id}, host ${m.info.hostname}, pid ${m.info.pid}): ${why}`,
      );
    }
    m.inflight.clear();
    m.started.clear();
    this.#requeue(back);
    if (failed || back.length) {
      this.#log.warn(
        _LOG,
        "manager %s: %s; %d running task(s) failed, %d unstarted re-queued",
        m.uid,
        why,
        failed,
        back.length,
      );
    }
    this.#markIdle(m.info.block_id, performance.now());
    if (back.length) queueMicrotask(() => this.#dispatch());
  }

  /** Dispatch on the next macrotask: every RESULTS message received meanwhile frees room
   * first, so each manager gets one TASKS message instead of one per RESULTS. */
  #scheduleDispatch(): void {
    if (this.#dispatchQueued) return;
    this.#dispatchQueued = true;
    setImmediate(() => {
      this.#dispatchQueued = false;
      this.#dispatch();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    // next macrotask turn (not a timer, which fires milliseconds late): every RESULTS message
    // received meanwhile goes to the endpoint in one batch
    this.#flushQueued = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#outbox.length === 0) return;
    const batch = this.#outbox;
    this.#outbox = [];
    try {
      this.#opts.onResults(batch);
    } catch (e) {
      this.#log.error(
        _LOG,
        "onResults failed for %d result(s): %s",
        batch.length,
        (e as Error).message,
      );
    }
  }

  #error(source: StatusError["source"], message: string): void {
    const last = this.#errors[this.#errors.length - 1];
    if (last && last.message === message && last.source === source) {
      last.time = new Date().toISOString();
    } else {
      this.#errors.push({ time: new Date().toISOString(), source, message });
      if (this.#errors.length > _MAX_ERRORS) this.#errors.shift();
    }
    this.#log.error(source, "%s", message);
  }

  #tick(): void {
    if (this.#stopping || this.#ticking) return;
    this.#ticking = true;
    try {
      const now = performance.now();
      const ex = this.#opts.config.executor;
      if (now - this.#lastHeartbeat >= ex.heartbeat_period * 1000) {
        this.#lastHeartbeat = now;
        this.#heartbeatAll();
      }
      for (const m of [...this.#managers.values()]) {
        if (now - m.lastSeen > ex.heartbeat_threshold * 1000) {
          this.#failManager(m, `no heartbeat for ${ex.heartbeat_threshold}s`);
          this.#error("interchange", `manager ${m.uid} of block ${m.info.block_id} lost`);
          this.#send(m.identity, encodeBare("SHUTDOWN"));
        }
      }
      this.#strategize(now);
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * HEARTBEAT every manager, in slices of 256 per macrotask: thousands of sends in one turn
   * would hold up every task dispatched meanwhile.
   */
  #heartbeatAll(): void {
    const beat = encodeBare("HEARTBEAT");
    const ids = [...this.#managers.values()].map((m) => m.identity);
    const slice = (from: number) => {
      if (this.#stopping) return;
      const to = Math.min(ids.length, from + 256);
      for (let i = from; i < to; i++) this.#send(ids[i], beat);
      if (to < ids.length) setImmediate(() => slice(to));
    };
    slice(0);
  }

  #strategize(now: number): void {
    const running = new Map<string, number>();
    for (const m of this.#managers.values()) {
      running.set(m.info.block_id, (running.get(m.info.block_id) ?? 0) + m.inflight.size);
    }
    const queued = this.#queue.length - this.#queueHead;
    this.#blocks.strategize(now, {
      queued,
      running: this.#tasks.size - queued,
      runningOn: (blockId) => running.get(blockId) ?? 0,
    });
  }

  /** The command line of a block's manager (blocks.ts submits it through the provider). */
  #managerCommand(blockId: string): { command: string[]; deferredPython: boolean } {
    const ex = this.#opts.config.executor;
    const self = this.#opts.selfCommand ?? selfCommand();
    const command = [
      self.cmd,
      ...self.args,
      "manager",
      "--task-url",
      this.#address,
      "--block-id",
      blockId,
      "--workers",
      String(ex.max_workers_per_node),
      "--cores-per-worker",
      String(ex.cores_per_worker),
      ...(this.#pythonKnown ? ["--python", ex.python] : ["--python-from", "interchange"]),
      "--worker-script",
      this.#workerScript,
      "--logdir",
      join(this.#opts.endpointDir, "worker_logs", blockId),
      "--hb-period",
      String(ex.heartbeat_period),
      "--hb-threshold",
      String(ex.heartbeat_threshold),
      "--max-idletime",
      String(ex.worker_max_idletime),
      "--result-size-limit",
      String(ex.result_size_limit),
    ];
    return { command, deferredPython: !this.#pythonKnown };
  }

  /**
   * A block went (scaled in, or its job ended): its managers go with it, told to shut down
   * first when `shutdown`.
   */
  #loseManagers(blockId: string, why: string, shutdown: boolean): void {
    for (const m of [...this.#managers.values()]) {
      if (m.info.block_id !== blockId) continue;
      if (shutdown) this.#send(m.identity, encodeBare("SHUTDOWN"));
      this.#failManager(m, why);
    }
  }

  // --- Degraded state (degraded.ts): kept apart from the dispatch and socket code ---

  #managerProblem(m: _Manager, problem: string | null): void {
    const fresh = this.#degraded.manager(m.uid, problem);
    if (fresh) {
      this.#error(
        "interchange",
        `Degraded: manager ${m.uid} (block ${m.info.block_id}, ${m.info.hostname}): ${fresh}`,
      );
    }
  }
}

const _latin1 = new TextDecoder("latin1");

function _idKey(identity: Uint8Array): string {
  let printable = identity.byteLength > 0 && identity.byteLength <= 64;
  for (const c of identity) if (c < 0x21 || c > 0x7e) printable = false;
  if (printable) return _latin1.decode(identity);
  return `0x${[...identity.subarray(0, 32)].map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}
