/**
 * The ZeroMQ forwarder of the local service (upstream funcx-forwarder, §6): three ROUTER
 * sockets (tasks, results, commands) in CURVE server mode with a stable keypair, a ZAP
 * handler that only admits CURVE public keys registered with `POST /endpoints`, routing by
 * endpoint identity (= endpoint uuid), heartbeats, task delivery (queued while an endpoint
 * is away, re-delivered on every new connection), results stored in batches and acked
 * with `ResultsAck`, and task status updates from `EPStatusReport`s.
 *
 * Trust is per connection. A connection is known by its ROUTER routing id (normally the
 * endpoint uuid, which the endpoint sets as its ZeroMQ identity). It is trusted for an
 * endpoint only once its registration message carries that endpoint's `endpoint_secret`
 * (issued at registration), so a registered key cannot speak for another endpoint. The
 * sockets use `ZMQ_ROUTER_NOTIFY`: libzmq delivers an empty message from a routing id when
 * its connection comes up or goes down, in order with that connection's messages, and any
 * such event ends the trust of that routing id. Tasks are only sent to the connection trusted
 * at that moment (sends are synchronous); the others stay unfinished and are re-delivered
 * once the endpoint registers again. With `ROUTER_HANDOVER` off, libzmq only gives a routing id to a new connection
 * after the old connection's last message (its disconnect event) was read, so a connection
 * that takes over a uuid, e.g. an impostor right after the real endpoint dropped, never
 * inherits trust. A reconnecting endpoint whose uuid is still held by its own half-closed
 * old connection gets a libzmq-assigned routing id instead; its registration (which names
 * the endpoint and carries the secret) binds that routing id, so it is served all the same.
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
import { closeSocket, kick, type ReceiveLoop, receiveLoop } from "../io/zmq.ts";

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
  /** Per channel: routing id of the connection that proved the endpoint_secret (latin1 key). */
  route: Partial<Record<_Channel, string>>;
  /** Connected (a trusted tasks connection, last send succeeded). */
  connected: boolean;
  lastSeen: number;
  /** Upstream ≥0.3.3 registration (has funcx_endpoint_version) wants ResultsAck. */
  wantsAcks: boolean;
}

/** `ZMQ_ROUTER_NOTIFY` (libzmq ≥ 4.3, draft API) and its flags: connect | disconnect. */
const _ZMQ_ROUTER_NOTIFY = 97;
const _NOTIFY_CONNECT_AND_DISCONNECT = 3;

/**
 * Turn on connection events on a ROUTER socket (see the module doc). zeromq.js has no typed
 * option for it; its native `setInt32Option` sets any integer option.
 */
