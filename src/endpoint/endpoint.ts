/**
 * The endpoint daemon (DESIGN.md §4.3): registers with the web service, keeps the three
 * forwarder channels alive, feeds tasks to the {@linkcode Interchange} in batches and
 * returns its results in batches, tracks unacknowledged results on disk, and writes
 * `status.json` every second.
 *
 * Liveness: any tasks-channel traffic counts as a forwarder heartbeat. A lost connection
 * (ZeroMQ disconnect event) or `heartbeat_threshold` seconds of silence closes the
 * sockets, re-registers (with capped backoff while the service is down) and reconnects,
 * then resends every unacknowledged result — the daemon never goes deaf.
 *
 * @example
 * ```ts ignore
 * import { Endpoint } from "./endpoint.ts";
 * const ep = await Endpoint.start({ home, name: "default", config, global, log });
 * Deno.addSignalListener("SIGTERM", () => ep.stop("SIGTERM"));
 * await ep.done;
 * ```
 * @module
 */
import { clearImmediate, setImmediate } from "node:timers";
import { curveKeyPairZ85 } from "../io/zmtp/mod.ts";
import { tokenProvider } from "../auth/access.ts";
import { endpointPaths } from "../config/paths.ts";
import { effectiveServiceAddress } from "../config/schema.ts";
import { buildInfo } from "../config/build.ts";
import { ENDPOINT_VERSION, type EndpointConfig, type GlobalConfig } from "../config/types.ts";
import type { Logger } from "../daemon/log.ts";
import type { StatusFile } from "../daemon/state.ts";
import { encodeEPStatusReport, encodeRegistration } from "../protocol/messages.ts";
import type { PyValue } from "../protocol/pickle/mod.ts";
import { formatCertificate, parseCertificate } from "../protocol/zpl.ts";
import {
  RegistrationError,
  type RegistrationReply,
  WebServiceClient,
} from "../registration/client.ts";
import { Interchange, type InterchangeResult } from "../engine/interchange.ts";
import { type Channel, ForwarderChannels } from "./channels.ts";
import { atomicWrite, readEndpointJson } from "./files.ts";
import { UnackedStore } from "./unacked.ts";
import { sleep } from "../util/sleep.ts";
import { type AllowedCode, allowedCode, refusedTaskResult, refuseTask } from "./allowlist.ts";

/** Options of {@linkcode Endpoint.start} (DESIGN.md §4.3). */
export interface EndpointOptions {
  home: string;
  name: string;
  config: EndpointConfig;
  global: GlobalConfig;
  log: Logger;
  /** Used only when `endpoint.json` does not exist yet. */
  endpointUuid?: string;
  /**
   * The workers' interpreter when it is still being worked out (`daemon/python.ts`): blocks
   * launch at once and their managers wait for it (interchange `PYTHON` message), while
   * registration goes ahead. Default: `config.executor.python`.
   */
  python?: Promise<string>;
  /** Registration backoff (ms); defaults 1000 → 60000. Tests use smaller values. */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

type _State = StatusFile["state"];
type _ErrSource = "provider" | "registration" | "forwarder" | "interchange";

const _MAX_ERRORS = 50;
const _LOG = "endpoint";

/** The running endpoint daemon. */
export class Endpoint {
  /** Resolves after {@linkcode Endpoint.stop} finished. */
  readonly done: Promise<void>;
  /** The endpoint uuid (from `endpoint.json`, or chosen at first start). */
  readonly endpointId: string;

  #opts: EndpointOptions;
  #log: Logger;
  #paths: ReturnType<typeof endpointPaths>;
  #ws: WebServiceClient;
  #keys: { publicKey: string; secretKey: string };
  #interchange: Interchange;
  #unacked: UnackedStore;
  #channels: ForwarderChannels | undefined;
  #state: _State = "starting";
  #startedAt = new Date().toISOString();
  #lastHeartbeat: number | null = null;
  #lastTraffic = 0;
  /** Last sign that results are heard (an ack, a first unacked result, a (re)connect). */
  #ackProgress = 0;
  #errors: { time: string; source: string; message: string }[] = [];
  /** Tasks handed to the interchange whose result has not come back yet. */
  #inflight = new Set<string>();
  /** config.yaml `allowed_functions` with their code hashes (null: no restriction). */
  #allowed: AllowedCode | null = null;
  #pendingTasks: { taskId: string; containerId: string; body: Uint8Array }[] = [];
  #taskFlush: ReturnType<typeof setImmediate> | undefined;
  #abort = new AbortController();
  #reconnect = Promise.withResolvers<string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopping: Promise<void> | undefined;
  #doneResolvers = Promise.withResolvers<void>();
  #supervisor: Promise<void> = Promise.resolve();
  #warned = new Set<string>();
  #counts = { received: 0, duplicates: 0, resent: 0, acked: 0, leftUnfinished: 0 };
  /** Set while stopping: ManagerLost results are not sent, the tasks stay unfinished. */
  #draining = false;
  #versionChecked = false;
  #connectedSince: number | undefined;
  #lastCountsLog = performance.now();

