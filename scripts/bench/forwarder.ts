/**
 * A test-side forwarder for the endpoint-only figures: a minimal registration web
 * service (`POST /v2/endpoints`, any bearer token) and three real ZeroMQ ROUTER sockets
 * in CURVE server mode speaking the upstream forwarder protocol (Task, ResultsAck,
 * Heartbeat on the tasks socket; pickled results on the results socket) — with no
 * database behind it, so what is measured is the endpoint alone.
 *
 * @example
 * ```ts ignore
 * import { BenchForwarder } from "./forwarder.ts";
 * const fwd = await BenchForwarder.start();
 * // point an endpoint's service_address at fwd.serviceUrl, start it, then:
 * await fwd.connected(endpointId);
 * const r = await fwd.run(endpointId, 20_000, body);  // push, count results, ack them
 * await fwd.close();
 * ```
 * @module
 */
import { decodePickle, isPlainDict } from "../../src/protocol/pickle/mod.ts";
import { packHeartbeat, packResultsAck, packTask } from "../../src/protocol/messages.ts";
import { formatCertificate } from "../../src/protocol/zpl.ts";
import { curveKeyPairZ85, Router } from "../../src/io/zmtp/mod.ts";

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
  #socks: { tasks: Router; results: Router; commands: Router };
  /** Endpoint id → its routing identity, once registered on the tasks socket. */
  #identities = new Map<string, Uint8Array>();
  #waiting = new Map<string, PromiseWithResolvers<void>>();
  /** Task id → the run waiting for its result. */
  #pending = new Map<string, (ok: boolean, error?: string) => void>();
  #closed = false;

  private constructor(
    serviceUrl: string,
    server: Deno.HttpServer<Deno.NetAddr>,
    socks: { tasks: Router; results: Router; commands: Router },
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
    const keys = curveKeyPairZ85();
    const mk = () =>
      new Router({
        curveServer: true,
        curvePublicKey: keys.publicKey,
        curveSecretKey: keys.secretKey,
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
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
    socks.tasks.setHandler((f) => fwd.#onTasksMessage(f));
    socks.results.setHandler((f) => fwd.#onResultsMessage(f));
    socks.commands.setHandler(() => {});
    return fwd;
  }

  /**
   * Push `n` tasks (all the same `body`, fresh task ids) as fast as the socket takes
   * them, and resolve once every result came back (each one is acked, like the real
   * forwarder does).
   *
   * @example
   * ```ts ignore
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
    for (let i = 0; i < n; i++) this.#send([identity, msgs[i]]);
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
   * ```ts ignore
   * await fwd.push(endpointId, 20_000, noopTaskBody(60_000));
   * ```
   */
  async push(endpointId: string, n: number, body: string): Promise<void> {
    const identity = this.#identity(endpointId);
    const bodyBytes = _enc.encode(body);
    let last: Promise<void> = Promise.resolve();
    for (let i = 0; i < n; i++) {
      last = this.#socks.tasks.send([identity, packTask(crypto.randomUUID(), "RAW", bodyBytes)]);
    }
    await last;
  }

  /**
   * Resolves once the endpoint `endpointId` registered on the tasks socket.
   *
   * @example
   * ```ts ignore
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
    await Promise.all(Object.values(this.#socks).map((s) => s.close()));
    await this.#server.shutdown();
  }

  #send(frames: Uint8Array[]): void {
    this.#socks.tasks.send(frames).catch((e) => {
      if (!this.#closed) console.error(`bench forwarder: send failed: ${e}`);
    });
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
