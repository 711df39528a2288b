/**
 * The ZeroMQ forwarder of the local service (upstream funcx-forwarder, §6): three ROUTER
 * sockets (tasks, results, commands) in CURVE server mode with a stable keypair, a ZAP
 * handler that only admits CURVE public keys registered with `POST /endpoints`, routing by
 * endpoint identity (= endpoint uuid), heartbeats, task delivery (queued while an endpoint
 * is away, re-delivered on every new connection), results stored in batches and acked
 * with `ResultsAck`, and task status updates from `EPStatusReport`s.
 *
 * An identity is only trusted once its registration message on that socket carries the
 * `endpoint_secret` issued at registration, so a registered key cannot speak for another
 * endpoint's uuid. `ROUTER_HANDOVER` is off: a second connection with an identity in use is
 * refused by libzmq.
 *
 * @example
 * ```ts
 * import { Forwarder } from "./forwarder.ts";
 * const fwd = await Forwarder.start({ store, curveDir, host: "127.0.0.1", basePort: 0, heartbeatPeriod: 30, log });
 * console.log(fwd.ports.tasks, fwd.publicCertificate);
 * await fwd.close();
 * ```
 * @module
 */
import * as zmq from "zeromq";
import type { Logger } from "../daemon/log.ts";
import { decodePickle, isPlainDict, type PyValue } from "../protocol/pickle.ts";
import { toJsonable } from "../protocol/jsonable.ts";
import {
  decodeEPStatusReport,
  isEPStatusReport,
  MessageType,
  packHeartbeat,
  packResultsAck,
  packTask,
} from "../protocol/messages.ts";
import { isUuid } from "./errors.ts";
import { safeEqual, sha256Hex } from "./secrets.ts";
import type { NewResult, ServiceStore, TaskStatus } from "./store.ts";
import { loadOrCreateServerKeys, z85Encode } from "./curve.ts";
import { type PollLoop, pollReceive } from "./zmq_poll.ts";

/** Options of {@linkcode Forwarder.start}. */
export interface ForwarderOptions {
  /** The service database. */
  store: ServiceStore;
  /** Directory of the stable server keypair (`server.key`, `server.key_secret`). */
  curveDir: string;
  /** Interface to bind. */
  host: string;
  /** Tasks port (results +1, commands +2); 0 = three free ports. */
  basePort: number;
  /** Seconds between heartbeats to connected endpoints. */
  heartbeatPeriod: number;
  /** Logger. */
  log: Logger;
}

const _STATUS_BY_CODE: Record<number, TaskStatus> = {
  1: "waiting-for-nodes",
  2: "waiting-for-launch",
  3: "running",
};
const _enc = new TextEncoder();
const _dec = new TextDecoder();
const _HEARTBEAT_LITERAL = "HEARTBEAT";
const _MAX_FRAME = 64 * 1024 * 1024;

type _Channel = "tasks" | "results" | "commands";

/** Per-endpoint connection state (in memory). */
interface _Conn {
  /** Sockets on which the identity proved its endpoint_secret since it last connected. */
  trusted: Set<_Channel>;
  /** Connected (trusted on tasks, last send succeeded). */
  connected: boolean;
  lastSeen: number;
  /** Upstream ≥0.3.3 registration (has funcx_endpoint_version) wants ResultsAck. */
  wantsAcks: boolean;
}

/** A serial writer: zeromq.js allows one pending send per socket. */
class _Sender {
  #queue: { frames: Uint8Array[]; onError?: (e: Error) => void }[] = [];
  #running = false;
  #idle = Promise.resolve();
  #resolveIdle?: () => void;
  constructor(private readonly sock: zmq.Router) {}

  push(frames: Uint8Array[], onError?: (e: Error) => void) {
    this.#queue.push({ frames, onError });
    if (!this.#running) this.#drain();
  }

  /** Resolves when the queue is empty. */
  idle(): Promise<void> {
    return this.#running ? this.#idle : Promise.resolve();
  }

  async #drain() {
    this.#running = true;
    const d = Promise.withResolvers<void>();
    this.#idle = d.promise;
    try {
      while (this.#queue.length > 0) {
        const item = this.#queue.shift()!;
        try {
          await this.sock.send(item.frames); // sendTimeout 0: queued now or fails now
        } catch (e) {
          item.onError?.(e as Error);
        }
      }
    } finally {
      this.#running = false;
      d.resolve();
    }
  }
}

