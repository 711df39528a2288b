/**
 * A test-side endpoint for the forwarder: three real ZeroMQ DEALERs with CURVE (client
 * keys registered through the real HTTP API), speaking the upstream framing from
 * `src/protocol`. It is driven step by step by the tests.
 *
 * @example
 * ```ts ignore
 * const ep = await TestEndpoint.register(svcUrl, token, "ep1");
 * await ep.connect();
 * const [task] = await ep.waitForTasks(1);
 * await ep.sendResult(task.taskId, { result: serializeData(42) });
 * ```
 * @module
 */
import {
  encodeEPStatusReport,
  encodeRegistration,
  encodeResult,
  type Message,
  MessageType,
  unpackMessage,
} from "../../src/protocol/messages.ts";
import { parseCertificate } from "../../src/protocol/zpl.ts";
import { curveKeyPairZ85, Dealer, type Router } from "../../src/io/zmtp/mod.ts";
import { sendWithin } from "../helpers/zmtp.ts";

/** Send, waiting while the socket cannot take it yet; throws if closed or timed out. */
export async function pollSend(
  sock: Dealer | Router,
  frames: Uint8Array[] | Uint8Array | string,
  timeoutMs = 60_000,
): Promise<void> {
  const parts = Array.isArray(frames) ? frames : [frames];
  const bytes = parts.map((f) => typeof f === "string" ? new TextEncoder().encode(f) : f);
  if (!await sendWithin(sock, bytes, timeoutMs)) {
    throw new Error(
      sock.closed ? "socket is closed" : `socket not writable within ${timeoutMs} ms`,
    );
  }
}

/** The registration reply of `POST /endpoints`. */
export interface RegistrationReply {
  endpoint_id: string;
  forwarder_pubkey: string;
  public_ip: string;
  tasks_port: number;
  results_port: number;
  commands_port: number;
  endpoint_secret: string;
}

/** A task as received. */
export interface ReceivedTask {
  taskId: string;
  containerId: string;
  body: string;
}

/** Register an endpoint over HTTP; returns the reply and the client keypair. */
export async function registerEndpoint(
  url: string,
  token: string,
  name: string,
  uuid?: string,
  keys = curveKeyPairZ85(),
): Promise<{ reply: RegistrationReply; keys: { publicKey: string; secretKey: string } }> {
  const res = await fetch(`${url}/endpoints`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      endpoint_name: name,
      endpoint_uuid: uuid ?? null,
      version: "0.3.4",
      endpoint_pubkey: keys.publicKey,
    }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`registration failed: ${JSON.stringify(body)}`);
  return { reply: body as RegistrationReply, keys };
}

const _open = new Set<TestEndpoint>();

/** Close every test endpoint still open (e.g. after a failed assertion). */
export async function closeAllEndpoints(): Promise<void> {
  for (const ep of [..._open]) await ep.close();
}

/** The test endpoint. */
export class TestEndpoint {
  tasks!: Dealer;
  results!: Dealer;
  commands!: Dealer;
  /** Messages received on the tasks socket, in order. */
  readonly received: Message[] = [];
  #waiters: (() => void)[] = [];

  constructor(
    readonly reply: RegistrationReply,
    readonly keys: { publicKey: string; secretKey: string },
    /** Routing identity to use (default: the registered endpoint id). */
    readonly identity = reply.endpoint_id,
  ) {}

  /** Register over HTTP and build (not yet connect) the endpoint. */
  static async register(url: string, token: string, name: string, uuid?: string) {
    const { reply, keys } = await registerEndpoint(url, token, name, uuid);
    return new TestEndpoint(reply, keys);
  }

  /**
   * Open the three DEALERs and send the registration messages (with `secret`, default the
   * issued endpoint_secret; `null` sends none).
   */
  #registration?: { tasks: Uint8Array; other: Uint8Array };

