/**
 * A test-side forwarder for the endpoint's channel tests: a real HTTP registration route
 * and three real ZeroMQ ROUTER sockets in CURVE server mode, driven step by step (send a
 * task, an ack, a heartbeat request; go silent; fail registrations). The e2e tests use the
 * real local service instead.
 * @module
 */
import { curveKeyPairZ85, Router } from "../../src/io/zmtp/mod.ts";
import {
  packHeartbeat,
  packHeartbeatReq,
  packResultsAck,
  packTask,
} from "../../src/protocol/messages.ts";
import { formatCertificate } from "../../src/protocol/zpl.ts";

export type Channel = "tasks" | "results" | "commands";

export interface Received {
  identity: string;
  payload: Uint8Array;
}

export class TestForwarder {
  readonly received: Record<Channel, Received[]> = { tasks: [], results: [], commands: [] };
  readonly registrations: { body: Record<string, unknown>; time: number }[] = [];
  /** Status codes to answer the next registrations with (then 200). */
  failNext: { status: number; reason: string }[] = [];
  /** When true, no heartbeats are sent. */
  silent = false;
  /** Extra fields of the registration reply (e.g. `allowed_function_hashes`). */
  replyExtra: Record<string, unknown> = {};
  url = "";
  #socks!: Record<Channel, Router>;
  #http!: Deno.HttpServer<Deno.NetAddr>;
  #timer?: ReturnType<typeof setInterval>;
  #connected = new Set<string>();
  #ports = { tasks: 0, results: 0, commands: 0 };
  #cert = "";

  static async start(): Promise<TestForwarder> {
    const f = new TestForwarder();
    const keys = curveKeyPairZ85();
    f.#cert = formatCertificate({ publicKey: keys.publicKey });
    f.#socks = {} as Record<Channel, Router>;
    for (const ch of ["tasks", "results", "commands"] as const) {
      const s = new Router({
        curveServer: true,
        curveSecretKey: keys.secretKey,
        curvePublicKey: keys.publicKey,
        mandatory: false,
        handover: true,
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
      });
      await s.bind("tcp://127.0.0.1:*");
      f.#ports[ch] = Number(/:(\d+)$/.exec(s.lastEndpoint!)![1]);
      f.#socks[ch] = s;
      s.setHandler(([id, payload]) => {
        const identity = new TextDecoder().decode(id);
        f.received[ch].push({ identity, payload: new Uint8Array(payload) });
        if (ch === "tasks") f.#connected.add(identity);
      });
    }
    f.#http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/v2/version") {
        return Response.json({
          api: "0.3.4",
          forwarder: "0.3.4",
          min_sdk_version: "0.2.2",
          min_ep_version: "0.2.1",
        });
      }
      if (path === "/v2/endpoints" && req.method === "POST") {
        const body = await req.json();
        f.registrations.push({ body, time: Date.now() });
        const fail = f.failNext.shift();
        if (fail) {
          return Response.json({ status: "Failed", code: 0, reason: fail.reason }, {
            status: fail.status,
          });
        }
        return Response.json({
          response: true,
          id: 0,
          endpoint_id: body.endpoint_uuid ?? crypto.randomUUID(),
          forwarder_pubkey: f.#cert,
          public_ip: "127.0.0.1",
          tasks_port: f.#ports.tasks,
          results_port: f.#ports.results,
          commands_port: f.#ports.commands,
          endpoint_secret: "fxs_test_secret",
          ...f.replyExtra,
        });
      }
      return new Response("no", { status: 404 });
    });
    f.url = `http://127.0.0.1:${f.#http.addr.port}/v2`;
    f.#timer = setInterval(() => {
      if (f.silent) return;
      for (const id of f.#connected) f.send("tasks", id, packHeartbeat(id));
    }, 100);
    return f;
  }

  /** Queue a message (in order; dropped when no peer holds `identity`). */
  send(ch: Channel, identity: string, payload: Uint8Array): void {
    this.#socks[ch].send([new TextEncoder().encode(identity), payload]).catch(() => {});
  }
  sendTask(identity: string, taskId: string, body = "1\n0"): void {
    this.send("tasks", identity, packTask(taskId, "RAW", body));
  }
  sendAck(identity: string, taskId: string): void {
    this.send("tasks", identity, packResultsAck(taskId));
  }
  sendHeartbeatReq(identity: string): void {
    this.send("commands", identity, packHeartbeatReq());
  }

  async waitFor<T>(what: string, fn: () => T | undefined | false, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const v = fn();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(Object.values(this.#socks).map((s) => s.close()));
    await this.#http.shutdown();
  }
}
