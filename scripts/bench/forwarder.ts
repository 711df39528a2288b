/**
 * A test-side forwarder for the endpoint-only figures: a minimal registration web
 * service (`POST /v2/endpoints`, any bearer token) and three real ZeroMQ ROUTER sockets
 * in CURVE server mode speaking the upstream forwarder protocol (Task, ResultsAck,
 * Heartbeat on the tasks socket; pickled results on the results socket) — with no
 * database behind it, so what is measured is the endpoint alone.
 *
 * @example
 * ```ts
 * import { BenchForwarder } from "./forwarder.ts";
 * const fwd = await BenchForwarder.start();
 * // point an endpoint's service_address at fwd.serviceUrl, start it, then:
 * await fwd.connected(endpointId);
 * const r = await fwd.run(endpointId, 20_000, body);  // push, count results, ack them
 * await fwd.close();
 * ```
 * @module
 */
import * as zmq from "zeromq";
import { decodePickle, isPlainDict } from "../../src/protocol/pickle.ts";
import { packHeartbeat, packResultsAck, packTask } from "../../src/protocol/messages.ts";
import { formatCertificate } from "../../src/protocol/zpl.ts";
import { closeSocket, type ReceiveLoop, receiveLoop } from "../../src/io/zmq.ts";

/** Outcome of {@linkcode BenchForwarder.run}. */
export interface RunResult {
  tasks: number;
  /** Results with a `result` (not an `exception`). */
  ok: number;
  failed: number;
  /** From the first task sent to the last result received. */
  seconds: number;
  tasksPerSecond: number;
  /** The first exception text seen, if any (for the error message). */
  firstError?: string;
}

const _dec = new TextDecoder();
const _enc = new TextEncoder();

/** The forwarder + registration service. Create with {@linkcode BenchForwarder.start}. */
export class BenchForwarder {
  /** Web service base URL (`http://127.0.0.1:PORT/v2`). */
  readonly serviceUrl: string;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #socks: { tasks: zmq.Router; results: zmq.Router; commands: zmq.Router };
  /** Endpoint id → its routing identity, once registered on the tasks socket. */
  #identities = new Map<string, Uint8Array>();
  #waiting = new Map<string, PromiseWithResolvers<void>>();
  /** Task id → the run waiting for its result. */
  #pending = new Map<string, (ok: boolean, error?: string) => void>();
  #closed = false;
  #zap: zmq.Router | undefined;
  #polls: ReceiveLoop[] = [];
  #queue: Uint8Array[][] = [];
  #pumping = false;

  private constructor(
    serviceUrl: string,
    server: Deno.HttpServer<Deno.NetAddr>,
    socks: { tasks: zmq.Router; results: zmq.Router; commands: zmq.Router },
  ) {
    this.serviceUrl = serviceUrl;
    this.#server = server;
    this.#socks = socks;
  }