  private constructor(
    o: EndpointOptions,
    endpointId: string,
    keys: { publicKey: string; secretKey: string },
  ) {
    // the interchange reads executor.python when it launches a block; with `o.python` it is
    // set once known, so this endpoint works on a copy of the executor section
    if (o.python) o = { ...o, config: { ...o.config, executor: { ...o.config.executor } } };
    this.#opts = o;
    this.#log = o.log;
    this.endpointId = endpointId;
    this.#keys = keys;
    this.#paths = endpointPaths(o.home, o.name);
    this.done = this.#doneResolvers.promise;
    this.#ws = new WebServiceClient(
      effectiveServiceAddress(o.global, o.config),
      tokenProvider(o.home, o.global),
      {
        initialDelayMs: o.retryInitialMs ?? 1000,
        maxDelayMs: o.retryMaxMs ?? 60_000,
        signal: this.#abort.signal,
      },
    );
    this.#unacked = new UnackedStore(this.#paths.unackedResults, {
      onError: (m) => this.#error("forwarder", m),
    });
    this.#interchange = new Interchange({
      endpointDir: this.#paths.dir,
      endpointId,
      config: o.config,
      log: o.log,
      onResults: (rs) => this.#onResults(rs),
      python: o.python,
    });
  }

  /**
   * Start the endpoint: fresh CURVE keypair, interchange (blocks launch right away),
   * registration and channels. Resolves once connected, or once the first registration
   * attempt failed in a retryable way (it keeps retrying in the background). A refused
   * registration (4xx, e.g. not logged in or the id belongs to someone else) rejects.
   *
   * @example
   * ```ts ignore
   * const ep = await Endpoint.start({ home, name, config, global, log });
   * ```
   */
  static async start(opts: EndpointOptions): Promise<Endpoint> {
    const p = endpointPaths(opts.home, opts.name);
    Deno.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    const saved = readEndpointJson(p.endpointJson);
    const id = saved?.endpoint_id ?? opts.endpointUuid ?? crypto.randomUUID();
    const keys = curveKeyPairZ85();
    Deno.mkdirSync(p.certificates, { recursive: true, mode: 0o700 });
    Deno.chmodSync(p.certificates, 0o700);
    atomicWrite(p.endpointKey, formatCertificate({ publicKey: keys.publicKey }), 0o600);
    atomicWrite(
      p.endpointSecret,
      formatCertificate({ publicKey: keys.publicKey, secretKey: keys.secretKey }),
      0o600,
    );
    const ep = new Endpoint(opts, id, keys);
    const loaded = ep.#unacked.load();
    if (loaded) ep.#log.info(_LOG, "%d unacknowledged result(s) loaded; resent on connect", loaded);
    ep.#writeStatus();
    ep.#timers.push(setInterval(() => ep.#writeStatus(), 1000));
    // blocks launch now; with `opts.python` still pending their managers boot meanwhile and
    // get the interpreter from the interchange (which also sets ep.#opts.config.executor.python)
    try {
      await ep.#interchange.start();
    } catch (e) {
      await ep.#teardown();
      throw e;
    }
    const first = Promise.withResolvers<void>();
    ep.#supervisor = ep.#supervise(first);
    try {
      await first.promise;
    } catch (e) {
      await ep.stop(`start failed: ${(e as Error).message}`);
      throw e;
    }
    ep.#timers.push(setInterval(() => ep.#tick(), 1000));
    ep.#timers.push(
      setInterval(() => ep.#sendStatusReport(), Math.max(0.2, opts.config.heartbeat_period) * 1000),
    );
    return ep;
  }

  /** Current state (as written to `status.json`). */
  get state(): _State {
    return this.#state;
  }

  /** Number of results waiting for their `ResultsAck`. */
  get unackedCount(): number {
    return this.#unacked.size;
  }

  /**
   * Stop: stop the interchange, leaving the tasks it still held unfinished (the service
   * delivers them again after a restart; they are not failed), give the forwarder a moment
   * to ack the results already computed, persist the unacked ones, close the sockets.
   *
   * @example
   * ```ts ignore
   * await ep.stop("SIGTERM");
   * ```
   */
  stop(reason = "stop requested"): Promise<void> {
    this.#stopping ??= this.#doStop(reason);
    return this.#stopping;
  }

  async #doStop(reason: string): Promise<void> {
    this.#log.info(_LOG, "stopping: %s", reason);
    this.#state = "stopping";
    this.#writeStatus();
    try {
      // Tasks not finished here are left unfinished at the service, which delivers them again
      // to the restarted endpoint; results already computed are sent or kept as unacked.
      this.#draining = true;
      if (this.#taskFlush !== undefined) clearImmediate(this.#taskFlush);
      this.#taskFlush = undefined;
      for (const t of this.#pendingTasks) this.#inflight.delete(t.taskId);
      this.#counts.leftUnfinished += this.#pendingTasks.length;
      this.#pendingTasks = [];
      await this.#interchange.stop().catch((e) =>
        this.#error("interchange", `stop failed: ${(e as Error).message}`)
      );
      // let the last results reach the forwarder and be acked (bounded)
      const until = performance.now() + 2000;
      while (
        this.#channels && this.#unacked.size > 0 && this.#connectedSince !== undefined &&
        performance.now() < until
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      this.#abort.abort(new Error("endpoint stopping"));
      this.#reconnect.resolve("stop");
      await this.#supervisor;
    } finally {
      await this.#teardown();
      const c = this.#counts;
      this.#log.info(
        _LOG,
        "stopped; %d task(s) received (%d duplicate deliveries ignored), %d result(s) acked, %d resent; %d task(s) left unfinished for the service to deliver again; %d unacknowledged result(s) saved to %s",
        c.received,
        c.duplicates,
        c.acked,
        c.resent,
        c.leftUnfinished,
        this.#unacked.size,
        this.#paths.unackedResults,
      );
      this.#doneResolvers.resolve();
    }
  }

  async #teardown(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (this.#taskFlush !== undefined) clearImmediate(this.#taskFlush);
    const ch = this.#channels;
    this.#channels = undefined;
    await ch?.close();
    this.#unacked.close();
    this.#writeStatus();
  }

  // ---------------------------------------------------------------- connection

  async #supervise(first: PromiseWithResolvers<void>): Promise<void> {
    let firstDone = false;
    const settle = (e?: Error) => {
      if (firstDone) return;
      firstDone = true;
      if (e) first.reject(e);
      else first.resolve();
    };
    let quickFailures = 0;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let reply: RegistrationReply;
      try {
        reply = await this.#register(() => settle());
      } catch (e) {
        if (signal.aborted) break;
        if (!firstDone) {
          settle(e as Error);
          return;
        }
        this.#error("registration", (e as Error).message);
        this.#state = "disconnected";
        await sleep(60_000, signal);
        continue;
      }
      this.#connectedSince = undefined;
      this.#reconnect = Promise.withResolvers<string>();
      try {
        await this.#open(reply);
      } catch (e) {
        this.#error("forwarder", (e as Error).message);
        settle();
        await sleep(5000, signal);
        continue;
      }
      settle();
      const why = await this.#reconnect.promise;
      const ch = this.#channels;
      this.#channels = undefined;
      await ch?.close();
      if (signal.aborted) break;
      this.#state = "disconnected";
      this.#error("forwarder", `connection lost (${why}); re-registering and reconnecting`);
      const connected = this.#connectedSince !== undefined;
      quickFailures = connected ? 0 : quickFailures + 1;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(quickFailures, 6));
      await sleep(delay, signal);
    }
    settle();
  }

  async #register(onFirstFailure: () => void): Promise<RegistrationReply> {
    const retry = (what: string) => ({
      onRetry: (
        { attempt, delayMs, error }: { attempt: number; delayMs: number; error: string },
      ) => {
        this.#state = "disconnected";
        this.#error(
          "registration",
          `${what} attempt ${attempt} failed: ${error}; retrying in ${
            Math.round(delayMs / 100) / 10
          } s`,
        );
        onFirstFailure();
      },
    });
    if (!this.#versionChecked) {
      await this.#ws.checkVersion(ENDPOINT_VERSION, retry("version check"));
      this.#versionChecked = true;
    }
    const reply = await this.#ws.registerEndpoint({
      endpoint_name: this.#opts.name,
      endpoint_uuid: this.endpointId,
      version: ENDPOINT_VERSION,
      endpoint_pubkey: this.#keys.publicKey,
      allowed_functions: this.#opts.config.allowed_functions,
      public: this.#opts.config.public,
      allowed_groups: this.#opts.config.allowed_groups,
    }, retry("registration"));
    this.#allowed = allowedCode(this.#opts.config.allowed_functions, reply.allowed_function_hashes);
    if (reply.endpoint_id !== this.endpointId) {
      throw new RegistrationError(
        "POST /endpoints",
        200,
        `the service answered with endpoint id ${reply.endpoint_id}, expected ${this.endpointId}`,
      );
    }
    for (
      const [file, text] of [
        [this.#paths.endpointJson, JSON.stringify(reply, null, 2) + "\n"],
        [this.#paths.serverKey, reply.forwarder_pubkey],
      ]
    ) {
      try {
        atomicWrite(file, text, 0o600);
      } catch (e) {
        // the connection does not need the files (the keys are in memory): keep going
        this.#warnOnce(
          `write:${file}`,
          "registration",
          `cannot write ${file}: ${(e as Error).message}`,
        );
      }
    }
    this.#log.info(
      _LOG,
      "registered as %s; forwarder %s ports %d/%d/%d",
      this.endpointId,
      reply.public_ip,
      reply.tasks_port,
      reply.results_port,
      reply.commands_port,
    );
    return reply;
  }

  async #open(reply: RegistrationReply): Promise<void> {
    const serverKey = parseCertificate(reply.forwarder_pubkey, "forwarder_pubkey").publicKey;
    const secret: Record<string, PyValue> = reply.endpoint_secret
      ? { endpoint_secret: reply.endpoint_secret }
      : {};
    const platform: Record<string, PyValue> = {
      parsl_v: "n/a",
      python_v: "n/a",
      libzmq_v: "n/a (ZMTP 3.1 in TypeScript)",
      pyzmq_v: "n/a",
      os: Deno.build.os,
      hname: Deno.hostname(),
      funcx_sdk_version: ENDPOINT_VERSION,
      funcx_endpoint_version: ENDPOINT_VERSION,
      funcx_endpoint_release: buildInfo().release,
      funcx_endpoint_commit: buildInfo().commit,
      registration: this.endpointId,
      dir: this.#paths.dir,
      ...secret,
    };
    const reg = encodeRegistration({ registration: this.endpointId, ...secret });
    this.#lastTraffic = performance.now();
    this.#state = "starting";
    this.#channels = await ForwarderChannels.open({
      endpointId: this.endpointId,
      host: reply.public_ip,
      ports: {
        tasks: reply.tasks_port,
        results: reply.results_port,
        commands: reply.commands_port,
      },
      serverKey,
      keys: this.#keys,
      registration: { tasks: encodeRegistration(platform), results: reg, commands: reg },
      handlers: {
        onTask: (t, c, raw) => this.#onTask(t, c, raw),
        onAck: (t) => this.#onAck(t),
        onHeartbeat: (id) => this.#onHeartbeat(id),
        onTraffic: () => this.#onTraffic(),
        onBadMessage: (ch, problem) => this.#onBad(ch, problem),
        onDisconnect: (ch, ev) => this.#reconnect.resolve(`${ch} channel: ${ev}`),
      },
      log: this.#log,
    });
    if (this.#unacked.size > 0) {
      const all = [...this.#unacked.entries()].map(([, b]) => b);
      this.#counts.resent += all.length;
      this.#log.info(_LOG, "resending %d unacknowledged result(s)", all.length);
      this.#channels.sendResults(all);
    }
    this.#sendStatusReport();
  }

  // ---------------------------------------------------------------- tasks channel

  #onTraffic(): void {
    // liveness uses the monotonic clock (wall-clock jumps must not look like silence)
    this.#lastTraffic = performance.now();
    this.#lastHeartbeat = Date.now();
    this.#connectedSince ??= this.#lastTraffic;
    if (this.#state !== "connected" && this.#state !== "stopping") {
      this.#state = "connected";
      this.#log.info(_LOG, "connected to the forwarder");
      // right away, not at the next 1 s tick: `start` waits for this
      this.#writeStatus();
    }
  }

  #onHeartbeat(endpointId: string): void {
    if (endpointId && endpointId !== this.endpointId) {
      this.#warnOnce(
        `hb:${endpointId}`,
        "forwarder",
        `the forwarder sent a heartbeat for endpoint ${endpointId}, but this is ${this.endpointId}`,
      );
    }
  }

  #onTask(taskId: string, containerId: string, raw: Uint8Array): void {
    this.#counts.received++;
    if (this.#stopping) return; // redelivered after the restart
    if (this.#inflight.has(taskId)) {
      this.#counts.duplicates++;
      return;
    }
    const done = this.#unacked.get(taskId);
    if (done) {
      // finished before; the forwarder did not see the result: send it again, do not rerun
      this.#counts.duplicates++;
      this.#channels?.sendResults([done]);
      return;
    }
    const refusal = refuseTask(raw, this.#allowed);
    if (refusal !== null) {
      this.#log.warn(_LOG, "task %s refused: %s", taskId, refusal);
      const message = refusedTaskResult(taskId, containerId, refusal);
      this.#onResults([{ taskId, message }]);
      return;
    }
    this.#inflight.add(taskId);
    // raw is a view into the ZeroMQ frame buffer; keep it as is (no copy)
    this.#pendingTasks.push({ taskId, containerId, body: raw });
    // setImmediate, not a 0 ms timer (Deno's fire milliseconds late, bench/FINDINGS.md §9):
    // tasks of one burst still batch
    if (this.#taskFlush === undefined) this.#taskFlush = setImmediate(() => this.#flushTasks());
  }

  #flushTasks(): void {
    if (this.#taskFlush !== undefined) clearImmediate(this.#taskFlush);
    this.#taskFlush = undefined;
    if (this.#pendingTasks.length === 0) return;
    const batch = this.#pendingTasks;
    this.#pendingTasks = [];
    try {
      this.#interchange.submit(batch);
    } catch (e) {
      this.#error(
        "interchange",
        `submitting ${batch.length} task(s) failed: ${(e as Error).message}`,
      );
      for (const t of batch) this.#inflight.delete(t.taskId);
    }
  }

  #onAck(taskId: string): void {
    this.#ackProgress = performance.now();
    if (this.#unacked.ack(taskId)) this.#counts.acked++;
  }

  #onBad(ch: Channel, problem: string): void {
    this.#warnOnce(`bad:${ch}:${problem}`, "forwarder", `dropped a ${ch} message: ${problem}`);
  }

  // ---------------------------------------------------------------- results

  #onResults(results: InterchangeResult[]): void {
    if (this.#draining) results = results.filter((r) => this.#keepWhileStopping(r));
    const out: Uint8Array[] = new Array(results.length);
    if (this.#unacked.size === 0) this.#ackProgress = performance.now();
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      this.#inflight.delete(r.taskId);
      this.#unacked.put(r.taskId, r.message);
      out[i] = r.message;
    }
    this.#channels?.sendResults(out);
    if (this.#log.level === "debug") {
      this.#log.debug(_LOG, "%d result(s) from the interchange sent to the forwarder", out.length);
    }
  }

  /**
   * While stopping, the interchange fails what it still holds with ManagerLost. Those tasks
   * did not fail: they are left unfinished (not sent, not stored) so the service delivers
   * them again after the restart. Real results are kept.
   */
  #keepWhileStopping(r: InterchangeResult): boolean {
    if (!r.lost) return true;
    this.#inflight.delete(r.taskId);
    this.#counts.leftUnfinished++;
    return false;
  }

  #sendStatusReport(): void {
    const ch = this.#channels;
    if (!ch) return;
    try {
      const s = this.#interchange.status();
      const ex = this.#opts.config.executor;
      const pv = this.#opts.config.provider;
      const workers = s.managers.reduce((n, m) => n + m.workers, 0);
      const idle = s.managers.reduce((n, m) => n + m.idle_workers, 0);
      const info: Record<string, PyValue> = {
        total_cores: workers * ex.cores_per_worker,
        total_mem: 0,
        new_core_hrs: 0,
        total_core_hrs: 0,
        managers: s.managers.length,
        active_managers: s.managers.length,
        total_workers: workers,
        idle_workers: idle,
        pending_tasks: s.tasks.queued,
        outstanding_tasks: s.tasks.queued + s.tasks.running,
        worker_mode: "no_container",
        scheduler_mode: "hard",
        scaling_enabled: pv.max_blocks > 0,
        mem_per_worker: null,
        cores_per_worker: ex.cores_per_worker,
        prefetch_capacity: ex.prefetch_capacity,
        max_blocks: pv.max_blocks,
        min_blocks: pv.min_blocks,
        max_workers_per_node: ex.max_workers_per_node,
        nodes_per_block: pv.nodes_per_block,
      };
      ch.sendHeartbeat();
      ch.sendResults([
        encodeEPStatusReport(this.endpointId, info, this.#interchange.taskStatuses()),
      ]);
    } catch (e) {
      this.#warnOnce("report", "interchange", `status report failed: ${(e as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- housekeeping

  #tick(): void {
    if (!this.#channels || this.#stopping) return;
    const now = performance.now();
    if (now - this.#lastCountsLog >= 60_000) {
      this.#lastCountsLog = now;
      const c = this.#counts;
      this.#log.info(
        _LOG,
        "%d task(s) received (%d duplicate deliveries), %d in flight, %d result(s) acked, %d unacked",
        c.received,
        c.duplicates,
        this.#inflight.size,
        c.acked,
        this.#unacked.size,
      );
    }
    const silent = now - this.#lastTraffic;
    if (silent > this.#opts.config.heartbeat_threshold * 1000) {
      this.#reconnect.resolve(
        `no message from the forwarder for ${
          Math.round(silent / 1000)
        } s (heartbeat_threshold ${this.#opts.config.heartbeat_threshold} s)`,
      );
    }
    // The forwarder acks every result it stores, within milliseconds. Results outstanding
    // with no ack for twice the heartbeat_threshold mean the results connection is not heard
    // (the forwarder no longer trusts it, or libzmq parked it behind a half-open old
    // connection of ours): reconnect, which re-registers and resends them.
    const since = this.#connectedSince;
    const unheard = since === undefined ? 0 : now - Math.max(this.#ackProgress, since);
    if (this.#unacked.size > 0 && unheard > 2 * this.#opts.config.heartbeat_threshold * 1000) {
      this.#reconnect.resolve(
        `${this.#unacked.size} result(s) not acknowledged for ${
          Math.round(unheard / 1000)
        } s (2 × heartbeat_threshold ${this.#opts.config.heartbeat_threshold} s)`,
      );
    }
  }

  #error(source: _ErrSource, message: string): void {
    const level = source === "registration" || source === "forwarder" ? "warn" : "error";
    this.#log[level](_LOG, "%s: %s", source, message);
    this.#errors.push({ time: new Date().toISOString(), source, message });
    if (this.#errors.length > _MAX_ERRORS) {
      this.#errors.splice(0, this.#errors.length - _MAX_ERRORS);
    }
  }

  #warnOnce(key: string, source: _ErrSource, message: string): void {
    if (this.#warned.has(key)) {
      this.#log.debug(_LOG, "%s", message);
      return;
    }
    if (this.#warned.size > 1000) this.#warned.clear();
    this.#warned.add(key);
    this.#error(source, message);
  }

  #writeStatus(): void {
    const now = new Date().toISOString();
    let ix;
    try {
      ix = this.#interchange.status();
    } catch {
      ix = {
        address: "",
        tasks: { queued: 0, running: 0, completed: 0, failed: 0 },
        blocks: [],
        managers: [],
        errors: [],
      };
    }
    const errors = [...this.#errors, ...ix.errors]
      // ISO times sort as plain strings (localeCompare would load ICU collation data)
      .sort((a, b) => a.time < b.time ? -1 : a.time > b.time ? 1 : 0)
      .slice(-_MAX_ERRORS);
    const status: StatusFile = {
      pid: Deno.pid,
      host: Deno.hostname(),
      name: this.#opts.name,
      endpoint_id: this.endpointId,
      build: buildInfo(),
      state: this.#state,
      started_at: this.#startedAt,
      updated_at: now,
      last_heartbeat: this.#lastHeartbeat === null
        ? null
        : new Date(this.#lastHeartbeat).toISOString(),
      heartbeat_threshold: this.#opts.config.heartbeat_threshold,
      address: ix.address || undefined,
      degraded: ix.degraded ?? null,
      executor_address: this.#opts.config.executor.address,
      tasks: { ...ix.tasks },
      unacked_results: this.#unacked.size,
      blocks: ix.blocks.map((b) => ({
        block_id: b.block_id,
        job_id: b.job_id,
        state: b.state,
        nodes: b.nodes,
        message: b.message,
      })),
      managers: ix.managers.map((m) => ({ ...m })),
      errors,
    };
    try {
      atomicWrite(this.#paths.statusFile, JSON.stringify(status) + "\n", 0o600);
    } catch (e) {
      this.#warnOnce(
        "status-write",
        "interchange",
        `cannot write ${this.#paths.statusFile}: ${(e as Error).message}`,
      );
    }
  }
}
