/**
 * The three ZeroMQ channels to the forwarder (upstream §6): DEALER sockets with the
 * endpoint uuid as routing id, CURVE client keys, LINGER 0, unlimited HWM, connected to
 * the ports of the registration reply. The registration messages go first on each
 * socket; afterwards the tasks channel delivers Task / Heartbeat / ResultsAck, the
 * commands channel HeartbeatReq, and results go out on the results channel in order.
 *
 * @example
 * ```ts ignore
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
import type { Logger } from "../daemon/log.ts";
import { MessageType, packHeartbeat, unpackMessage } from "../protocol/messages.ts";
import { Dealer, SocketClosedError } from "../io/zmtp/mod.ts";

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
  #socks: Record<Channel, Dealer>;
  #opts: ChannelOptions;
  #closed = false;

  private constructor(opts: ChannelOptions, socks: Record<Channel, Dealer>) {
    this.#opts = opts;
    this.#socks = socks;
  }

  /**
   * Create the sockets, connect them and queue the registration messages (they leave
   * first once each connection's handshake is done).
   *
   * @example
   * ```ts ignore
   * const ch = await ForwarderChannels.open(opts);
   * ```
   */
  static open(opts: ChannelOptions): Promise<ForwarderChannels> {
    const host = opts.host.includes(":") && !opts.host.startsWith("[")
      ? `[${opts.host}]`
      : opts.host;
    const socks = {} as Record<Channel, Dealer>;
    const names: Channel[] = ["tasks", "results", "commands"];
    try {
      for (const ch of names) {
        socks[ch] = new Dealer({
          routingId: opts.endpointId,
          curveServerKey: opts.serverKey,
          curvePublicKey: opts.keys.publicKey,
          curveSecretKey: opts.keys.secretKey,
          sendHighWaterMark: 0,
          receiveHighWaterMark: 0,
          maxMessageSize: _MAX_MESSAGE,
        });
      }
    } catch (e) {
      for (const s of Object.values(socks)) void s.close();
      return Promise.reject(
        new Error(`cannot open the forwarder channels to ${host}: ${(e as Error).message}`),
      );
    }
    const c = new ForwarderChannels(opts, socks);
    for (const ch of names) {
      const s = socks[ch];
      s.on("disconnect", (_peer, reason) => c.#lost(ch, `disconnected (${reason})`));
      s.on("handshakeFailed", (_addr, e) => c.#lost(ch, `handshake failed: ${e.message}`));
      s.on("connectFailed", (addr, e, retry) => {
        if (!c.#closed) {
          opts.log.debug(
            "forwarder",
            "%s channel: cannot reach %s (%s); retrying in %d ms",
            ch,
            addr,
            e.message,
            retry,
          );
        }
      });
      // registration first on every socket (queued until the handshake is done)
      c.#send(ch, opts.registration[ch]);
    }
    socks.tasks.setHandler((frames) => c.#onTasks(frames));
    socks.commands.setHandler((frames) => c.#onCommand(frames));
    socks.results.setHandler(() => {});
    for (const ch of names) socks[ch].connect(`tcp://${host}:${opts.ports[ch]}`);
    return Promise.resolve(c);
  }

  /** Queue pickled results (or status reports) on the results channel, in order. */
  sendResults(messages: Uint8Array[]): void {
    if (this.#closed) return;
    for (const m of messages) this.#send("results", m);
  }

  /** Send `b"HEARTBEAT"` on the results channel. */
  sendHeartbeat(): void {
    this.sendResults([_HEARTBEAT_LITERAL]);
  }

  /** Messages waiting for the results connection (not yet handed to it). */
  get backlog(): number {
    return this.#socks.results.waitingSends;
  }

  /** Close the sockets (queued messages are dropped; callers keep what was not acknowledged). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(Object.values(this.#socks).map((s) => s.close()));
  }

  #send(ch: Channel, body: Uint8Array) {
    this.#socks[ch].send([body]).catch((e) => {
      if (this.#closed || e instanceof SocketClosedError) return;
      this.#opts.log.warn("forwarder", "sending on the %s channel failed: %s", ch, e);
      this.#lost(ch, `send failed: ${(e as Error).message}`);
    });
  }

  #lost(ch: Channel, why: string) {
    if (!this.#closed) this.#opts.handlers.onDisconnect(ch, why);
  }

  #onTasks(frames: Uint8Array[]): void {
    const h = this.#opts.handlers;
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
  }

  #onCommand(frames: Uint8Array[]): void {
    const h = this.#opts.handlers;
    let m;
    try {
      m = unpackMessage(frames[0] ?? new Uint8Array());
    } catch (e) {
      h.onBadMessage("commands", (e as Error).message);
      this.#send("commands", new Uint8Array());
      return;
    }
    if (m.type === MessageType.HEARTBEAT_REQ) {
      this.#send("commands", packHeartbeat(this.#opts.endpointId));
    } else {
      h.onBadMessage("commands", `unsupported command type ${m.type}`);
      this.#send("commands", new Uint8Array());
    }
  }
}
