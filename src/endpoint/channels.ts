/**
 * The three ZeroMQ channels to the forwarder (upstream §6): DEALER sockets with the
 * endpoint uuid as routing id, CURVE client keys, LINGER 0, unlimited HWM, connected to
 * the ports of the registration reply. The registration messages go first on each
 * socket; afterwards the tasks channel delivers Task / Heartbeat / ResultsAck, the
 * commands channel HeartbeatReq, and results go out on the results channel in order.
 *
 * @example
 * ```ts
 * import { ForwarderChannels } from "./channels.ts";
 * const ch = await ForwarderChannels.open({ endpointId, host: "127.0.0.1",
 *   ports: { tasks: 55001, results: 55002, commands: 55003 }, serverKey, keys,
 *   registration: { tasks: platformPickle, results: regPickle, commands: regPickle },
 *   handlers, log });
 * ch.sendResults([pickledResult]);
 * await ch.close();
 * ```
 * @module
 */
import * as zmq from "zeromq";
import type { Logger } from "../daemon/log.ts";
import { MessageType, packHeartbeat, unpackMessage } from "../protocol/messages.ts";
import { closeSocket, receiveLoop, SendQueue, sendWhenReady } from "../io/zmq.ts";

/** Channel names. */
export type Channel = "tasks" | "results" | "commands";

/** Callbacks of {@linkcode ForwarderChannels}; all are synchronous and must not throw. */
export interface ChannelHandlers {
  /** A Task message (`raw` is the whole packed message, as the interchange wants it). */
  onTask(taskId: string, containerId: string, raw: Uint8Array): void;
  /** `ResultsAck(task_id)`. */
  onAck(taskId: string): void;
  /** `Heartbeat(endpoint_id)` on the tasks channel. */
  onHeartbeat(endpointId: string): void;
  /** Anything arrived on the tasks channel (liveness). */
  onTraffic(): void;
  /** A message that could not be decoded or is not expected (logged by the caller). */
  onBadMessage(channel: Channel, problem: string): void;
  /** A connection of a channel was lost or refused (the forwarder went away). */
  onDisconnect(channel: Channel, event: string): void;
}

/** Options of {@linkcode ForwarderChannels.open}. */
export interface ChannelOptions {
  endpointId: string;
  host: string;
  ports: { tasks: number; results: number; commands: number };
  /** Forwarder's Z85 public key (from `server.key`). */
  serverKey: string;
  /** This endpoint's Z85 keypair. */
  keys: { publicKey: string; secretKey: string };
  /** Pickled registration messages, sent first on each channel. */
  registration: Record<Channel, Uint8Array>;
  handlers: ChannelHandlers;
  log: Logger;
}

const _HEARTBEAT_LITERAL = new TextEncoder().encode("HEARTBEAT");
const _MAX_MESSAGE = 256 * 1024 * 1024;

/** One connected set of the three sockets. Create with {@linkcode ForwarderChannels.open}. */
export class ForwarderChannels {
  #socks: Record<Channel, zmq.Dealer>;
  #opts: ChannelOptions;
  #out: SendQueue;
  #closed = false;
  #loops: Promise<void>[] = [];