/** The forwarder. */
export class Forwarder {
  /** Bound ports. */
  readonly ports: { tasks: number; results: number; commands: number };
  /** ZPL text of the server's public certificate (sent to endpoints at registration). */
  readonly publicCertificate: string;
  #ctx: zmq.Context;
  #socks: Record<_Channel, zmq.Router>;
  #zap: zmq.Router;
  #tasksOut: _Sender;
  #store: ServiceStore;
  #log: Logger;
  #conns = new Map<string, _Conn>();
  /** Registered CURVE public key (Z85) → endpoint uuid. */
  #keys = new Map<string, string>();
  #pendingResults: { identity: string; result: NewResult }[] = [];
  #pendingStatus = new Map<string, TaskStatus>();
  #pendingReports: { uuid: string; ts: number; info: unknown }[] = [];
  #flushTimer?: ReturnType<typeof setTimeout>;
  #heartbeatTimer?: ReturnType<typeof setInterval>;
  #probeTimer?: ReturnType<typeof setTimeout>;
  #closed = false;
  #loops: PollLoop[] = [];
  #warned = new Set<string>();
  #heartbeatPeriod: number;

  private constructor(
    opts: ForwarderOptions,
    ctx: zmq.Context,
    socks: Record<_Channel, zmq.Router>,
    zap: zmq.Router,
    ports: { tasks: number; results: number; commands: number },
    publicCertificate: string,
  ) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#ctx = ctx;
    this.#socks = socks;
    this.#zap = zap;
    this.ports = ports;
    this.publicCertificate = publicCertificate;
    this.#tasksOut = new _Sender(socks.tasks);
    this.#heartbeatPeriod = opts.heartbeatPeriod;
    for (const ep of this.#store.listEndpoints()) this.#keys.set(ep.pubkey, ep.uuid);
  }

  /** Load/create the keypair, start the ZAP handler, bind the three sockets. */
  static async start(opts: ForwarderOptions): Promise<Forwarder> {
    const keys = await loadOrCreateServerKeys(opts.curveDir);
    const ctx = new zmq.Context();
    const zap = new zmq.Router({ context: ctx, linger: 0, sendTimeout: 0 });
    await zap.bind("inproc://zeromq.zap.01");
    const socks = {} as Record<_Channel, zmq.Router>;
    const ports = { tasks: 0, results: 0, commands: 0 };
    const channels: _Channel[] = ["tasks", "results", "commands"];
    try {
      for (const [i, ch] of channels.entries()) {
        const sock = new zmq.Router({
          context: ctx,
          mandatory: true,
          handover: false,
          // never wait inside libzmq (see zmq_poll.ts): a send that cannot be queued
          // right now fails, and the endpoint is treated as disconnected
          sendTimeout: 0,
          // ZMTP heartbeats tear down dead (half-open) connections, so a stale pipe cannot
          // hold an endpoint's identity for long (ROUTER_HANDOVER is off)
          heartbeatInterval: 5000,
          heartbeatTimeout: 15000,
          curveServer: true,
          curveSecretKey: keys.secretKey,
          curvePublicKey: keys.publicKey,
          zapDomain: "funcx",
          sendHighWaterMark: 0,
          receiveHighWaterMark: 0,
          linger: ch === "tasks" ? 2000 : 0,
          maxMessageSize: _MAX_FRAME,
        });
        socks[ch] = sock;
        const port = opts.basePort === 0 ? "*" : String(opts.basePort + i);
        const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
        try {
          await sock.bind(`tcp://${host}:${port}`);
        } catch (e) {
          throw new Error(
            `cannot bind the forwarder ${ch} socket on ${opts.host}:${port}: ${
              (e as Error).message
            }`,
          );
        }
        const m = /:(\d+)$/.exec(sock.lastEndpoint ?? "");
        ports[ch] = m ? Number(m[1]) : 0;
      }
    } catch (e) {
      for (const s of Object.values(socks)) s.close();
      zap.close();
      throw e;
    }
    const fwd = new Forwarder(opts, ctx, socks, zap, ports, keys.publicCertificate);
    const onError = (what: string) => (e: unknown) =>
      fwd.#closed || fwd.#log.error("forwarder", "%s socket stopped: %s", what, e);
    fwd.#loops.push(pollReceive(zap, (f) => fwd.#onZap(f), { onError: onError("ZAP") }));
    for (const ch of channels) {
      fwd.#loops.push(
        pollReceive(socks[ch], (frames) => fwd.#onFrames(ch, frames), { onError: onError(ch) }),
      );
    }
    fwd.#watchDisconnects();
    fwd.#heartbeatTimer = setInterval(() => fwd.#heartbeat(), opts.heartbeatPeriod * 1000);
    return fwd;
  }

  // ------------------------------------------------------------------ API hooks