function _enableRouterNotify(sock: zmq.Router): void {
  (sock as unknown as { setInt32Option(o: number, v: number): void }).setInt32Option(
    _ZMQ_ROUTER_NOTIFY,
    _NOTIFY_CONNECT_AND_DISCONNECT,
  );
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
  #store: ServiceStore;
  #log: Logger;
  #conns = new Map<string, _Conn>();
  /** Per channel: trusted routing id (latin1 key) → endpoint uuid. */
  #routes: Record<_Channel, Map<string, string>> = {
    tasks: new Map(),
    results: new Map(),
    commands: new Map(),
  };
  /** Registered CURVE public key (Z85) → endpoint uuid. */
  #keys = new Map<string, string>();
  #pendingResults: { identity: string; result: NewResult }[] = [];
  #pendingStatus = new Map<string, TaskStatus>();
  #pendingReports: { uuid: string; ts: number; info: unknown }[] = [];
  #flushQueued = false;
  /** When the last store of results ended (monotonic ms). */
  #lastFlush = Number.NEGATIVE_INFINITY;
  #heartbeatTimer?: ReturnType<typeof setInterval>;
  #closed = false;
  #loops: ReceiveLoop[] = [];
  #warned = new Set<string>();
  #heartbeatPeriod: number;
  /** Task id → callers of {@linkcode Forwarder.resultStored} waiting for its result. */
  #resultWaiters = new Map<string, (() => void)[]>();
  /** Re-checks the results socket while a client waits (see {@linkcode Forwarder.resultStored}). */
  #waitKicker?: ReturnType<typeof setInterval>;

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
          // never wait inside libzmq (see src/io/zmq.ts): a send that cannot be queued
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
        _enableRouterNotify(sock);
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
    fwd.#loops.push(receiveLoop(zap, (f) => fwd.#onZap(f), { onError: onError("ZAP") }));
    for (const ch of channels) {
      fwd.#loops.push(
        receiveLoop(socks[ch], (frames) => fwd.#onFrames(ch, frames), { onError: onError(ch) }),
      );
    }
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
    const c = this.#conns.get(uuid);
    if (c) {
      for (const [ch, rid] of Object.entries(c.route)) this.#routes[ch as _Channel].delete(rid);
    }
    this.#conns.delete(uuid);
  }

  /**
   * New tasks, already stored as delivered (`waiting-for-nodes`) for their connected
   * endpoints: send them now. One that cannot go out (the connection just dropped) is sent
   * again when the endpoint reconnects, like every unfinished task.
   */
  tasksSubmitted(
    tasks: readonly { uuid: string; endpointUuid: string; container: string; payload: string }[],
  ): void {
    for (const t of tasks) {
      this.#send(t.endpointUuid, packTask(t.uuid, t.container, t.payload));
    }
  }

  /**
   * Resolves once a result for `taskId` was stored, or after `ms` (whichever is first); the
   * HTTP API's long poll (`GET /tasks/<id>?wait=<s>`) waits on it instead of being polled.
   */
  resultStored(taskId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const list = this.#resultWaiters.get(taskId) ?? [];
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      timer = setTimeout(() => {
        const l = this.#resultWaiters.get(taskId);
        const i = l?.indexOf(done) ?? -1;
        if (i >= 0) l!.splice(i, 1);
        if (l?.length === 0) this.#resultWaiters.delete(taskId);
        resolve();
      }, ms);
      list.push(done);
      this.#resultWaiters.set(taskId, list);
      // A client is waiting on this result: re-check the results socket at the timer's pace
      // (≈ 2 ms) instead of the general missed-wake-up rescue (src/io/zmq.ts, 5 ms), only
      // while someone waits.
      this.#waitKicker ??= setInterval(() => {
        if (this.#resultWaiters.size === 0 || this.#closed) {
          clearInterval(this.#waitKicker);
          this.#waitKicker = undefined;
        } else kick(this.#socks.results);
      }, 1);
    });
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

  /** Store pending results and send their acks, then close the sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flushNow(); // sends are synchronous: the acks are with libzmq when this returns
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    clearInterval(this.#waitKicker);
    await Promise.allSettled(this.#loops.map((l) => l.stop()));
    // closeSocket: never close a socket under a waiting receive (see src/io/zmq.ts)
    for (const s of Object.values(this.#socks)) await closeSocket(s);
    await closeSocket(this.#zap);
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
    const rid = _ridKey(frames[0]);
    if (frames.length === 2 && frames[1].length === 0) {
      this.#onConnectionEvent(ch, rid);
      return;
    }
    if (!isUuid(rid) && !_isAssignedRid(rid)) {
      this.#warnOnce(`${ch}:badid`, "dropped a %s message from a non-uuid identity", ch);
      return;
    }
    const uuid = this.#routes[ch].get(rid);
    const who = uuid ?? _ridLabel(rid);
    if (frames.length !== 2) {
      this.#warnOnce(
        `${ch}:${who}:frames`,
        "dropped a malformed %s message from %s: %d frames, expected 1",
        ch,
        who,
        frames.length - 1,
      );
      return;
    }
    const payload = frames[1];
    if (ch === "results" && payload.length === 9 && _dec.decode(payload) === _HEARTBEAT_LITERAL) {
      if (uuid) this.#seen(uuid);
      return;
    }
    if (ch === "commands" && payload.length >= 1 && payload[0] === MessageType.HEARTBEAT) {
      if (uuid) this.#seen(uuid);
      return;
    }
    let msg: PyValue;
    try {
      msg = decodePickle(payload, { maxBytes: _MAX_FRAME });
    } catch (e) {
      this.#warnOnce(
        `${ch}:${who}:pickle`,
        "dropped a malformed %s message from %s: %s",
        ch,
        who,
        (e as Error).message,
      );
      return;
    }
    if (isPlainDict(msg) && "registration" in msg) {
      this.#onRegistration(ch, rid, msg);
      return;
    }
    if (ch !== "results") {
      this.#warnOnce(
        `${ch}:${who}:unexpected`,
        "dropped an unexpected %s message from %s",
        ch,
        who,
      );
      return;
    }
    if (!uuid) {
      this.#warnOnce(
        `results:${who}:untrusted`,
        "dropped results from %s: it has not registered on the results channel with its endpoint_secret",
        who,
      );
      return;
    }
    this.#seen(uuid);
    if (isPlainDict(msg) && "task_id" in msg) this.#onResult(uuid, msg);
    else if (isEPStatusReport(msg)) {
      this.#onStatusReport(uuid, msg);
    } else {
      this.#warnOnce(`results:${uuid}:unknown`, "dropped an unknown results message from %s", uuid);
    }
  }

  /**
   * A connection came up or went down on `ch` (ROUTER_NOTIFY): whatever connection holds the
   * routing id now has not proven anything yet.
   */
  #onConnectionEvent(ch: _Channel, rid: string) {
    const uuid = this.#routes[ch].get(rid);
    if (uuid === undefined) return;
    this.#untrust(ch, rid, uuid, "connection closed");
  }

  #untrust(ch: _Channel, rid: string, uuid: string, why: string) {
    if (this.#routes[ch].get(rid) === uuid) this.#routes[ch].delete(rid);
    const c = this.#conns.get(uuid);
    if (!c || c.route[ch] !== rid) return;
    delete c.route[ch];
    if (ch === "tasks" && c.connected) {
      c.connected = false;
      this.#log.info("forwarder", "endpoint %s disconnected (%s)", uuid, why);
    } else {
      this.#log.debug("forwarder", "endpoint %s: %s connection ended (%s)", uuid, ch, why);
    }
  }

  #seen(uuid: string) {
    const c = this.#conns.get(uuid);
    if (c) c.lastSeen = Date.now() / 1000;
  }

  #onRegistration(ch: _Channel, rid: string, msg: Record<string, PyValue>) {
    const named = String(msg.registration).toLowerCase();
    const fromId = _ridLabel(rid);
    const idIsUuid = isUuid(fromId);
    if (!isUuid(named)) {
      this.#warnOnce(
        `reg:${fromId}:badname`,
        "refused %s registration from %s: it names no endpoint uuid",
        ch,
        fromId,
      );
      return;
    }
    // A uuid-shaped routing id must be the endpoint's own; a libzmq-assigned one (the
    // endpoint's uuid was still held by its old connection) is bound by the secret alone.
    if (idIsUuid && fromId.toLowerCase() !== named) {
      this.#warnOnce(
        `reg:${fromId}:mismatch`,
        "refused %s registration from %s: it names endpoint %s",
        ch,
        fromId,
        named,
      );
      return;
    }
    const uuid = named;
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
      conn = { route: {}, connected: false, lastSeen: 0, wantsAcks: true };
      this.#conns.set(uuid, conn);
    }
    const old = conn.route[ch];
    if (old !== undefined && old !== rid) {
      this.#untrust(ch, old, uuid, "replaced by a new connection");
    }
    conn.route[ch] = rid;
    this.#routes[ch].set(rid, uuid);
    if (!idIsUuid) {
      this.#log.info(
        "forwarder",
        "endpoint %s registered %s under a libzmq-assigned identity",
        uuid,
        ch,
      );
    }
    conn.lastSeen = Date.now() / 1000;
    if (ch === "tasks") {
      conn.wantsAcks = "funcx_endpoint_version" in msg;
      conn.connected = true;
      this.#log.info("forwarder", "endpoint %s connected", uuid);
      // A new connection: everything unfinished is (re-)delivered.
      this.#deliver(uuid);
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
    if (this.#flushQueued || this.#closed) return;
    // A result after a quiet spell is stored (and its long poll answered) at once, before the
    // receive loop waits again; in a burst, on the next macrotask turn (~25 µs, a timer would
    // be ≥ 2 ms), so every result received meanwhile is stored in one transaction.
    if (performance.now() - this.#lastFlush > _QUIET_MS) {
      this.#flushGuarded();
      return;
    }
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      if (!this.#closed) this.#flushGuarded();
    });
  }

  #flushGuarded() {
    try {
      this.#flushNow();
    } catch (e) {
      this.#log.error("forwarder", "storing results failed (will retry): %s", e);
      setTimeout(() => this.#scheduleFlush(), 100);
    } finally {
      this.#lastFlush = performance.now();
    }
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
      if (this.#resultWaiters.size > 0) {
        for (const id of stored) {
          const waiting = this.#resultWaiters.get(id);
          if (!waiting) continue;
          this.#resultWaiters.delete(id);
          for (const w of waiting) w();
        }
      }
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

  /**
   * Send on the endpoint's currently trusted tasks connection, now: with `sendTimeout: 0`
   * zeromq.js queues it in libzmq or fails synchronously (in order, no promise awaited per
   * message). No trusted connection: nothing is sent (the task is re-delivered on the next
   * registration). A failed send ends that connection's trust.
   */
  #send(uuid: string, frame: Uint8Array) {
    const rid = this.#conns.get(uuid)?.route.tasks;
    if (rid === undefined) return;
    const failed = (e: unknown) =>
      this.#untrust("tasks", rid, uuid, (e as { code?: string }).code ?? (e as Error).message);
    try {
      this.#socks.tasks.send([_ridBytes(rid), frame]).catch(failed);
    } catch (e) {
      failed(e); // closed
    }
  }

  /** Send every unfinished task (a new trusted tasks connection). */
  #deliver(uuid: string) {
    const tasks = this.#store.pendingTasks(uuid, false);
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
  }
}

