/**
 * The ZeroMQ forwarder of the local service (upstream funcx-forwarder, §6): three ROUTER
 * sockets (tasks, results, commands) in CURVE server mode with a stable keypair, a ZAP
 * handler that only admits CURVE public keys registered with `POST /endpoints`, routing by
 * endpoint identity (= endpoint uuid), heartbeats, task delivery (queued while an endpoint
 * is away, re-delivered on every new connection), results stored in batches and acked
 * with `ResultsAck`, and task status updates from `EPStatusReport`s.
 *
 * Trust is per connection, and bound to the connection's CURVE key. Only CURVE client keys
 * registered with `POST /endpoints` complete the handshake (the sockets' authorizer). A
 * connection is trusted for an endpoint only once its registration message carries that
 * endpoint's `endpoint_secret` (issued at registration) *and* the connection's own CURVE key
 * is the one registered for that endpoint, so a registered key cannot speak for another
 * endpoint. Trust belongs to the connection object, not to its routing id: it ends when that
 * connection ends (the transport's `disconnect` event, after its last message), and tasks
 * are sent on the trusted connection itself, so a new connection that presents the same
 * routing id (an impostor right after the real endpoint dropped, or the endpoint's own
 * reconnect) never inherits trust before it registers.
 *
 * @example
 * ```ts ignore
 * import { Forwarder } from "./forwarder.ts";
 * const fwd = await Forwarder.start({ store, curveDir, host: "127.0.0.1", basePort: 0, heartbeatPeriod: 30, log });
 * console.log(fwd.ports.tasks, fwd.publicCertificate);
 * await fwd.close();
 * ```
 * @module
 */
import { execTimes } from "./task_log.ts";
import type { Logger } from "../daemon/log.ts";
import { decodePickle, isPlainDict, type PyValue } from "../protocol/pickle/mod.ts";
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
import { loadOrCreateServerKeys } from "./curve.ts";
import { z85Encode } from "../protocol/z85.ts";
import { type Peer, Router } from "../io/zmtp/mod.ts";

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
const _CHANNELS: _Channel[] = ["tasks", "results", "commands"];

/** Per-endpoint connection state (in memory). */
interface _Conn {
  /** Per channel: the connection that proved the endpoint_secret with the registered key. */
  route: Partial<Record<_Channel, Peer>>;
  /** Connected (a trusted tasks connection, last send succeeded). */
  connected: boolean;
  lastSeen: number;
  /** Upstream ≥0.3.3 registration (has funcx_endpoint_version) wants ResultsAck. */
  wantsAcks: boolean;
  /** Host and versions from the trusted tasks registration (for the dashboard). */
  platform?: Record<string, string>;
}

/** The forwarder. */
export class Forwarder {
  /** Bound ports. */
  readonly ports: { tasks: number; results: number; commands: number };
  /** ZPL text of the server's public certificate (sent to endpoints at registration). */
  readonly publicCertificate: string;
  #socks: Record<_Channel, Router>;
  #store: ServiceStore;
  #log: Logger;
  #conns = new Map<string, _Conn>();
  /** Per channel: trusted connection (peer id) → endpoint uuid. */
  #routes: Record<_Channel, Map<number, string>> = {
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
  #warned = new Set<string>();
  #heartbeatPeriod: number;
  /** Called with the ids of the results each store stored (the results WebSocket). */
  onResultsStored?: (taskIds: ReadonlySet<string>) => void;
  /** Task id → callers of {@linkcode Forwarder.resultStored} waiting for its result. */
  #resultWaiters = new Map<string, (() => void)[]>();

