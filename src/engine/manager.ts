/**
 * The manager: runs on each node of a block, connects back to the interchange over a
 * ZeroMQ DEALER, registers, reports capacity and runs tasks in N Python worker
 * subprocesses speaking the framed stdin/stdout protocol (DESIGN.md §6).
 *
 * A worker that dies is restarted; the task it was running fails with `WorkerLost`.
 * Idle workers are reaped after `maxIdletime` seconds and started again on demand.
 * The manager exits on `SHUTDOWN`, when the interchange is silent for `hbThreshold`
 * seconds, or on SIGTERM/SIGINT, and kills its workers on the way out.
 * Workers never see the endpoint's secrets: see {@linkcode workerEnv}.
 *
 * @example
 * ```ts
 * import { runManager } from "./manager.ts";
 * const code = await runManager({
 *   taskUrl: "tcp://127.0.0.1:54000", blockId: "0", workers: 2, python: "python3",
 *   workerScript: "/home/u/.funcx/default/worker/funcx_worker.py",
 *   logdir: "/home/u/.funcx/default/worker_logs/0",
 * });
 * ```
 * @module
 */
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { createLogger, type Logger } from "../daemon/log.ts";
import { decodePickle } from "../protocol/pickle/mod.ts";
import { peekResultOutcome } from "../protocol/worker_result.ts";
import { encodeFrames, FrameReader } from "./frames.ts";
import { lostTaskResult } from "./lost.ts";
import { WorkerHealth, WorkerLogBudget } from "./health.ts";
import { Dealer, SocketClosedError } from "../io/zmtp/mod.ts";
import {
  decodeInterchangeMessage,
  encodeBare,
  encodeBye,
  encodeCapacity,
  encodeRegister,
  encodeResults,
  encodeStarted,
  taskHeader,
  WireError,
  type WireResult,
} from "./wire.ts";

/** Options of {@linkcode runManager} (the `manager` command's flags). */
export interface ManagerOptions {
  /** `tcp://host:port` of the interchange. */
  taskUrl: string;
  /** Block this manager belongs to. */
  blockId: string;
  /** Worker processes; 0 = cores / coresPerWorker. */
  workers: number;
  /** Cores each worker uses (for the automatic worker count, default 1). */
  coresPerWorker?: number;
  /** Python interpreter for workers (default python3). */
  python?: string;
  /**
   * Start workers only once the interchange's `PYTHON` message names the interpreter (the
   * endpoint was still resolving it when it launched this block; the manager boots meanwhile).
   */
  pythonFromInterchange?: boolean;
  /** Path of the Python worker script. */
  workerScript: string;
  /** Directory for the manager log and worker stderr. */
  logdir: string;
  /** Seconds between heartbeats (default 5). */
  hbPeriod?: number;
  /** Seconds of interchange silence before the manager exits (default 30). */
  hbThreshold?: number;
  /** Seconds an idle worker is kept (0 = forever, default 300). */
  maxIdletime?: number;
  /** Result size limit in bytes, passed to workers (default 10 MiB). */
  resultSizeLimit?: number;
  /** Manager id (default: random). */
  uid?: string;
  /** Logger (default: `<logdir>/manager-<uid>.log`). */
  log?: Logger;
  /** Log level when the manager opens its own log. */
  logLevel?: "debug" | "info" | "warn" | "error";
}

/** Environment variable names never passed to workers (plus anything secret-looking). */
const _SECRET_NAME = /SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY|API_KEY/i;

/**
 * The environment for worker processes: the manager's, minus credentials
 * (`FUNCX_SDK_CLIENT_ID`/`_SECRET` and any variable whose name looks secret).
 *
 * @example
 * ```ts
 * workerEnv({ PATH: "/bin", FUNCX_SDK_CLIENT_SECRET: "x", GITHUB_TOKEN: "y" }); // { PATH: "/bin" }
 * ```
 */
export function workerEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k === "FUNCX_SDK_CLIENT_ID" || _SECRET_NAME.test(k)) continue;
    out[k] = v;
  }
  return out;
}

interface _Task {
  taskId: string;
  containerId: string;
  body: Uint8Array;
  /** UTF-8 of taskId, made once for the result check. */
  idBytes?: Uint8Array;
}