  /** The endpoint uuid a public key is registered for, if any. */
  endpointForKey(pubkey: string): string | undefined {
    return this.#keys.get(pubkey);
  }

  /** An endpoint (re-)registered with a (maybe new) key: admit it at the ZAP handler. */
  endpointRegistered(uuid: string, pubkey: string, oldKey?: string): void {
    if (oldKey && oldKey !== pubkey && this.#keys.get(oldKey) === uuid) this.#keys.delete(oldKey);
    this.#keys.set(pubkey, uuid);
  }

  /** An endpoint was deleted: forget its key and connection. */
  endpointDeleted(uuid: string, pubkey: string): void {
    if (this.#keys.get(pubkey) === uuid) this.#keys.delete(pubkey);
    this.#conns.delete(uuid);
  }

  /** New tasks were stored for these endpoints: deliver to the connected ones. */
  tasksSubmitted(endpoints: Set<string>): void {
    for (const uuid of endpoints) {
      const c = this.#conns.get(uuid);
      if (c?.connected) this.#deliver(uuid, true);
    }
  }

  /** Is the endpoint connected (trusted on the tasks channel, last send succeeded)? */
  isOnline(uuid: string): boolean {
    return this.#conns.get(uuid)?.connected ?? false;
  }

  /** When the endpoint last sent anything trusted (epoch seconds). */
  lastSeen(uuid: string): number | undefined {
    return this.#conns.get(uuid)?.lastSeen;
  }

  /** Endpoints currently connected. */
  connectedEndpoints(): string[] {
    return [...this.#conns].filter(([, c]) => c.connected).map(([u]) => u);
  }

  /** Store pending results/statuses now and send the acks. */
  async flush(): Promise<void> {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    this.#flushNow();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#tasksOut.idle(),
      new Promise((r) => timer = setTimeout(r, 5000)),
    ]);
    clearTimeout(timer);
  }

  /** Flush, then close the sockets (waiting briefly for the last acks to go out). */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#probeTimer);
    for (const s of Object.values(this.#socks)) s.close();
    await Promise.allSettled(this.#loops.map((l) => l.stop()));
    this.#zap.close();
  }

  // ------------------------------------------------------------------ ZAP

  async #onZap(frames: Uint8Array[]): Promise<void> {
    // ROUTER envelope: [peer, empty, version, request id, domain, address, identity,
    // mechanism, credentials...]
    const [peer, empty, version, requestId, _domain, address, _identity, mechanism, key] = frames;
    let status = "400";
    let text = "Unknown CURVE key";
    let userId = "";
    if (_dec.decode(version ?? new Uint8Array()) !== "1.0") {
      text = "Unsupported ZAP version";
    } else if (_dec.decode(mechanism ?? new Uint8Array()) !== "CURVE" || key?.length !== 32) {
      text = "CURVE required";
    } else {
      const z85 = z85Encode(key);
      const uuid = this.#keys.get(z85);
      if (uuid) {
        status = "200";
        text = "OK";
        userId = uuid;
      } else {
        this.#warnOnce(
          `zap:${z85}`,
          "refused a CURVE client key that no endpoint registered (from %s)",
          _dec.decode(address ?? new Uint8Array()),
        );
      }
    }
    try {
      await this.#zap.send([
        peer,
        empty ?? new Uint8Array(),
        "1.0",
        requestId ?? "",
        status,
        text,
        userId,
        "",
      ]);
    } catch (e) {
      if (!this.#closed) this.#log.warn("forwarder", "ZAP reply failed: %s", e);
    }
  }

  // ------------------------------------------------------------------ receive