  async connect(secret: string | null = this.reply.endpoint_secret): Promise<void> {
    const server = parseCertificate(this.reply.forwarder_pubkey).publicKey;
    const opts = {
      routingId: this.identity,
      curveServerKey: server,
      curvePublicKey: this.keys.publicKey,
      curveSecretKey: this.keys.secretKey,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
    };
    _open.add(this);
    this.tasks = new Dealer(opts);
    this.results = new Dealer(opts);
    this.commands = new Dealer(opts);
    const host = this.reply.public_ip;
    this.tasks.connect(`tcp://${host}:${this.reply.tasks_port}`);
    this.results.connect(`tcp://${host}:${this.reply.results_port}`);
    this.commands.connect(`tcp://${host}:${this.reply.commands_port}`);
    const extra: Record<string, string> = secret === null ? {} : { endpoint_secret: secret };
    this.tasks.setHandler(([frame]) => {
      this.received.push(unpackMessage(frame));
      for (const w of this.#waiters.splice(0)) w();
    });
    const tasksReg = encodeRegistration({
      registration: this.reply.endpoint_id,
      funcx_endpoint_version: "0.3.4",
      python_v: "3.11",
      os: "Linux",
      ...extra,
    });
    // queued until each handshake is done (never, for a refused key), as the endpoint does
    const reg = encodeRegistration({ registration: this.reply.endpoint_id, ...extra });
    for (
      const [sock, body] of [[this.tasks, tasksReg], [this.results, reg], [
        this.commands,
        reg,
      ]] as const
    ) {
      sock.send([body]).catch(() => {});
    }
    await Promise.resolve();
    this.#registration = { tasks: tasksReg, other: reg };
  }

  /**
   * Send the registration messages again on the open sockets (what the real endpoint does
   * when the forwarder stops trusting its connection).
   */
  async reRegister(): Promise<void> {
    if (!this.#registration) throw new Error("connect() first");
    await pollSend(this.tasks, this.#registration.tasks);
    await pollSend(this.results, this.#registration.other);
    await pollSend(this.commands, this.#registration.other);
  }

  /** Wait until `pred` holds for the received messages (or time out). */
  async waitFor(pred: (msgs: Message[]) => boolean, timeoutMs = 10_000, what = "messages") {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.received)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; got ${
            this.received.map((m) => MessageType[m.type]).join(",")
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * Connect and wait for the forwarder's heartbeat; when none comes, close and connect
   * again, as a real endpoint does after its heartbeat threshold.
   */
  async connectUntilAccepted(attempts = 5, timeoutMs = 3000): Promise<void> {
    for (let i = 1;; i++) {
      await this.connect();
      try {
        await this.waitConnected(timeoutMs);
        return;
      } catch (e) {
        if (i >= attempts) throw e;
        await this.close();
      }
    }
  }

  /** Wait until the forwarder accepted the registration (it answers with a heartbeat). */
  async waitConnected(timeoutMs = 10_000): Promise<void> {
    await this.waitFor(
      (msgs) => msgs.some((m) => m.type === MessageType.HEARTBEAT),
      timeoutMs,
      "the first heartbeat",
    );
  }

  /** Tasks received so far. */
  taskMessages(): ReceivedTask[] {
    const dec = new TextDecoder();
    return this.received.filter((m) => m.type === MessageType.TASK).map((m) => {
      const t = m as Extract<Message, { type: MessageType.TASK }>;
      return { taskId: t.taskId, containerId: t.containerId, body: dec.decode(t.body) };
    });
  }

  /** Task ids acked so far. */
  acks(): string[] {
    return this.received.filter((m) => m.type === MessageType.RESULTS_ACK).map((m) =>
      (m as Extract<Message, { type: MessageType.RESULTS_ACK }>).taskId
    );
  }

  /** Wait for `n` tasks in total. */
  async waitForTasks(n: number, timeoutMs = 10_000): Promise<ReceivedTask[]> {
    await this.waitFor(
      (msgs) => msgs.filter((m) => m.type === MessageType.TASK).length >= n,
      timeoutMs,
      `${n} tasks`,
    );
    return this.taskMessages();
  }

  /** Send a result dict on the results channel. */
  async sendResult(taskId: string, r: { result?: string; exception?: string }): Promise<void> {
    await pollSend(this.results, encodeResult({ task_id: taskId, container_id: "RAW", ...r }));
  }

  /** Send an EPStatusReport with task statuses. */
  async sendStatus(statuses: Record<string, number>): Promise<void> {
    await pollSend(
      this.results,
      encodeEPStatusReport(this.reply.endpoint_id, { managers: 1 }, statuses),
    );
  }

  /** Close the sockets. */
  async close(): Promise<void> {
    _open.delete(this);
    await Promise.all(
      [this.tasks, this.results, this.commands].filter((s) => s).map((s) => s.close()),
    );
  }
}