interface _Worker {
  id: number;
  child: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Tasks written to the worker, oldest first: [0] runs, the rest wait in its stdin pipe. */
  tasks: _Task[];
  /** When the head task became the head (its run started or is about to). */
  headSince: number;
  /** Smoothed task duration (ms), sizes the write-ahead. */
  avgMs: number;
  idleSince: number;
  startedAt: number;
  exited: Promise<void>;
  killing: boolean;
}

/** bash snippet: export every FUNCX_ENV_<NAME> as <NAME>, then exec the arguments. */
const _RESTORE_ENV_AND_EXEC =
  'for v in ${!FUNCX_ENV_@}; do export "${v#FUNCX_ENV_}=${!v}"; unset "$v"; done; exec "$@"';
const _LOG = "manager";
/**
 * Tasks written ahead to one worker: at least the next one is already in its stdin pipe when
 * a result leaves, so the worker never waits for the manager's round trip. Short tasks get
 * more (about 2 ms of work, at most 32), written in one pipe write per refill, because a pipe
 * write per task was the largest item of the manager's CPU profile (bench/FINDINGS.md §9).
 * Long tasks keep 2, so a slow task holds back at most one other task that another worker
 * could have run.
 */
const _MIN_DEPTH = 2;
const _MAX_DEPTH = 32;
const _AHEAD_MS = 2;

/** How many tasks to keep written to a worker whose tasks take `avgMs` on average. */
function _depth(avgMs: number): number {
  if (!(avgMs > 0)) return _MIN_DEPTH;
  return Math.max(_MIN_DEPTH, Math.min(_MAX_DEPTH, Math.ceil(_AHEAD_MS / avgMs)));
}
const _enc = new TextEncoder();

/**
 * Run a manager until SHUTDOWN, interchange loss or a signal; resolves with the exit code.
 *
 * @example
 * ```ts
 * await runManager({ taskUrl: "tcp://127.0.0.1:5000", blockId: "0", workers: 1,
 *   workerScript: "/h/ep/worker/funcx_worker.py", logdir: "/h/ep/worker_logs/0" });
 * ```
 */
export async function runManager(opts: ManagerOptions): Promise<number> {
  const m = new _Manager(opts);
  return await m.run();
}

class _Manager {
  #opts: Required<Omit<ManagerOptions, "log" | "logLevel">>;
  #log: Logger;
  #ownLog: boolean;
  #sock: Dealer;
  #workers = new Map<number, _Worker>();
  #nextWorker = 0;
  #queue: _Task[] = [];
  #outbox: WireResult[] = [];
  #startedOut: string[] = [];
  #flushQueued = false;
  #badKinds = new Set<string>();
  #capTimer: ReturnType<typeof setTimeout> | undefined;
  #lastHeard = performance.now();
  #lastBeat = -Infinity;
  #done = Promise.withResolvers<string>();
  #closing = false;
  #closeReason = "";
  #env: Record<string, string>;
  #restartAfter = 0;
  #frameLimit: number;
  #awaitingPython: boolean;
  /** Early deaths, back-off and the problem reported to the interchange (health.ts). */
  #health = new WorkerHealth();
  #logBudget = new WorkerLogBudget();
  #stderrTails = new Map<number, string>();
  #ranTask = new Set<number>();

  constructor(opts: ManagerOptions) {
    const cores = navigator.hardwareConcurrency || 1;
    const cpw = Math.max(1, opts.coresPerWorker ?? 1);
    const uid = opts.uid ?? crypto.randomUUID().split("-").pop()!;
    this.#opts = {
      taskUrl: opts.taskUrl,
      blockId: opts.blockId,
      workers: opts.workers > 0 ? opts.workers : Math.max(1, Math.floor(cores / cpw)),
      coresPerWorker: cpw,
      python: opts.python ?? "python3",
      pythonFromInterchange: opts.pythonFromInterchange ?? false,
      workerScript: opts.workerScript,
      logdir: opts.logdir,
      hbPeriod: opts.hbPeriod ?? 5,
      hbThreshold: opts.hbThreshold ?? 30,
      maxIdletime: opts.maxIdletime ?? 300,
      resultSizeLimit: opts.resultSizeLimit ?? 10 * 1024 * 1024,
      uid,
    };
    this.#ownLog = !opts.log;
    this.#log = opts.log ??
      createLogger({
        file: join(opts.logdir, `manager-${uid}.log`),
        level: opts.logLevel ?? "info",
      });
    this.#frameLimit = this.#opts.resultSizeLimit * 2 + 1024 * 1024;
    this.#awaitingPython = this.#opts.pythonFromInterchange;
    this.#env = workerEnv(Deno.env.toObject());
    this.#env.FUNCX_RESULT_SIZE_LIMIT = String(this.#opts.resultSizeLimit);
    this.#env.FUNCX_WORKER_LOGDIR = this.#opts.logdir;
    // messages wait (in order) until the interchange is connected; nothing is dropped
    this.#sock = new Dealer({ routingId: uid, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  }