/** A result this long (ms) after the last store is stored at once (see `#scheduleFlush`). */
const _QUIET_MS = 1;

/** A routing id as a map key (latin1: one char per byte, lossless). */
function _ridKey(frame: Uint8Array): string {
  let out = "";
  for (let i = 0; i < frame.length; i++) out += String.fromCharCode(frame[i]);
  return out;
}

/** A routing id libzmq assigned itself (5 bytes, first 0): peers cannot pick these. */
function _isAssignedRid(rid: string): boolean {
  return rid.length === 5 && rid.charCodeAt(0) === 0;
}

/** The routing id bytes of a map key. */
function _ridBytes(rid: string): Uint8Array {
  const out = new Uint8Array(rid.length);
  for (let i = 0; i < rid.length; i++) out[i] = rid.charCodeAt(i);
  return out;
}

/** A routing id for logs: the uuid text, or hex for a libzmq-assigned/binary one. */
function _ridLabel(rid: string): string {
  if (/^[\x20-\x7e]*$/.test(rid) && rid.length > 0) {
    return rid.length > 80 ? rid.slice(0, 80) + "…" : rid;
  }
  let hex = "";
  for (let i = 0; i < Math.min(rid.length, 40); i++) {
    hex += rid.charCodeAt(i).toString(16).padStart(2, "0");
  }
  return `0x${hex}`;
}