  private constructor(opts: ChannelOptions, socks: Record<Channel, zmq.Dealer>) {
    this.#opts = opts;
    this.#socks = socks;
    // results leave in order without an await per message; nothing is given up while open
    this.#out = new SendQueue(socks.results, {
      giveUpMs: Number.POSITIVE_INFINITY,
      onDrop: (why) => {
        if (this.#closed) return; // LINGER 0: callers keep what was not acknowledged
        opts.log.warn("forwarder", "sending on the results channel failed: %s", why);
        opts.handlers.onDisconnect("results", `send failed: ${why}`);
      },
    });
  }

  /**
   * Create the sockets, connect them and queue the registration messages.
   *
   * @example
   * ```ts
   * const ch = await ForwarderChannels.open(opts);
   * ```
   */
  static async open(opts: ChannelOptions): Promise<ForwarderChannels> {
    const host = opts.host.includes(":") && !opts.host.startsWith("[")
      ? `[${opts.host}]`
      : opts.host;
    const socks = {} as Record<Channel, zmq.Dealer>;
    const names: Channel[] = ["tasks", "results", "commands"];
    try {
      for (const ch of names) {
        const s = new zmq.Dealer({
          routingId: opts.endpointId,
          curveServerKey: opts.serverKey,
          curvePublicKey: opts.keys.publicKey,
          curveSecretKey: opts.keys.secretKey,
          linger: 0,
          // sends never wait inside libzmq; receives wake on the socket (see src/io/zmq.ts)
          sendTimeout: 0,
          sendHighWaterMark: 0,
          receiveHighWaterMark: 0,
          maxMessageSize: _MAX_MESSAGE,
        });
        socks[ch] = s;
        s.connect(`tcp://${host}:${opts.ports[ch]}`);
      }
    } catch (e) {
      for (const s of Object.values(socks)) s.close();
      throw new Error(`cannot open the forwarder channels to ${host}: ${(e as Error).message}`);
    }
    const c = new ForwarderChannels(opts, socks);
    for (const ch of names) {
      const ev = socks[ch].events;
      const report = (name: string) => () => {
        if (!c.#closed) opts.handlers.onDisconnect(ch, name);
      };
      ev.on("disconnect", report("disconnect"));
      ev.on("handshake:error:auth", report("handshake refused (CURVE key not accepted)"));
      ev.on("handshake:error:protocol", report("handshake protocol error"));
    }
    // Registration first, on every socket.
    await sendWhenReady(socks.tasks, [opts.registration.tasks]);
    await sendWhenReady(socks.commands, [opts.registration.commands]);
    c.#out.send([opts.registration.results]);
    c.#loops.push(c.#tasksLoop(), c.#commandsLoop());
    return c;
  }

  /** Queue pickled results (or status reports) on the results channel, in order. */
  sendResults(messages: Uint8Array[]): void {
    if (this.#closed) return;
    for (const m of messages) this.#out.send([m]);
  }

  /** Send `b"HEARTBEAT"` on the results channel. */
  sendHeartbeat(): void {
    this.sendResults([_HEARTBEAT_LITERAL]);
  }

  /** Messages queued but not yet handed to ZeroMQ. */
  get backlog(): number {
    return this.#out.pendingSends;
  }

  /** Close the sockets (LINGER 0: queued messages are dropped; callers keep them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(Object.values(this.#socks).map((s) => closeSocket(s)));
    await Promise.allSettled(this.#loops);
  }

  async #tasksLoop(): Promise<void> {
    const h = this.#opts.handlers;
    try {
      await this.#loop(this.#socks.tasks, (frames) => {
        h.onTraffic();
        if (frames.length !== 1) {
          h.onBadMessage("tasks", `${frames.length} frames, expected 1`);
          return;
        }
        let m;
        try {
          m = unpackMessage(frames[0]);
        } catch (e) {
          h.onBadMessage("tasks", (e as Error).message);
          return;
        }
        switch (m.type) {
          case MessageType.TASK:
            h.onTask(m.taskId, m.containerId, m.raw);
            break;
          case MessageType.RESULTS_ACK:
            h.onAck(m.taskId);
            break;
          case MessageType.HEARTBEAT:
            h.onHeartbeat(m.endpointId);
            break;
          default:
            h.onBadMessage("tasks", `unexpected message type ${m.type}`);
        }
      });
    } catch (e) {
      if (!this.#closed) h.onDisconnect("tasks", `receive failed: ${(e as Error).message}`);
    }
  }

  async #commandsLoop(): Promise<void> {
    const h = this.#opts.handlers;
    const sock = this.#socks.commands;
    try {
      await this.#loop(sock, async (frames) => {
        let m;
        try {
          m = unpackMessage(frames[0] ?? new Uint8Array());
        } catch (e) {
          h.onBadMessage("commands", (e as Error).message);
          await sendWhenReady(sock, [new Uint8Array()], { cancelled: () => this.#closed });
          return;
        }
        if (m.type === MessageType.HEARTBEAT_REQ) {
          await sendWhenReady(sock, [packHeartbeat(this.#opts.endpointId)], {
            cancelled: () => this.#closed,
          });
        } else {
          h.onBadMessage("commands", `unsupported command type ${m.type}`);
          await sendWhenReady(sock, [new Uint8Array()], { cancelled: () => this.#closed });
        }
      });
    } catch (e) {
      if (!this.#closed) h.onDisconnect("commands", `receive failed: ${(e as Error).message}`);
    }
  }

  /** Receive on `sock` until it is closed; a receive error rejects (reported by the caller). */
  async #loop(
    sock: zmq.Dealer,
    onMessage: (frames: Uint8Array[]) => void | Promise<void>,
  ): Promise<void> {
    let failure: unknown;
    const loop = receiveLoop(sock, onMessage, { onError: (e) => failure = e });
    await loop.done;
    if (failure !== undefined) throw failure;
  }
}