  private constructor(
    opts: ForwarderOptions,
    keys: { secretKey: string; publicKey: string; publicCertificate: string },
  ) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.ports = { tasks: 0, results: 0, commands: 0 };
    this.publicCertificate = keys.publicCertificate;
    this.#heartbeatPeriod = opts.heartbeatPeriod;
    for (const ep of this.#store.listEndpoints()) if (ep.pubkey) this.#keys.set(ep.pubkey, ep.uuid);
    const socks = {} as Record<_Channel, Router>;
    for (const ch of _CHANNELS) {
      const sock = new Router({
        mandatory: true,
        handover: false,
        // ZMTP heartbeats tear down dead (half-open) connections
        heartbeatInterval: 5000,
        heartbeatTimeout: 15000,
        curveServer: true,
        curveSecretKey: keys.secretKey,
        curvePublicKey: keys.publicKey,
        authorize: (req) => this.#authorize(req.clientKey!, req.address, req.identity),
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
        maxMessageSize: _MAX_FRAME,
      });
      sock.setHandler((frames, peer) => this.#onFrames(ch, frames, peer));
      sock.on("disconnect", (peer, reason) => this.#onDisconnect(ch, peer, reason));
      sock.on("handshakeFailed", (address, e) => {
        if (e.failure !== "unauthorized") {
          this.#log.debug("forwarder", "%s handshake from %s failed: %s", ch, address, e.message);
        }
      });
      socks[ch] = sock;
    }
    this.#socks = socks;
  }

  /** Load/create the keypair and bind the three sockets. */
  static async start(opts: ForwarderOptions): Promise<Forwarder> {
    const keys = await loadOrCreateServerKeys(opts.curveDir);
    const fwd = new Forwarder(opts, keys);
    try {
      for (const [i, ch] of _CHANNELS.entries()) {
        const port = opts.basePort === 0 ? "*" : String(opts.basePort + i);
        const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
        let bound: string;
        try {
          bound = await fwd.#socks[ch].bind(`tcp://${host}:${port}`);
        } catch (e) {
          throw new Error(
            `cannot bind the forwarder ${ch} socket on ${opts.host}:${port}: ${
              (e as Error).message
            }`,
          );
        }
        const m = /:(\d+)$/.exec(bound);
        fwd.ports[ch] = m ? Number(m[1]) : 0;
      }
    } catch (e) {
      await Promise.all(Object.values(fwd.#socks).map((s) => s.close()));
      throw e;
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

  /**
   * A legacy endpoint (re-)registered without a key: forget its old key and trust; the
   * next key that connects for it is bound (see `legacy.ts`).
   */
  legacyEndpointRegistered(uuid: string, oldKey?: string): void {
    if (oldKey && this.#keys.get(oldKey) === uuid) this.#keys.delete(oldKey);
    this.#dropTrust(uuid, "registered again");
  }

  #dropTrust(uuid: string, why: string) {
    const c = this.#conns.get(uuid);
    if (!c) return;
    for (const [ch, peer] of Object.entries(c.route)) {
      this.#untrust(ch as _Channel, peer, uuid, why);
      peer.close(why);
    }
  }

  /** An endpoint was deleted: forget its key and connection. */
  endpointDeleted(uuid: string, pubkey: string): void {
    if (this.#keys.get(pubkey) === uuid) this.#keys.delete(pubkey);
    const c = this.#conns.get(uuid);
    if (c) {
      for (const [ch, peer] of Object.entries(c.route)) {
        this.#routes[ch as _Channel].delete(peer.id);
        peer.close("endpoint deleted");
      }
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

  /** Host, OS and versions the endpoint sent with its trusted tasks registration. */
  platform(uuid: string): Readonly<Record<string, string>> | undefined {
    return this.#conns.get(uuid)?.platform;
  }

  /** Endpoints currently connected. */
  connectedEndpoints(): string[] {
    return [...this.#conns].filter(([, c]) => c.connected).map(([u]) => u);
  }

  /** Store pending results and send their acks, then close the sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flushNow(); // sends are synchronous: the acks are queued when this returns
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    // the acks just queued get up to 2 s to reach their endpoints
    await Promise.all(
      _CHANNELS.map((ch) => this.#socks[ch].close({ linger: ch === "tasks" ? 2000 : 0 })),
    );
  }

  // ------------------------------------------------------------------ admission

  /**
   * The transport's authorizer: only CURVE keys some endpoint registered get in, and (for
   * a legacy endpoint, named by its `Identity`) its bound key or, before the first use, any.
   */
  #authorize(clientKey: Uint8Array, address: string, identity: Uint8Array): true | string {
    const z85 = z85Encode(clientKey);
    if (this.#keys.has(z85)) return true;
    const id = _dec.decode(identity).toLowerCase();
    if (isUuid(id) && this.#store.legacy.admits(id, z85)) return true;
    this.#warnOnce(
      `zap:${z85}`,
      "refused a CURVE client key that no endpoint registered (from %s)",
      address,
    );
    return "unknown CURVE client key";
  }

  // ------------------------------------------------------------------ receive

  #onFrames(ch: _Channel, frames: Uint8Array[], peer: Peer): void {
    try {
      this.#onMessage(ch, frames, peer);
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

  #onMessage(ch: _Channel, frames: Uint8Array[], peer: Peer): void {
    const rid = _ridKey(frames[0]);
    if (!isUuid(rid) && !_isAssignedRid(rid)) {
      this.#warnOnce(`${ch}:badid`, "dropped a %s message from a non-uuid identity", ch);
      return;
    }
    const uuid = this.#routes[ch].get(peer.id);
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
      this.#onRegistration(ch, rid, peer, msg);
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

  /** A connection on `ch` ended: whatever it was trusted for ends with it. */
  #onDisconnect(ch: _Channel, peer: Peer, reason: string) {
    const uuid = this.#routes[ch].get(peer.id);
    if (uuid === undefined) return;
    this.#untrust(ch, peer, uuid, reason);
  }

  #untrust(ch: _Channel, peer: Peer, uuid: string, why: string) {
    if (this.#routes[ch].get(peer.id) === uuid) this.#routes[ch].delete(peer.id);
    const c = this.#conns.get(uuid);
    if (!c || c.route[ch] !== peer) return;
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

  #onRegistration(ch: _Channel, rid: string, peer: Peer, msg: Record<string, PyValue>) {
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
    // A uuid-shaped routing id must be the endpoint's own; a generated one (the endpoint's
    // uuid was still held by its old connection) is bound by its key and secret alone.
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
    const legacy = this.#store.legacy.get(uuid);
    if (legacy) {
      if (!this.#bindLegacy(ch, uuid, rid, peer)) return;
    } else if (!peer.curveKey || z85Encode(peer.curveKey) !== ep.pubkey) {
      this.#warnOnce(
        `reg:${uuid}:${ch}:key`,
        "refused %s registration of %s from %s: the connection's CURVE key is not the one registered for it",
        ch,
        uuid,
        peer.address,
      );
      return;
    }
    const secret = msg.endpoint_secret;
    if (
      !legacy && (typeof secret !== "string" || !safeEqual(sha256Hex(secret), ep.secret_hash))
    ) {
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
    if (old !== undefined && old !== peer) {
      this.#untrust(ch, old, uuid, "replaced by a new connection");
      old.close("replaced by a new connection of the same endpoint");
    }
    conn.route[ch] = peer;
    this.#routes[ch].set(peer.id, uuid);
    if (!idIsUuid) {
      this.#log.info("forwarder", "endpoint %s registered %s under a generated identity", uuid, ch);
    }
    conn.lastSeen = Date.now() / 1000;
    if (ch === "tasks") {
      conn.wantsAcks = "funcx_endpoint_version" in msg;
      conn.platform = _platform(msg);
      conn.connected = true;
      this.#log.info("forwarder", "endpoint %s connected", uuid);
      // A new connection: everything unfinished is (re-)delivered.
      this.#deliver(uuid);
      this.#send(uuid, packHeartbeat(uuid));
    }
  }

  /**
   * A legacy endpoint's registration: its own uuid as identity, and the CURVE key bound on
   * first use (or bound now). False (logged) when refused.
   */
  #bindLegacy(ch: _Channel, uuid: string, rid: string, peer: Peer): boolean {
    const key = peer.curveKey ? z85Encode(peer.curveKey) : "";
    if (rid.toLowerCase() !== uuid || !key) {
      this.#warnOnce(
        `reg:${uuid}:${ch}:legacyid`,
        "refused %s registration of legacy endpoint %s from %s: it must connect with its uuid as identity",
        ch,
        uuid,
        peer.address,
      );
      return false;
    }
    const before = this.#store.legacy.get(uuid)?.boundKey;
    if (!this.#store.legacy.bind(uuid, key)) {
      this.#warnOnce(
        `reg:${uuid}:${ch}:legacykey`,
        "refused %s registration of legacy endpoint %s from %s: another CURVE key was trusted on first use since its registration",
        ch,
        uuid,
        peer.address,
      );
      return false;
    }
    if (before == null) {
      this.#keys.set(key, uuid);
      this.#log.warn(
        "forwarder",
        "legacy endpoint %s: trusting CURVE key %s on first use (from %s)",
        uuid,
        key,
        peer.address,
      );
    }
    return true;
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
    if (msg.times !== undefined) result.times = execTimes(msg.times);
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
    // receive loop waits again; in a burst, on the next macrotask turn (setImmediate: a timer
    // fires milliseconds late), so every result received meanwhile is stored in one transaction.
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
      if (stored.size > 0 && this.onResultsStored) {
        try {
          this.onResultsStored(stored);
        } catch (e) {
          this.#log.error("forwarder", "results listener failed: %s", (e as Error)?.stack ?? e);
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
   * Send on the endpoint's currently trusted tasks connection, now (queued in order on that
   * very connection, no promise per message). No trusted connection: nothing is sent (the
   * task is re-delivered on the next registration). A connection that cannot take it any
   * more loses its trust.
   */
  #send(uuid: string, frame: Uint8Array) {
    const peer = this.#conns.get(uuid)?.route.tasks;
    if (peer === undefined) return;
    if (!peer.trySend([frame])) this.#untrust("tasks", peer, uuid, "connection gone");
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

/** The descriptive string fields of a registration (never its secret). */
function _platform(msg: Record<string, PyValue>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["hname", "os", "python_v", "funcx_endpoint_version", "funcx_endpoint_release"]) {
    const v = msg[k];
    if (typeof v === "string") out[k] = v.slice(0, 200);
  }
  return out;
}

/** A result this long (ms) after the last store is stored at once (see `#scheduleFlush`). */
const _QUIET_MS = 1;

/** A routing id as a map key (latin1: one char per byte, lossless). */
function _ridKey(frame: Uint8Array): string {
  let out = "";
  for (let i = 0; i < frame.length; i++) out += String.fromCharCode(frame[i]);
  return out;
}

/** A routing id the transport generated (5 bytes, first 0): peers cannot pick these. */
function _isAssignedRid(rid: string): boolean {
  return rid.length === 5 && rid.charCodeAt(0) === 0;
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