  /**
   * Bind the three sockets and the HTTP server on free loopback ports.
   *
   * @example
   * ```ts
   * const fwd = await BenchForwarder.start();
   * ```
   */
  static async start(): Promise<BenchForwarder> {
    const keys = zmq.curveKeyPair();
    const context = new zmq.Context();
    // libzmq only runs the CURVE handshake to completion with a ZAP handler present
    const zap = new zmq.Router({ context, linger: 0, sendTimeout: 0 });
    await zap.bind("inproc://zeromq.zap.01");
    const mk = () =>
      new zmq.Router({
        context,
        zapDomain: "bench",
        curveServer: true,
        curvePublicKey: keys.publicKey,
        curveSecretKey: keys.secretKey,
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
        linger: 0,
        sendTimeout: 0,
        mandatory: false,
      });
    const socks = { tasks: mk(), results: mk(), commands: mk() };
    const ports: Record<string, number> = {};
    for (const [name, s] of Object.entries(socks)) {
      await s.bind("tcp://127.0.0.1:*");
      ports[name] = Number(/:(\d+)$/.exec(s.lastEndpoint ?? "")?.[1]);
    }
    const pubCert = formatCertificate({ publicKey: keys.publicKey });
    const listening = Promise.withResolvers<Deno.NetAddr>();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: (a) => listening.resolve(a as Deno.NetAddr),
    }, async (req) => {
      const url = new URL(req.url);
      if (req.method === "POST" && url.pathname === "/v2/endpoints") {
        const body = await req.json() as { endpoint_uuid?: string };
        const id = body.endpoint_uuid ?? crypto.randomUUID();
        return Response.json({
          endpoint_id: id,
          forwarder_pubkey: pubCert,
          public_ip: "127.0.0.1",
          tasks_port: ports.tasks,
          results_port: ports.results,
          commands_port: ports.commands,
        });
      }
      if (url.pathname === "/v2/version") {
        return Response.json({
          api: "0.3.4",
          forwarder: "0.3.4",
          min_sdk_version: "0.3.0",
          min_ep_version: "0.3.0",
        });
      }
      return Response.json({ reason: `no route ${req.method} ${url.pathname}` }, { status: 404 });
    });
    const addr = await listening.promise;
    const fwd = new BenchForwarder(`http://127.0.0.1:${addr.port}/v2`, server, socks);
    fwd.#zap = zap;
    // src/io/zmq.ts: woken by the socket, with the Deno missed-wake-up repair
    fwd.#polls.push(
      receiveLoop(socks.tasks, (f) => fwd.#onTasksMessage(f)),
      receiveLoop(socks.results, (f) => fwd.#onResultsMessage(f)),
      receiveLoop(socks.commands, () => {}),
      receiveLoop(zap, (f) => fwd.#onZap(f)),
    );
    return fwd;
  }

  /**
   * Push `n` tasks (all the same `body`, fresh task ids) as fast as the socket takes
   * them, and resolve once every result came back (each one is acked, like the real
   * forwarder does).
   *
   * @example
   * ```ts
   * const r = await fwd.run(endpointId, 2000, noopTaskBody(0));
   * ```
   */
  async run(endpointId: string, n: number, body: string, timeoutMs = 600_000): Promise<RunResult> {
    const identity = this.#identity(endpointId);
    const bodyBytes = _enc.encode(body);
    const ids = new Set<string>();
    const msgs: Uint8Array[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const id = crypto.randomUUID();
      ids.add(id);
      msgs[i] = packTask(id, "RAW", bodyBytes);
    }
    let ok = 0;
    let failed = 0;
    let firstError: string | undefined;
    const all = Promise.withResolvers<void>();
    const onResult = (taskId: string, good: boolean, err?: string) => {
      if (!ids.delete(taskId)) return;
      this.#pending.delete(taskId);
      if (good) ok++;
      else {
        failed++;
        firstError ??= err;
      }
      if (ids.size === 0) all.resolve();
    };
    for (const id of ids) this.#pending.set(id, (good, err) => onResult(id, good, err));
    const timer = setTimeout(
      () =>
        all.reject(new Error(`bench: ${ids.size} of ${n} results missing after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const t0 = performance.now();
    for (let i = 0; i < n; i++) this.#queue.push([identity, msgs[i]]);
    this.#pump();
    try {
      await all.promise;
    } finally {
      clearTimeout(timer);
      for (const id of ids) this.#pending.delete(id);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { tasks: n, ok, failed, seconds, tasksPerSecond: n / seconds, firstError };
  }

  /**
   * Push `n` tasks without waiting for results (memory-with-a-queue measurement).
   *
   * @example
   * ```ts
   * await fwd.push(endpointId, 20_000, noopTaskBody(60_000));
   * ```
   */
  async push(endpointId: string, n: number, body: string): Promise<void> {
    const identity = this.#identity(endpointId);
    const bodyBytes = _enc.encode(body);
    for (let i = 0; i < n; i++) {
      this.#queue.push([identity, packTask(crypto.randomUUID(), "RAW", bodyBytes)]);
    }
    await this.#pump();
  }

  /**
   * Resolves once the endpoint `endpointId` registered on the tasks socket.
   *
   * @example
   * ```ts
   * await fwd.connected(endpointId);
   * ```
   */
  connected(endpointId: string): Promise<void> {
    return this.#waiter(endpointId).promise;
  }

  #waiter(id: string): PromiseWithResolvers<void> {
    let w = this.#waiting.get(id);
    if (!w) {
      w = Promise.withResolvers<void>();
      this.#waiting.set(id, w);
    }
    return w;
  }

  #identity(endpointId: string): Uint8Array {
    const identity = this.#identities.get(endpointId);
    if (!identity) {
      throw new Error(`bench: endpoint ${endpointId} is not connected to the bench forwarder`);
    }
    return identity;
  }

  /** Close the sockets and the HTTP server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled(this.#polls.map((p) => p.stop()));
    await Promise.all(Object.values(this.#socks).map((s) => closeSocket(s)));
    if (this.#zap) await closeSocket(this.#zap);
    await this.#server.shutdown();
  }

  #send(frames: Uint8Array[]): void {
    this.#queue.push(frames);
    this.#pump();
  }

  /** One sender for the tasks socket (zeromq.js allows one pending send per socket). */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    const sock = this.#socks.tasks;
    try {
      let i = 0;
      while (!this.#closed && i < this.#queue.length) {
        await sock.send(this.#queue[i++]);
        if (i >= 4096) {
          this.#queue.splice(0, i);
          i = 0;
        }
      }
      this.#queue.splice(0, i);
    } catch (e) {
      if (!this.#closed) throw e;
    } finally {
      this.#pumping = false;
    }
  }

  /** ZAP (over a ROUTER): admit every CURVE client — the benchmark has one peer. */
  #onZap(frames: Uint8Array[]): Promise<void> {
    const [peer, empty, version, requestId] = frames;
    return this.#zap!.send([peer, empty, version, requestId, "200", "OK", "bench", ""]);
  }

  #onTasksMessage(frames: Uint8Array[]): void {
    const [identity, payload] = frames;
    // the first message on the tasks socket is the registration (platform dict)
    let msg;
    try {
      msg = decodePickle(payload);
    } catch {
      return;
    }
    if (isPlainDict(msg) && "registration" in msg) {
      const id = _dec.decode(identity);
      this.#identities.set(id, identity);
      this.#send([identity, packHeartbeat(id)]);
      this.#waiter(id).resolve();
    }
  }

  #onResultsMessage(frames: Uint8Array[]): void {
    const [identity, payload] = frames;
    if (payload.length === 9 && _dec.decode(payload) === "HEARTBEAT") return;
    let msg;
    try {
      msg = decodePickle(payload);
    } catch {
      return;
    }
    if (!isPlainDict(msg) || typeof msg.task_id !== "string") return;
    const taskId = msg.task_id;
    this.#send([identity, packResultsAck(taskId)]);
    const ok = typeof msg.result === "string";
    this.#pending.get(taskId)?.(
      ok,
      ok ? undefined : String(msg.exception ?? "no result").slice(0, 300),
    );
  }
}