  async run(): Promise<number> {
    const o = this.#opts;
    const signals: [Deno.Signal, () => void][] = [];
    for (const sig of ["SIGTERM", "SIGINT"] as Deno.Signal[]) {
      const fn = () => this.#done.resolve(`received ${sig}`);
      try {
        Deno.addSignalListener(sig, fn);
        signals.push([sig, fn]);
      } catch {
        // signals not available here
      }
    }
    let code = 0;
    try {
      this.#log.info(
        _LOG,
        "manager %s (block %s, pid %d) connecting to %s with %d workers",
        o.uid,
        o.blockId,
        Deno.pid,
        o.taskUrl,
        o.workers,
      );
      this.#sock.connect(o.taskUrl);
      this.#send(encodeRegister({
        token: Deno.env.get("FUNCX_MANAGER_TOKEN") ?? "",
        uid: o.uid,
        block_id: o.blockId,
        hostname: Deno.hostname(),
        pid: Deno.pid,
        workers: o.workers,
        cores: navigator.hardwareConcurrency || 1,
      }));
      for (let i = 0; i < o.workers; i++) this.#spawn();
      this.#sock.setHandler((frames) => this.#onMessage(frames));
      const timer = setInterval(
        () => this.#tick(),
        Math.max(100, Math.min(1000, o.hbPeriod * 500)),
      );
      const reason = await this.#done.promise;
      this.#closeReason = reason;
      clearInterval(timer);
      this.#log.info(_LOG, "exiting: %s", reason);
      if (reason.startsWith("error")) code = 1;
      this.#closing = true;
      await this.#killAll();
      this.#flushResults();
      // Results of everything that ran are queued before BYE; the interchange re-queues
      // the tasks this manager still held without starting them.
      this.#send(encodeBye(reason));
      // Let the last results and BYE reach the interchange (bounded) before closing.
      await this.#sock.close({ linger: 2000 });
    } catch (e) {
      this.#log.error(_LOG, "manager failed: %s", (e as Error).message);
      this.#closing = true;
      await this.#killAll();
      await this.#sock.close();
      code = 1;
    } finally {
      clearTimeout(this.#capTimer);
      for (const [sig, fn] of signals) Deno.removeSignalListener(sig, fn);
      if (this.#ownLog) this.#log.close();
    }
    return code;
  }

  #onMessage(frames: Uint8Array[]): void {
    this.#lastHeard = performance.now();
    let msg;
    try {
      msg = decodeInterchangeMessage(frames);
    } catch (e) {
      if (!(e instanceof WireError)) {
        if (!this.#closing) {
          this.#done.resolve(`error: handling a message failed: ${(e as Error).message}`);
        }
        return;
      }
      // once per kind of problem at WARN, then at DEBUG (a flood must not fill the disk)
      const kind = e.message.replace(/".*"|[0-9a-f-]{8,}|\d+/gi, "#").slice(0, 80);
      const level = this.#badKinds.has(kind) ? "debug" : "warn";
      this.#badKinds.add(kind);
      this.#log[level](_LOG, "bad message from the interchange ignored: %s", e.message);
      return;
    }
    if (msg.type === "SHUTDOWN") {
      this.#done.resolve("SHUTDOWN from the interchange");
    } else if (msg.type === "PYTHON") {
      if (!this.#awaitingPython || this.#closing) return;
      this.#awaitingPython = false;
      this.#opts.python = msg.python;
      this.#log.info(_LOG, "workers run %s (from the interchange)", msg.python);
      for (let i = 0; i < this.#opts.workers; i++) this.#spawn();
      this.#assign();
    } else if (msg.type === "TASKS") {
      if (this.#closing) return; // BYE tells the interchange to re-queue them
      for (const t of msg.tasks) {
        const h = taskHeader(t.body);
        this.#queue.push({
          taskId: t.taskId,
          containerId: h?.containerId ?? "RAW",
          body: t.body,
        });
      }
      this.#log.debug(_LOG, "received %d task(s)", msg.tasks.length);
      this.#assign();
    }
  }

  #send(frames: Uint8Array[]): void {
    this.#sock.send(frames).catch((e) => {
      if (!(e instanceof SocketClosedError)) {
        this.#log.warn(_LOG, "message to the interchange dropped: %s", e);
      }
    });
  }

  #tick(): void {
    const now = performance.now();
    const o = this.#opts;
    if (now - this.#lastHeard > o.hbThreshold * 1000) {
      this.#done.resolve(`no message from the interchange for ${o.hbThreshold}s`);
      return;
    }
    if (now - this.#lastBeat >= o.hbPeriod * 1000) {
      this.#lastBeat = now;
      this.#send(encodeBare("HEARTBEAT"));
    }
    if (o.maxIdletime > 0) {
      for (const w of this.#workers.values()) {
        if (!w.tasks.length && !w.killing && now - w.idleSince > o.maxIdletime * 1000) {
          this.#log.info(_LOG, "reaping worker %d idle for %ds", w.id, o.maxIdletime);
          w.killing = true;
          this.#stopWorker(w);
        }
      }
    }
    if (this.#queue.length) this.#assign();
    if (this.#health.tick(now, this.#workers.size > 0)) {
      this.#log.info(_LOG, "workers stay up again");
      this.#capacity();
    }
  }

  #spawn(): _Worker | undefined {
    if (this.#awaitingPython) return undefined; // started on PYTHON
    const o = this.#opts;
    const id = this.#nextWorker++;
    let child: Deno.ChildProcess;
    try {
      // Through bash so the user's LD_*/DYLD_* variables, parked by the bootstrap as
      // FUNCX_ENV_<name> (Deno refuses to pass them to a child itself), reach the worker.
      child = new Deno.Command("bash", {
        args: ["-c", _RESTORE_ENV_AND_EXEC, "funcx-worker", o.python, "-u", o.workerScript],
        cwd: o.logdir,
        env: this.#env,
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      this.#log.error(
        _LOG,
        "cannot start worker %s %s: %s",
        o.python,
        o.workerScript,
        (e as Error).message,
      );
      this.#failQueued(`cannot start the Python worker (${o.python}): ${(e as Error).message}`);
      return undefined;
    }
    const now = performance.now();
    const w: _Worker = {
      id,
      child,
      writer: child.stdin.getWriter(),
      tasks: [],
      headSince: now,
      avgMs: 0,
      idleSince: now,
      startedAt: now,
      exited: Promise.resolve(),
      killing: false,
    };
    this.#workers.set(id, w);
    this.#health.started(now);
    const stderr = this.#pipeStderr(w);
    const reading = this.#readResults(w);
    w.exited = Promise.all([child.status, reading, stderr]).then(([s]) => this.#onExit(w, s));
    w.writer.closed.catch(() => {});
    this.#log.debug(_LOG, "worker %d started, pid %d", id, child.pid);
    return w;
  }

  async #pipeStderr(w: _Worker): Promise<void> {
    let f: Deno.FsFile | undefined;
    const path = join(this.#opts.logdir, `worker-${this.#opts.uid}-${w.id}.stderr`);
    // bounded: the oldest files of dead workers go, and each file stops at a size
    for (const old of this.#logBudget.add(path)) Deno.remove(old).catch(() => {});
    const dec = new TextDecoder();
    let written = 0;
    let truncated = false;
    let tail = "";
    try {
      f = await Deno.open(path, { create: true, append: true, mode: 0o600 });
      for await (const chunk of w.child.stderr) {
        tail = (tail + dec.decode(chunk, { stream: true })).slice(-2048);
        this.#stderrTails.set(w.id, tail);
        if (truncated) continue; // full: only the in-memory tail is kept
        const n = this.#logBudget.allow(written, chunk.byteLength);
        const parts = [chunk.subarray(0, n)];
        written += n;
        if (n < chunk.byteLength) {
          parts.push(_enc.encode("\n[worker stderr truncated here]\n"));
          truncated = true;
        }
        for (const part of parts) {
          let off = 0;
          while (off < part.byteLength) off += await f.write(part.subarray(off));
        }
      }
    } catch {
      // worker gone or log not writable: drop its stderr
    } finally {
      f?.close();
    }
  }

  async #readResults(w: _Worker): Promise<void> {
    const reader = new FrameReader(this.#frameLimit);
    try {
      for await (const chunk of w.child.stdout) {
        for (const frame of reader.push(chunk)) this.#onResult(w, frame);
      }
    } catch (e) {
      this.#log.error(_LOG, "worker %d: %s; killing it", w.id, (e as Error).message);
      this.#kill(w, "SIGKILL");
    }
  }

  #onResult(w: _Worker, frame: Uint8Array): void {
    const task = w.tasks[0];
    if (!task) {
      this.#log.warn(_LOG, "worker %d sent a result while idle; ignored", w.id);
      return;
    }
    let failed = false;
    let bad = "";
    const quick = peekResultOutcome(frame, task.idBytes ??= _enc.encode(task.taskId));
    if (quick !== undefined) {
      failed = quick === "failed";
    } else {
      try {
        const d = decodePickle(frame);
        const get = (k: string) =>
          d instanceof Map ? d.get(k) : (d as Record<string, unknown>)?.[k];
        if (get("task_id") !== task.taskId) bad = `result is for task ${String(get("task_id"))}`;
        failed = get("exception") !== undefined;
      } catch (e) {
        bad = `undecodable result: ${(e as Error).message}`;
      }
    }
    w.tasks.shift();
    const now = performance.now();
    const took = now - w.headSince;
    w.avgMs = w.avgMs === 0 ? took : w.avgMs * 0.8 + took * 0.2;
    w.headSince = now;
    if (w.tasks.length) this.#markStarted(w.tasks[0].taskId); // the worker reads it next
    else w.idleSince = now;
    if (bad) {
      this.#log.error(_LOG, "worker %d, task %s: %s; restarting it", w.id, task.taskId, bad);
      // Its frame stream can no longer be trusted.
      this.#kill(w, "SIGKILL");
      w.killing = true;
      this.#requeue(w);
      this.#pushResult({
        taskId: task.taskId,
        failed: true,
        message: lostTaskResult(
          task.taskId,
          "WorkerLost",
          `worker ${w.id} returned a bad result (${bad})`,
          task.containerId,
        ),
      });
    } else {
      this.#pushResult({ taskId: task.taskId, failed, message: frame });
      this.#ranTask.add(w.id);
      if (this.#health.ranTask()) this.#log.info(_LOG, "workers run tasks again");
    }
    this.#assign();
  }

  #onExit(w: _Worker, s: Deno.CommandStatus): void {
    this.#workers.delete(w.id);
    const how = s.signal ? `killed by signal ${s.signal}` : `exit code ${s.code}`;
    // tasks behind the first never left the worker's stdin pipe: run them elsewhere
    this.#requeue(w);
    if (w.tasks.length) {
      const t = w.tasks.shift()!;
      this.#log.warn(
        _LOG,
        "worker %d (pid %d) died running task %s: %s",
        w.id,
        w.child.pid,
        t.taskId,
        how,
      );
      const host = Deno.hostname();
      this.#pushResult({
        taskId: t.taskId,
        failed: true,
        message: this.#closing
          ? lostTaskResult(
            t.taskId,
            "ManagerLost",
            `manager ${this.#opts.uid} (block ${this.#opts.blockId}) on ${host} stopped while the ` +
              `task was running: ${this.#closeReason}` +
              (this.#closeReason.startsWith("received SIG")
                ? " (batch job cancelled or walltime reached?)"
                : ""),
            t.containerId,
          )
          : lostTaskResult(
            t.taskId,
            "WorkerLost",
            `worker ${w.id} (pid ${w.child.pid}) on ${host} died while running the task: ${how}`,
            t.containerId,
          ),
      });
    } else if (!w.killing && !this.#closing) {
      this.#log.warn(_LOG, "worker %d (pid %d) exited: %s", w.id, w.child.pid, how);
    }
    const ranTask = this.#ranTask.delete(w.id);
    const stderrTail = this.#stderrTails.get(w.id) ?? "";
    this.#stderrTails.delete(w.id);
    if (this.#closing) return;
    if (!w.killing) {
      // died before its first result: back off (capped exponential) instead of spinning
      const { delayMs } = this.#health.exited({ ranTask, how, stderrTail }, performance.now());
      if (delayMs > 0) {
        this.#restartAfter = performance.now() + delayMs;
        this.#log.warn(_LOG, "%s; next worker start in %ds", this.#health.problem, delayMs / 1000);
      }
    }
    if (!w.killing) {
      const delay = Math.max(0, this.#restartAfter - performance.now());
      setTimeout(() => {
        if (!this.#closing && this.#workers.size < this.#opts.workers) {
          this.#spawn();
          this.#assign();
        }
      }, delay);
    }
    this.#capacity();
  }

  #assign(): void {
    if (this.#closing) return;
    // one task to every idle worker first (spread), then write ahead: a worker is topped up
    // to its depth once it has used half of it, in one write
    for (const w of this.#workers.values()) {
      if (this.#queue.length === 0) break;
      if (!w.killing && w.tasks.length === 0) this.#give(w, [this.#queue.shift()!]);
    }
    for (const w of this.#workers.values()) {
      if (this.#queue.length === 0) break;
      const depth = _depth(w.avgMs);
      if (w.killing || w.tasks.length > depth >> 1) continue;
      this.#give(w, this.#queue.splice(0, depth - w.tasks.length));
    }
    // Start workers (reaped or crashed) while tasks wait.
    while (
      this.#queue.length && this.#workers.size < this.#opts.workers &&
      performance.now() >= this.#restartAfter
    ) {
      const w = this.#spawn();
      if (!w) break;
      this.#give(w, [this.#queue.shift()!]);
    }
    this.#capacity();
  }

  /** Write `tasks` to the worker's stdin in one write. */
  #give(w: _Worker, tasks: _Task[]): void {
    if (tasks.length === 0) return;
    if (w.tasks.length === 0) {
      this.#markStarted(tasks[0].taskId);
      w.headSince = performance.now();
    }
    w.tasks.push(...tasks);
    w.writer.write(encodeFrames(tasks.map((t) => t.body))).catch((e) => {
      this.#log.warn(
        _LOG,
        "writing %d task(s) to worker %d failed: %s",
        tasks.length,
        w.id,
        e.message,
      );
      this.#kill(w, "SIGKILL");
    });
  }

  /** Put the tasks written to `w` behind its running one back at the front of the queue. */
  #requeue(w: _Worker): void {
    if (w.tasks.length <= 1 || this.#closing) return; // closing: BYE re-queues them upstream
    this.#queue.unshift(...w.tasks.splice(1));
  }

  #failQueued(why: string): void {
    for (const t of this.#queue.splice(0)) {
      this.#pushResult({
        taskId: t.taskId,
        failed: true,
        message: lostTaskResult(t.taskId, "WorkerLost", why, t.containerId),
      });
    }
  }

  /** Tell the interchange `taskId` may be running (sent with the next results flush). */
  #markStarted(taskId: string): void {
    this.#startedOut.push(taskId);
    this.#scheduleFlush();
  }

  #pushResult(r: WireResult): void {
    this.#outbox.push(r);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (!this.#flushQueued) {
      // next macrotask turn (not a timer, which fires milliseconds late): the results of every
      // stdout chunk read meanwhile leave in one RESULTS message
      this.#flushQueued = true;
      setImmediate(() => this.#flushResults());
    }
  }

  #flushResults(): void {
    this.#flushQueued = false;
    // STARTED first: the interchange must know before it could lose this manager
    for (let i = 0; i < this.#startedOut.length; i += 1000) {
      this.#send(encodeStarted(this.#startedOut.slice(i, i + 1000)));
    }
    this.#startedOut = [];
    while (this.#outbox.length) this.#send(encodeResults(this.#outbox.splice(0, 256)));
  }

  #capacity(): void {
    if (this.#capTimer !== undefined || this.#closing) return;
    this.#capTimer = setTimeout(() => {
      this.#capTimer = undefined;
      let busy = 0;
      for (const w of this.#workers.values()) if (w.tasks.length) busy++;
      this.#send(encodeCapacity({
        free: Math.max(0, this.#opts.workers - busy),
        queued: this.#queue.length,
        problem: this.#health.problem,
      }));
    }, 20);
  }

  #kill(w: _Worker, sig: Deno.Signal): void {
    try {
      w.child.kill(sig);
    } catch {
      // already gone
    }
  }

  #stopWorker(w: _Worker): void {
    w.writer.close().catch(() => {});
    this.#kill(w, "SIGTERM");
  }

  async #killAll(): Promise<void> {
    const all = [...this.#workers.values()];
    for (const w of all) {
      w.killing = true;
      this.#stopWorker(w);
    }
    const timer = setTimeout(() => {
      for (const w of all) this.#kill(w, "SIGKILL");
    }, 2000);
    await Promise.allSettled(all.map((w) => w.exited));
    clearTimeout(timer);
    // Tasks still waiting here never ran; the interchange fails them as ManagerLost.
  }
}
