/**
 * Child process of `deno task bench --scale`: many simulated endpoints in one process, each
 * the three CURVE {@linkcode Dealer}s of a real endpoint (tasks, results, commands; client
 * keys registered through the service's HTTP API) speaking the upstream endpoint protocol
 * to the service's forwarder: the registration messages with the `endpoint_secret`,
 * `b"HEARTBEAT"` on the results channel every period, and for every Task message its
 * result dict (as the endpoint relays it from a worker) right away, kept until acked and
 * sent again on a new connection (registration first on every connection). Driven over `_rpc.ts`.
 *
 * @example
 * ```sh
 * deno run -A scripts/bench/scale_endpoints.ts
 * ```
 * @module
 */
import { cpuUsage } from "node:process";
import { Dealer, SocketClosedError } from "../../src/io/zmtp/mod.ts";
import {
  encodeRegistration,
  encodeResult,
  MessageType,
  packHeartbeat,
  unpackMessage,
} from "../../src/protocol/messages.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { parseCertificate } from "../../src/protocol/zpl.ts";
import { serveRpc } from "./_rpc.ts";

/** What the benchmark registered for one endpoint (the `POST /endpoints` reply + keys). */
export interface SimEndpointRegistration {
  endpoint_id: string;
  endpoint_secret: string;
  forwarder_pubkey: string;
  public_ip: string;
  tasks_port: number;
  results_port: number;
  commands_port: number;
  keys: { publicKey: string; secretKey: string };
}

const _NONE = serializeData(null);
const _HEARTBEAT = new TextEncoder().encode("HEARTBEAT");

class _SimEndpoint {
  tasks: Dealer;
  results: Dealer;
  commands: Dealer;
  accepted = false;
  done = 0;
  connects = 0;
  disconnects = 0;
  #unacked = new Map<string, Uint8Array>();

  constructor(readonly reg: SimEndpointRegistration) {
    const opts = {
      routingId: reg.endpoint_id,
      curveServerKey: parseCertificate(reg.forwarder_pubkey).publicKey,
      curvePublicKey: reg.keys.publicKey,
      curveSecretKey: reg.keys.secretKey,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
    };
    this.tasks = new Dealer(opts);
    this.results = new Dealer(opts);
    this.commands = new Dealer(opts);
  }

  start(): void {
    const r = this.reg;
    const host = r.public_ip;
    this.tasks.connect(`tcp://${host}:${r.tasks_port}`);
    this.results.connect(`tcp://${host}:${r.results_port}`);
    this.commands.connect(`tcp://${host}:${r.commands_port}`);
    const secret = { endpoint_secret: r.endpoint_secret };
    const tasksReg = encodeRegistration({
      registration: r.endpoint_id,
      funcx_endpoint_version: "0.3.4",
      python_v: "3.11",
      os: "Linux",
      ...secret,
    });
    const reg = encodeRegistration({ registration: r.endpoint_id, ...secret });
    // registration on every (re)connection, as the endpoint does: trust is per connection
    for (
      const [sock, body] of [[this.tasks, tasksReg], [this.results, reg], [
        this.commands,
        reg,
      ]] as const
    ) {
      sock.on("connect", (peer) => {
        this.connects++;
        // first on the new connection, before anything still waiting to be sent
        peer.trySend([body]);
        // results not acked may have died with the old connection: send them again, as the
        // endpoint does from its unacknowledged-results store
        if (sock === this.results && this.connects > 3) {
          for (const m of this.#unacked.values()) this.#send(this.results, m);
        }
      });
      sock.on("disconnect", (_p, why) => {
        this.disconnects++;
        if (sock === this.tasks) this.accepted = false;
        if (this.disconnects <= 3) console.error(`sim endpoint ${r.endpoint_id}: ${why}`);
      });
    }
    this.tasks.setHandler(([frame]) => this.#onTask(frame));
    this.results.setHandler(() => {}); // results acks
    this.commands.setHandler(([frame]) => {
      if (frame.length === 1 && frame[0] === MessageType.HEARTBEAT_REQ) {
        this.#send(this.commands, packHeartbeat(r.endpoint_id));
      }
    });
  }

  #onTask(frame: Uint8Array): void {
    const m = unpackMessage(frame);
    if (m.type === MessageType.HEARTBEAT) {
      this.accepted = true;
      return;
    }
    if (m.type === MessageType.RESULTS_ACK) {
      this.#unacked.delete(m.taskId);
      return;
    }
    if (m.type !== MessageType.TASK) return;
    this.done++;
    const r = encodeResult({ task_id: m.taskId, container_id: m.containerId, result: _NONE });
    this.#unacked.set(m.taskId, r);
    this.#send(this.results, r);
  }

  beat(): void {
    if (this.accepted) this.#send(this.results, _HEARTBEAT);
  }

  #send(sock: Dealer, body: Uint8Array): void {
    sock.send([body]).catch((e) => {
      if (!(e instanceof SocketClosedError)) {
        console.error(`sim endpoint ${this.reg.endpoint_id}:`, e);
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.tasks.close(), this.results.close(), this.commands.close()]);
  }
}

let endpoints: _SimEndpoint[] = [];
let beat: ReturnType<typeof setInterval> | undefined;

if (import.meta.main) {
  await serveRpc({
    connect: (a) => {
      for (const r of a.registrations as SimEndpointRegistration[]) {
        const e = new _SimEndpoint(r);
        endpoints.push(e);
        e.start();
      }
      clearInterval(beat);
      beat = setInterval(() => {
        for (const e of endpoints) e.beat();
      }, (a.hbPeriod as number) * 1000);
      return { n: endpoints.length };
    },
    accepted: () => ({
      n: endpoints.filter((e) => e.accepted).length,
      connects: endpoints.reduce((n, e) => n + e.connects, 0),
      disconnects: endpoints.reduce((n, e) => n + e.disconnects, 0),
      tasks: endpoints.reduce((n, e) => n + e.done, 0),
    }),
    cpu: () => {
      const u = cpuUsage();
      return { cpuUs: u.user + u.system };
    },
    close: async () => {
      clearInterval(beat);
      await Promise.all(endpoints.map((e) => e.close()));
      endpoints = [];
    },
    exit: async () => {
      clearInterval(beat);
      await Promise.all(endpoints.map((e) => e.close()));
    },
  });
}
