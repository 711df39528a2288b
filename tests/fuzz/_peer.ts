/**
 * A hand-driven forwarder peer for the fuzz and security tests: registers an endpoint over
 * HTTP (real service), opens the three CURVE DEALER sockets with a chosen identity and
 * keypair, and speaks the upstream registration/task/result messages directly, so tests
 * can send anything on any socket.
 *
 * @example
 * ```ts ignore
 * import { connectPeer, registerEndpoint } from "./_peer.ts";
 * const reg = await registerEndpoint(svc.url, token, "ep");
 * const peer = await connectPeer(reg, { identity: reg.endpoint_id, secret: reg.endpoint_secret });
 * const task = await peer.nextTask(5000);
 * await peer.close();
 * ```
 * @module
 */
import { encodeRegistration, MessageType, unpackMessage } from "../../src/protocol/messages.ts";
import { parseCertificate } from "../../src/protocol/zpl.ts";
import { curveKeyPairZ85, Dealer } from "../../src/io/zmtp/mod.ts";
import { sendWithin } from "../helpers/zmtp.ts";

export { sendWithin };

/** The registration reply of `POST /endpoints` plus the keypair used. */
export interface Registration {
  endpoint_id: string;
  endpoint_secret: string;
  forwarder_pubkey: string;
  public_ip: string;
  tasks_port: number;
  results_port: number;
  commands_port: number;
  keys: { publicKey: string; secretKey: string };
}

/**
 * Register an endpoint (fresh keypair) as the user owning `token`.
 *
 * @example
 * ```ts ignore
 * const reg = await registerEndpoint(svc.url, tokens.access_token, "ep1");
 * ```
 */
export async function registerEndpoint(
  serviceUrl: string,
  token: string,
  name: string,
  endpointUuid?: string,
): Promise<Registration> {
  const keys = curveKeyPairZ85();
  const res = await fetch(`${serviceUrl}/endpoints`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      endpoint_name: name,
      endpoint_uuid: endpointUuid ?? null,
      version: "0.3.4",
      endpoint_pubkey: keys.publicKey,
    }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`register ${name}: HTTP ${res.status}: ${body.reason}`);
  return { ...body, keys };
}

/** Options of {@linkcode connectPeer}. */
export interface PeerOptions {
  /** Routing identity on all three sockets. */
  identity: string;
  /** endpoint_secret sent in the registration messages (none when undefined). */
  secret?: string;
  /** Keypair to authenticate with (default: the registration's). */
  keys?: { publicKey: string; secretKey: string };
  /** Send the registration messages (default true). */
  register?: boolean;
}

/** A connected peer. */
export interface Peer {
  tasks: Dealer;
  results: Dealer;
  commands: Dealer;
  /** Next Task message on the tasks socket within `ms` (heartbeats, acks are skipped). */
  nextTask(ms: number): Promise<{ taskId: string; body: Uint8Array } | undefined>;
  /** Task ids of ResultsAck messages seen by {@linkcode Peer.nextTask} / {@linkcode Peer.drain}. */
  acks: Set<string>;
  /** Messages of any kind received on the tasks socket so far. */
  received: number;
  /** Read the tasks socket for `ms`, returning the task ids seen. */
  drain(ms: number): Promise<string[]>;
  close(): void;
}

/**
 * Open the three DEALERs to the forwarder of `reg` and (by default) register on each.
 *
 * @example
 * ```ts ignore
 * const impostor = await connectPeer(reg, { identity: victimId, keys: other.keys, secret: "x" });
 * ```
 */
export async function connectPeer(reg: Registration, opts: PeerOptions): Promise<Peer> {
  const keys = opts.keys ?? reg.keys;
  const serverKey = parseCertificate(reg.forwarder_pubkey, "forwarder_pubkey").publicKey;
  const mk = () =>
    new Dealer({
      routingId: opts.identity,
      curveServerKey: serverKey,
      curvePublicKey: keys.publicKey,
      curveSecretKey: keys.secretKey,
    });
  const tasks = mk();
  const results = mk();
  const commands = mk();
  tasks.connect(`tcp://${reg.public_ip}:${reg.tasks_port}`);
  results.connect(`tcp://${reg.public_ip}:${reg.results_port}`);
  commands.connect(`tcp://${reg.public_ip}:${reg.commands_port}`);
  if (opts.register !== false) {
    const secret: Record<string, string> = opts.secret === undefined
      ? {}
      : { endpoint_secret: opts.secret };
    await sendWithin(
      tasks,
      encodeRegistration({
        registration: opts.identity,
        funcx_endpoint_version: "0.3.4",
        ...secret,
      }),
    );
    await sendWithin(results, encodeRegistration({ registration: opts.identity, ...secret }));
    await sendWithin(commands, encodeRegistration({ registration: opts.identity, ...secret }));
  }
  // nextTask waits on what the handler collects
  const inbox: Uint8Array[][] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  tasks.setHandler((frames) => {
    inbox.push(frames);
    wake?.();
  });
  const nextMessage = async (ms: number): Promise<Uint8Array[] | undefined> => {
    if (inbox.length === 0 && !closed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.max(0, ms));
        function done() {
          clearTimeout(t);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
    return inbox.shift();
  };
  const peer: Peer = {
    tasks,
    results,
    commands,
    acks: new Set(),
    received: 0,
    async nextTask(ms) {
      const until = Date.now() + ms;
      while (true) {
        const frames = await nextMessage(until - Date.now());
        if (!frames) return undefined;
        peer.received++;
        const m = unpackMessage(frames[frames.length - 1]);
        if (m.type === MessageType.RESULTS_ACK) peer.acks.add(m.taskId);
        if (m.type === MessageType.TASK) return { taskId: m.taskId, body: m.body };
        if (Date.now() >= until && inbox.length === 0) return undefined;
      }
    },
    async drain(ms) {
      const ids: string[] = [];
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const t = await peer.nextTask(until - Date.now());
        if (t) ids.push(t.taskId);
      }
      return ids;
    },
    close() {
      closed = true;
      wake?.();
      for (const s of [tasks, results, commands]) void s.close();
    },
  };
  return peer;
}