  #onFrames(ch: _Channel, frames: Uint8Array[]): void {
    try {
      this.#onMessage(ch, frames);
    } catch (e) {
      this.#warnOnce(`${ch}:exception`, "error handling a %s message: %s", ch, e);
    }
  }

  #warnOnce(key: string, msg: string, ...args: unknown[]) {
    if (this.#warned.has(key)) {
      this.#log.debug("forwarder", msg, ...args);
      return;
    }
    if (this.#warned.size > 10_000) this.#warned.clear();
    this.#warned.add(key);
    this.#log.warn("forwarder", msg, ...args);
  }

  #onMessage(ch: _Channel, frames: Uint8Array[]): void {
    const identity = _dec.decode(frames[0]);
    if (!isUuid(identity)) {
      this.#warnOnce(`${ch}:badid`, "dropped a %s message from a non-uuid identity", ch);
      return;
    }
    const uuid = identity.toLowerCase();
    if (frames.length !== 2) {
      this.#warnOnce(
        `${ch}:${uuid}:frames`,
        "dropped a malformed %s message from %s: %d frames, expected 1",
        ch,
        uuid,
        frames.length - 1,
      );
      return;
    }
    const payload = frames[1];
    if (ch === "results" && payload.length === 9 && _dec.decode(payload) === _HEARTBEAT_LITERAL) {
      this.#seen(uuid, ch);
      return;
    }
    if (ch === "commands" && payload.length >= 1 && payload[0] === MessageType.HEARTBEAT) {
      this.#seen(uuid, ch);
      return;
    }
    let msg: PyValue;
    try {
      msg = decodePickle(payload, { maxBytes: _MAX_FRAME });
    } catch (e) {
      this.#warnOnce(
        `${ch}:${uuid}:pickle`,
        "dropped a malformed %s message from %s: %s",
        ch,
        uuid,
        (e as Error).message,
      );
      return;
    }
    if (isPlainDict(msg) && "registration" in msg) {
      this.#onRegistration(ch, uuid, msg);
      return;
    }
    if (ch !== "results") {
      this.#warnOnce(
        `${ch}:${uuid}:unexpected`,
        "dropped an unexpected %s message from %s",
        ch,
        uuid,
      );
      return;
    }
    const conn = this.#conns.get(uuid);
    if (!conn?.trusted.has("results")) {
      this.#warnOnce(
        `results:${uuid}:untrusted`,
        "dropped results from %s: it has not registered on the results channel with its endpoint_secret",
        uuid,
      );
      return;
    }
    this.#seen(uuid, ch);
    if (isPlainDict(msg) && "task_id" in msg) this.#onResult(uuid, msg);
    else if (isEPStatusReport(msg)) {
      this.#onStatusReport(uuid, msg);
    } else {
      this.#warnOnce(`results:${uuid}:unknown`, "dropped an unknown results message from %s", uuid);
    }
  }

  #seen(uuid: string, ch: _Channel) {
    const c = this.#conns.get(uuid);
    if (c?.trusted.has(ch)) c.lastSeen = Date.now() / 1000;
  }

  #onRegistration(ch: _Channel, uuid: string, msg: Record<string, PyValue>) {
    const ep = this.#store.getEndpoint(uuid);
    if (!ep) {
      this.#warnOnce(
        `reg:${uuid}:unknown`,
        "refused %s registration of unknown endpoint %s",
        ch,
        uuid,
      );
      return;
    }
    if (msg.registration !== uuid && String(msg.registration).toLowerCase() !== uuid) {
      this.#warnOnce(
        `reg:${uuid}:mismatch`,
        "refused %s registration from %s: it names endpoint %s",
        ch,
        uuid,
        String(msg.registration),
      );
      return;
    }
    const secret = msg.endpoint_secret;
    if (typeof secret !== "string" || !safeEqual(sha256Hex(secret), ep.secret_hash)) {
      this.#warnOnce(
        `reg:${uuid}:${ch}:secret`,
        "refused %s registration from %s: missing or wrong endpoint_secret",
        ch,
        uuid,
      );
      return;
    }
    let conn = this.#conns.get(uuid);
    if (!conn) {
      conn = { trusted: new Set(), connected: false, lastSeen: 0, wantsAcks: true };
      this.#conns.set(uuid, conn);
    }
    conn.trusted.add(ch);
    conn.lastSeen = Date.now() / 1000;
    if (ch === "tasks") {
      conn.wantsAcks = "funcx_endpoint_version" in msg;
      conn.connected = true;
      this.#log.info("forwarder", "endpoint %s connected", uuid);
      // A new connection: everything unfinished is (re-)delivered.
      this.#deliver(uuid, false);
      this.#send(uuid, packHeartbeat(uuid));
    }
  }

  #onResult(uuid: string, msg: Record<string, PyValue>) {
    const taskId = msg.task_id;
    if (typeof taskId !== "string" || !isUuid(taskId)) {
      this.#warnOnce(
        `results:${uuid}:taskid`,
        "dropped a result from %s with task_id %s",
        uuid,
        String(taskId),
      );
      return;
    }
    const result: NewResult = { taskId: taskId.toLowerCase(), endpointUuid: uuid };
    if (typeof msg.exception === "string") result.exception = msg.exception;
    else if (typeof msg.result === "string") result.result = msg.result;
    else {
      this.#warnOnce(
        `results:${uuid}:noresult`,
        "result for task %s from %s has neither a result nor an exception string; stored as failed",
        taskId,
        uuid,
      );
      result.exception = "";
    }
    this.#pendingResults.push({ identity: uuid, result });
    this.#scheduleFlush();
  }

  #onStatusReport(uuid: string, obj: PyValue) {
    let report;
    try {
      report = decodeEPStatusReport(obj);
    } catch (e) {
      this.#warnOnce(
        `results:${uuid}:report`,
        "dropped a malformed EPStatusReport from %s: %s",
        uuid,
        (e as Error).message,
      );
      return;
    }
    for (const [tid, code] of Object.entries(report.taskStatuses)) {
      const status = _STATUS_BY_CODE[code];
      if (isUuid(tid) && status) this.#pendingStatus.set(tid.toLowerCase(), status);
    }
    this.#pendingReports.push({ uuid, ts: Date.now() / 1000, info: toJsonable(report.info) });
    this.#scheduleFlush();
  }

  #scheduleFlush() {
    if (this.#flushTimer !== undefined || this.#closed) return;
    const urgent = this.#pendingResults.length >= 1000;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      try {
        this.#flushNow();
      } catch (e) {
        this.#log.error("forwarder", "storing results failed (will retry): %s", e);
        this.#scheduleFlush();
      }
    }, urgent ? 0 : 1);
  }

  #flushNow() {
    const results = this.#pendingResults;
    const statuses = this.#pendingStatus;
    const reports = this.#pendingReports;
    if (results.length === 0 && statuses.size === 0 && reports.length === 0) return;
    this.#pendingResults = [];
    this.#pendingStatus = new Map();
    this.#pendingReports = [];
    try {
      // status first: a result in the same batch must win over a stale "running"
      this.#store.updateStatuses(statuses);
      const stored = this.#store.storeResults(results.map((r) => r.result));
      this.#store.addStatusReports(reports);
      const seen = new Map<string, number>();
      for (const r of reports) seen.set(r.uuid, r.ts);
      this.#store.recordHeartbeats(seen);
      if (stored.size > 0) this.#log.debug("forwarder", "stored %d results", stored.size);
    } catch (e) {
      // put them back so nothing is lost, the ack is only sent after storing
      this.#pendingResults = results.concat(this.#pendingResults);
      for (const [k, v] of statuses) if (!this.#pendingStatus.has(k)) this.#pendingStatus.set(k, v);
      this.#pendingReports = reports.concat(this.#pendingReports);
      throw e;
    }
    for (const { identity, result } of results) {
      if (this.#conns.get(identity)?.wantsAcks === false) continue;
      this.#send(identity, packResultsAck(result.taskId));
    }
  }

  // ------------------------------------------------------------------ send

  #send(uuid: string, frame: Uint8Array) {
    this.#tasksOut.push([_enc.encode(uuid), frame], (e) => this.#sendFailed(uuid, e));
  }

  #sendFailed(uuid: string, e: Error) {
    const c = this.#conns.get(uuid);
    if (c?.connected) {
      this.#log.info(
        "forwarder",
        "endpoint %s disconnected (%s)",
        uuid,
        (e as { code?: string }).code ?? e.message,
      );
    }
    if (c) {
      c.connected = false;
      c.trusted.clear();
    }
  }

  /** Send unfinished tasks (only never-delivered ones when `onlyNew`). */
  #deliver(uuid: string, onlyNew: boolean) {
    const tasks = this.#store.pendingTasks(uuid, onlyNew);
    const delivered = new Map<string, TaskStatus>();
    for (const t of tasks) {
      if (t.payload === null) continue;
      this.#send(uuid, packTask(t.uuid, t.container, t.payload));
      if (t.status === "waiting-for-ep") delivered.set(t.uuid, "waiting-for-nodes");
    }
    this.#store.updateStatuses(delivered);
    if (tasks.length > 0) {
      this.#log.debug("forwarder", "sent %d tasks to %s", delivered.size, uuid);
    }
  }

  #heartbeat() {
    const now = Date.now() / 1000;
    const seen = new Map<string, number>();
    for (const [uuid, c] of this.#conns) {
      if (!c.connected) continue;
      this.#send(uuid, packHeartbeat(uuid));
      if (c.lastSeen > 0) seen.set(uuid, c.lastSeen);
    }
    try {
      this.#store.recordHeartbeats(seen);
    } catch (e) {
      this.#log.warn("forwarder", "recording heartbeats failed: %s", e);
    }
    void now;
  }

  /** A peer went away on some socket: probe connected endpoints right away. */
  #watchDisconnects() {
    for (const ch of ["tasks", "results", "commands"] as const) {
      this.#socks[ch].events.on("disconnect", () => {
        if (this.#closed || this.#probeTimer !== undefined) return;
        this.#probeTimer = setTimeout(() => {
          this.#probeTimer = undefined;
          if (!this.#closed) this.#heartbeat();
        }, 50);
      });
    }
  }
}
