/**
 * The results WebSocket of the funcX 0.3.x SDK (`FuncXClient(asynchronous=True)`,
 * `FuncXExecutor`): `ws(s)://<service>/ws/v2/`. The client authenticates in the handshake
 * (`Authorization: Bearer <token>`, as the HTTP API; 401 otherwise), then sends task group
 * ids as text messages. For each group the service pushes every finished task of that user
 * in that group as one JSON text message, the same record upstream's websocket service sent:
 * `{"task_id", "status", "result", "completion_t", "exception"}` (`result`/`exception` null
 * when absent, `reason` when both are).
 *
 * Each result is handed out once: it is deleted as it is sent, like `GET /tasks/<id>` does,
 * so a client that reconnects and subscribes again gets what it has not had yet (results
 * stored while it was away, or while the service was down) and nothing twice. Another user
 * subscribing to the same group id gets none of these results.
 *
 * @example
 * ```ts ignore
 * import { ResultsSocketHub } from "./websocket.ts";
 * const hub = new ResultsSocketHub({ store, auth, log });
 * forwarder.onResultsStored = (ids) => hub.resultsStored(ids);
 * // in the HTTP handler: if (path === "/ws/v2/") return hub.handle(req);
 * ```
 * @module
 */
import type { Logger } from "../daemon/log.ts";
import type { AuthServer } from "./auth.ts";
import { ApiError, ErrorCode, isUuid } from "./errors.ts";
import { json } from "./http.ts";
import { FINAL_STATES, type ServiceStore, type TaskRow } from "./store.ts";

/** Paths the SDK connects to (its default is `.../ws/v2/`). */
export const RESULTS_WS_PATHS: readonly string[] = ["/ws/v2/", "/ws/v2"];

/** Options of {@linkcode ResultsSocketHub}. */
export interface ResultsSocketHubOptions {
  /** The service database. */
  store: ServiceStore;
  /** Authenticates the handshake (and each subscription: a revoked token ends the socket). */
  auth: AuthServer;
  /** Logger. */
  log: Logger;
}

interface _Conn {
  socket: WebSocket;
  userId: number;
  username: string;
  /** The handshake's Authorization header, checked again on each subscription. */
  authorization: string;
  groups: Set<string>;
}

/**
 * The JSON record the SDK's `WebSocketPollingTask` reads for one finished task.
 *
 * @example
 * ```ts ignore
 * import { resultMessage } from "./websocket.ts";
 * resultMessage({ uuid: "t", status: "success", result: "00\n...", exception: null, completion_t: 1 } as TaskRow);
 * ```
 */
export function resultMessage(t: TaskRow): Record<string, unknown> {
  const rec: Record<string, unknown> = {
    task_id: t.uuid,
    status: t.status,
    result: t.result,
    completion_t: t.completion_t === null ? null : String(t.completion_t),
    exception: t.exception,
  };
  // the SDK reads `reason` when neither is set
  if (!t.result && !t.exception) rec.reason = "The task failed without a result";
  return rec;
}

/** Every results WebSocket of the service. */
export class ResultsSocketHub {
  #store: ServiceStore;
  #auth: AuthServer;
  #log: Logger;
  #conns = new Set<_Conn>();
  /** task group id → sockets subscribed to it. */
  #groups = new Map<string, Set<_Conn>>();
  #closed = false;

  constructor(opts: ResultsSocketHubOptions) {
    this.#store = opts.store;
    this.#auth = opts.auth;
    this.#log = opts.log;
  }

  /** Number of open sockets. */
  get size(): number {
    return this.#conns.size;
  }

  /** Answer a request on {@linkcode RESULTS_WS_PATHS}: authenticate, then upgrade. */
  handle(req: Request): Response {
    try {
      if (this.#closed) {
        throw new ApiError(ErrorCode.InternalError, "The service is stopping", [], 503);
      }
      if (req.method !== "GET" || req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        throw new ApiError(
          ErrorCode.RequestMalformed,
          "This is the results WebSocket: connect with a WebSocket client (Upgrade: websocket)",
          [],
          426,
        );
      }
      const user = this.#auth.authenticate(req);
      // read before the upgrade: the request is closed after it
      const authorization = req.headers.get("authorization") ?? "";
      const { socket, response } = Deno.upgradeWebSocket(req);
      const conn: _Conn = {
        socket,
        userId: user.userId,
        username: user.username,
        authorization,
        groups: new Set(),
      };
      socket.onopen = () => {
        if (this.#closed) socket.close(1001, "service stopping");
        else this.#conns.add(conn);
      };
      socket.onmessage = (ev) => this.#onMessage(conn, ev.data);
      socket.onclose = () => this.#drop(conn);
      socket.onerror = () => this.#drop(conn);
      return response;
    } catch (e) {
      if (e instanceof ApiError) return json(e.record(), e.httpStatus);
      throw e;
    }
  }

  /** The forwarder stored results for these tasks: push those somebody listens for. */
  resultsStored(taskIds: Iterable<string>): void {
    if (this.#groups.size === 0) return;
    const rows = this.#store.getTasks([...taskIds]);
    const sent: string[] = [];
    for (const t of rows.values()) {
      if (!FINAL_STATES.has(t.status)) continue;
      const subs = this.#groups.get(t.task_group_id);
      if (!subs) continue;
      for (const c of subs) {
        if (c.userId === t.user_id && this.#send(c, t)) {
          sent.push(t.uuid);
          break;
        }
      }
    }
    this.#store.handedOut(sent);
  }

  /** Close every socket (1001 going away): clients reconnect to the next service. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#conns]) {
      try {
        c.socket.close(1001, "service stopping");
      } catch { /* already closing */ }
      this.#drop(c);
    }
  }

  #onMessage(c: _Conn, data: unknown): void {
    const group = typeof data === "string" ? data.trim().toLowerCase() : "";
    if (!isUuid(group)) {
      this.#log.warn(
        "ws",
        "%s sent a message that is not a task group id; ignored",
        c.username,
      );
      return;
    }
    try {
      this.#auth.authenticate(
        new Request("http://results-socket/", { headers: { authorization: c.authorization } }),
      );
    } catch {
      this.#log.info("ws", "%s's token is no longer valid; closing its results socket", c.username);
      c.socket.close(1008, "token no longer valid");
      this.#drop(c);
      return;
    }
    if (!c.groups.has(group)) {
      c.groups.add(group);
      let subs = this.#groups.get(group);
      if (!subs) this.#groups.set(group, subs = new Set());
      subs.add(c);
    }
    // what finished before the subscription (or while this client was away)
    const sent: string[] = [];
    for (const t of this.#store.finishedTasksInGroup(c.userId, group)) {
      if (!this.#send(c, t)) break;
      sent.push(t.uuid);
    }
    this.#store.handedOut(sent);
  }

  /** Send one result; false when the socket is not open (the result stays stored). */
  #send(c: _Conn, t: TaskRow): boolean {
    if (c.socket.readyState !== WebSocket.OPEN) return false;
    try {
      c.socket.send(JSON.stringify(resultMessage(t)));
      return true;
    } catch (e) {
      this.#log.debug("ws", "send to %s failed: %s", c.username, (e as Error).message);
      return false;
    }
  }

  #drop(c: _Conn): void {
    this.#conns.delete(c);
    for (const g of c.groups) {
      const subs = this.#groups.get(g);
      subs?.delete(c);
      if (subs?.size === 0) this.#groups.delete(g);
    }
    c.groups.clear();
  }
}
