/**
 * Reliable send/receive on zeromq.js sockets under Deno.
 *
 * Deno 2.9's libuv shim for N-API addons stops a `uv_poll` handle after its first
 * callback (denoland/deno#36317), so zeromq.js's promise-based `receive()` can wait
 * forever once an edge is missed — reliably so when the process has a signal listener
 * or child processes. This module never relies on that poller: sockets are created with
 * `receiveTimeout: 0` and `sendTimeout: 0` (non-blocking calls only) and a small loop
 * polls with an adaptive delay (1 ms after traffic, up to `maxDelayMs` when idle).
 *
 * @example
 * ```ts
 * import * as zmq from "zeromq";
 * import { SocketPump, NONBLOCKING } from "./zmq_io.ts";
 * const sock = new zmq.Dealer({ ...NONBLOCKING, routingId: "m1" });
 * sock.connect("tcp://127.0.0.1:5555");
 * const pump = new SocketPump(sock);
 * pump.send([new TextEncoder().encode("HEARTBEAT")]);
 * for await (const frames of pump.messages()) console.log(frames.length);
 * ```
 * @module
 */
import type * as zmq from "zeromq";

/** Socket options every pumped socket must be created with. */
export const NONBLOCKING = { linger: 0, receiveTimeout: 0, sendTimeout: 0 } as const;

/** Options of {@linkcode SocketPump}. */
export interface PumpOptions {
  /** Longest sleep between polls when idle (ms, default 20). */
  maxDelayMs?: number;
  /** Give up on one message after this long without the socket accepting it (ms, default 30 s). */
  sendGiveUpMs?: number;
  /** Called when a message is dropped (send gave up or socket closed). */
  onDrop?: (reason: string) => void;
}

type _Sock = zmq.Socket & {
  receive(): Promise<Uint8Array[]>;
  send(msg: Uint8Array[]): Promise<void>;
};

function _code(e: unknown): string | undefined {
  return (e as { code?: string })?.code;
}

const _sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls a non-blocking zeromq.js socket for messages and queues sends in order. */
export class SocketPump {
  #sock: _Sock;
  #maxDelay: number;
  #giveUp: number;
  #onDrop: (reason: string) => void;
  #chain: Promise<void> = Promise.resolve();
  #pending = 0;

  /** `sock` must have been created with {@linkcode NONBLOCKING} options. */
  constructor(sock: zmq.Socket, opts: PumpOptions = {}) {
    this.#sock = sock as _Sock;
    this.#maxDelay = opts.maxDelayMs ?? 5;
    this.#giveUp = opts.sendGiveUpMs ?? 30_000;
    this.#onDrop = opts.onDrop ?? (() => {});
  }

  /** Messages queued for sending and not yet handed to ZeroMQ. */
  get pendingSends(): number {
    return this.#pending;
  }

  /** Incoming messages until the socket is closed. Throws on socket errors other than EAGAIN. */
  async *messages(): AsyncGenerator<Uint8Array[]> {
    const sock = this.#sock;
    let delay = 1;
    while (!sock.closed) {
      let got = false;
      for (let i = 0; i < 1000; i++) {
        let msg: Uint8Array[];
        try {
          msg = await sock.receive();
        } catch (e) {
          if (_code(e) === "EAGAIN") break;
          if (sock.closed) return;
          throw e;
        }
        got = true;
        yield msg;
        if (sock.closed) return;
      }
      delay = got ? 0 : Math.min(this.#maxDelay, Math.max(1, delay * 2));
      await _sleep(delay);
    }
  }

  /** Queue a message; messages are sent in order, retried while the socket would block. */
  send(frames: Uint8Array[]): void {
    this.#pending++;
    this.#chain = this.#chain.then(() => this.#sendOne(frames)).finally(() => this.#pending--);
  }

  /** Resolves when every queued message was handed to ZeroMQ (or dropped). */
  flushed(): Promise<void> {
    return this.#chain;
  }

  async #sendOne(frames: Uint8Array[]): Promise<void> {
    const sock = this.#sock;
    const start = Date.now();
    let delay = 1;
    while (true) {
      if (sock.closed) {
        this.#onDrop("socket closed");
        return;
      }
      try {
        await sock.send(frames);
        return;
      } catch (e) {
        if (_code(e) !== "EAGAIN") {
          this.#onDrop(`send failed: ${(e as Error).message}`);
          return;
        }
      }
      if (Date.now() - start > this.#giveUp) {
        this.#onDrop(`peer not accepting messages for ${Math.round(this.#giveUp / 1000)}s`);
        return;
      }
      await _sleep(delay);
      delay = Math.min(this.#maxDelay, delay * 2);
    }
  }
}
