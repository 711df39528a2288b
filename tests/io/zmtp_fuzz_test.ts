/**
 * Seeded, bounded fuzzing of our ZMTP sockets (src/io/zmtp/) from a raw TCP peer
 * (`Deno.connect`): random bytes, mutated greetings, mutated and out-of-order handshake
 * commands (NULL READY; CURVE HELLO / INITIATE built by a real CURVE client, then mutated),
 * frames with bad flags and oversize lengths, mutated or replayed MESSAGE boxes after a
 * valid handshake, and transcripts cut short. Targets: a ROUTER with NULL, a ROUTER with
 * CURVE and an authorizer, and a binding DEALER (NULL and CURVE). For every target: each
 * fuzz connection is closed by our side (protocol error, handshake or heartbeat timeout)
 * and reported by exactly one event, the process lives, the heap stays bounded, and a
 * well-behaved peer still works afterwards. `FUZZ_SEED=n` replays another seed.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  encodeCommand,
  encodeFrame,
  encodeGreeting,
  encodeMetadata,
  FrameDecoder,
  GREETING_SIZE,
} from "../../src/io/zmtp/codec.ts";
import { curveKeyPair } from "../../src/io/zmtp/box.ts";
import { CurveClient } from "../../src/io/zmtp/curve.ts";
import { Dealer, type Peer, Router, type SocketOptions } from "../../src/io/zmtp/mod.ts";
import { fuzzSeed, Rand } from "../fuzz/_rand.ts";

const SEED = fuzzSeed(12_2026);
/** Fuzz connections per target, at most; and a wall-clock cap per target. */
const CASES = 160;
const BUDGET_MS = 4_000;
const PARALLEL = 12;
const MAX_MESSAGE = 256 * 1024;

const enc = new TextEncoder();

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw TCP peer: writes anything, reads the server's greeting and frames when asked. */
class Raw {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #frames = new FrameDecoder(1 << 20);
  #pending: { body: Uint8Array; command: boolean }[] = [];
  closedByServer = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async connect(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Write; false once the server has closed (a write may then fail). */
  async write(b: Uint8Array): Promise<boolean> {
    try {
      let off = 0;
      while (off < b.length) off += await this.#conn.write(b.subarray(off));
      return true;
    } catch {
      this.closedByServer = true;
      return false;
    }
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch {
      n = null; // reset by the server
    }
    if (n === null) {
      this.closedByServer = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** The server's 64-byte greeting, or undefined if it closed first. */
  async greeting(): Promise<Uint8Array | undefined> {
    while (this.#buf.length < GREETING_SIZE) if (!await this.#fill()) return undefined;
    const g = this.#buf.slice(0, GREETING_SIZE);
    this.#buf = this.#buf.slice(GREETING_SIZE);
    return g;
  }

  /** The server's next frame body, or undefined if it closed first. */
  async frame(): Promise<Uint8Array | undefined> {
    while (this.#pending.length === 0) {
      if (this.#buf.length > 0) {
        this.#pending.push(...this.#frames.push(this.#buf));
        this.#buf = new Uint8Array(0);
        continue;
      }
      if (!await this.#fill()) return undefined;
    }
    return this.#pending.shift()!.body;
  }

  /** Read and discard until the server closes; false if it has not within `ms`. */
  async drainUntilClosed(ms: number): Promise<boolean> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, ms);
    try {
      while (!this.closedByServer) {
        const n = await this.#conn.read(new Uint8Array(64 * 1024)).catch(() => null);
        if (n === null) this.closedByServer = !timedOut;
        if (n === null) break;
      }
    } finally {
      clearTimeout(timer);
    }
    return this.closedByServer;
  }

  close() {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

interface Target {
  name: string;
  mech: "NULL" | "CURVE";
  /** Our socket's type and what the raw peer claims to be. */
  peerType: "DEALER" | "ROUTER";
  server: Router | Dealer;
  port: number;
  serverKey?: ReturnType<typeof curveKeyPair>;
  clientKey?: ReturnType<typeof curveKeyPair>;
  /** A well-behaved socket of ours, connected to the target, exchanging one message. */
  wellBehaved(): Promise<void>;
}

const FUZZ_OPTS: SocketOptions = {
  maxMessageSize: MAX_MESSAGE,
  handshakeTimeout: 250,
  heartbeatInterval: 50,
  heartbeatTimeout: 200,
};

function nullReady(peerType: string, rand?: Rand): Uint8Array {
  const meta = encodeMetadata([["Socket-Type", peerType], ["Identity", rand ? rand.bytes(3) : ""]]);
  return encodeCommand("READY", meta);
}

function newClient(t: Target): CurveClient {
  return new CurveClient(
    { socketType: t.peerType, identity: enc.encode("raw"), peerAddress: "" },
    { ...t.clientKey!, serverKey: t.serverKey!.publicKey },
  );
}

/**
 * A valid handshake from the raw peer; returns the CURVE client (for MESSAGE boxes) or
 * undefined for NULL; null if the server closed.
 */
async function handshake(raw: Raw, t: Target): Promise<CurveClient | undefined | null> {
  await raw.write(encodeGreeting(t.mech, false));
  if (!await raw.greeting()) return null;
  if (t.mech === "NULL") {
    await raw.write(encodeFrame(nullReady(t.peerType), false, true));
    return await raw.frame() ? undefined : null;
  }
  const c = newClient(t);
  await raw.write(encodeFrame(c.start()[0], false, true));
  const welcome = await raw.frame();
  if (!welcome) return null;
  const init = await c.onCommand(welcome);
  await raw.write(encodeFrame(init.send[0], false, true));
  const ready = await raw.frame();
  if (!ready) return null;
  await c.onCommand(ready);
  return c;
}

/** A frame header declaring `n` bytes (long form), with random flags. */
function longHeader(rand: Rand, n: bigint): Uint8Array {
  const h = new Uint8Array(9);
  h[0] = 2 | rand.pick([0, 1, 4, 5]);
  new DataView(h.buffer).setBigUint64(1, n);
  return h;
}

function randomFrames(rand: Rand): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = rand.int(5); i >= 0; i--) {
    const flags = rand.next() < 0.8 ? rand.pick([0, 1, 4, 5]) : rand.int(256);
    const body = rand.bytes(rand.pick([0, 1, 7, 255, 256, 1000]));
    const f = encodeFrame(body, false);
    f[0] = (f[0] & 2) | (flags & ~2);
    parts.push(rand.next() < 0.3 ? rand.mutateBytes(f) : f);
  }
  return concatAll(parts);
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const OVERSIZE = [
  BigInt(MAX_MESSAGE + 65),
  2n ** 32n,
  2n ** 40n,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
];

/** One fuzz connection: pick a case, play it, then wait for our side to close it. */
async function fuzzOne(t: Target, rand: Rand): Promise<string> {
  const raw = await Raw.connect(t.port);
  const kind = rand.pick(
    [
      "random",
      "greeting",
      "frames-before-handshake",
      "handshake-mutated",
      "handshake-out-of-order",
      "oversize",
      "after-handshake",
      "truncated",
    ] as const,
  );
  try {
    const greeting = encodeGreeting(t.mech, false);
    switch (kind) {
      case "random":
        await raw.write(rand.bytes(rand.int(300)));
        break;
      case "greeting": {
        const g = rand.mutateBytes(greeting);
        await raw.write(g);
        if (rand.next() < 0.5) await raw.write(randomFrames(rand));
        break;
      }
      case "frames-before-handshake":
        await raw.write(greeting);
        await raw.write(randomFrames(rand));
        break;
      case "handshake-mutated": {
        await raw.write(greeting);
        if (t.mech === "NULL") {
          await raw.write(encodeFrame(rand.mutateBytes(nullReady(t.peerType, rand)), false, true));
          break;
        }
        const c = newClient(t);
        const hello = c.start()[0];
        if (rand.next() < 0.5) {
          await raw.write(encodeFrame(rand.mutateBytes(hello), false, true));
          break;
        }
        await raw.write(encodeFrame(hello, false, true));
        if (!await raw.greeting()) break;
        const welcome = await raw.frame();
        if (!welcome) break;
        const init = (await c.onCommand(welcome)).send[0];
        await raw.write(encodeFrame(rand.mutateBytes(init), false, true));
        break;
      }
      case "handshake-out-of-order": {
        await raw.write(greeting);
        const cmds = [
          nullReady(t.peerType),
          encodeCommand("HELLO", rand.bytes(194)),
          encodeCommand("INITIATE", rand.bytes(300)),
          encodeCommand("WELCOME", rand.bytes(160)),
          encodeCommand("ERROR", new Uint8Array([3, 52, 48, 48])),
          encodeCommand("PING", new Uint8Array([0, 10])),
          encodeCommand("MESSAGE", rand.bytes(40)),
          new Uint8Array(0),
          new Uint8Array([200, 65]),
        ];
        for (let i = 1 + rand.int(3); i > 0; i--) {
          await raw.write(encodeFrame(rand.pick(cmds), false, rand.next() < 0.9));
        }
        break;
      }
      case "oversize": {
        const early = rand.next() < 0.4;
        if (early) await raw.write(greeting);
        else if ((await handshake(raw, t)) === null) break;
        await raw.write(longHeader(rand, rand.pick(OVERSIZE)));
        await raw.write(rand.bytes(rand.int(1000)));
        break;
      }
      case "after-handshake": {
        const c = await handshake(raw, t);
        if (c === null) break;
        if (!c) {
          await raw.write(randomFrames(rand));
          break;
        }
        const m1 = c.encode(rand.bytes(rand.int(100)), false, false);
        const op = rand.int(4);
        if (op === 0) await raw.write(rand.mutateBytes(m1));
        else if (op === 1) await raw.write(concatAll([m1, m1])); // replayed nonce
        else if (op === 2) await raw.write(randomFrames(rand)); // not boxed
        else await raw.write(c.encode(rand.bytes(MAX_MESSAGE + 1), false, false));
        break;
      }
      case "truncated": {
        const whole = t.mech === "NULL"
          ? concatAll([greeting, encodeFrame(nullReady(t.peerType), false, true)])
          : concatAll([greeting, encodeFrame(newClient(t).start()[0], false, true)]);
        await raw.write(whole.subarray(0, rand.int(whole.length)));
        break;
      }
    }
    // whatever was sent, our side must end this connection (error, or a timeout)
    const closed = await raw.drainUntilClosed(3_000);
    assert(closed, `${t.name}: a "${kind}" connection was not closed by our side (seed ${SEED})`);
    return kind;
  } finally {
    raw.close();
  }
}

async function makeTarget(
  name: string,
  mech: "NULL" | "CURVE",
  type: "ROUTER" | "DEALER",
): Promise<Target> {
  const serverKey = mech === "CURVE" ? curveKeyPair() : undefined;
  const clientKey = mech === "CURVE" ? curveKeyPair() : undefined;
  const curve: SocketOptions = serverKey
    ? {
      curveServer: true,
      curveSecretKey: serverKey.secretKey,
      authorize: (req) =>
        req.clientKey?.every((b, i) => b === clientKey!.publicKey[i]) || "unknown key",
    }
    : {};
  const server = type === "ROUTER"
    ? new Router({ ...FUZZ_OPTS, ...curve })
    : new Dealer({ ...FUZZ_OPTS, ...curve });
  const address = await server.bind("tcp://127.0.0.1:*");
  const port = Number(address.split(":").pop());
  const clientOpts: SocketOptions = serverKey
    ? { curveServerKey: serverKey.publicKey, curveSecretKey: clientKey!.secretKey }
    : {};
  const got: Uint8Array[][] = [];
  server.setHandler((frames) => {
    got.push(frames);
  });
  return {
    name,
    mech,
    peerType: type === "ROUTER" ? "DEALER" : "ROUTER",
    server,
    port,
    serverKey,
    clientKey,
    async wellBehaved() {
      const marker = enc.encode(`well-behaved ${crypto.randomUUID()}`);
      const isMarker = (f: Uint8Array) =>
        f.length === marker.length && f.every((b, i) => b === marker[i]);
      const has = () => got.some((m) => m.some(isMarker));
      if (type === "ROUTER") {
        const d = new Dealer(clientOpts);
        try {
          d.connect(address);
          await d.send([marker]);
          await until(has, 5_000, `${name}: the well-behaved DEALER's message`);
          const from = got.find((m) => m.length === 2 && isMarker(m[1]))![0];
          await (server as Router).send([from, enc.encode("reply")]);
          assertEquals(new TextDecoder().decode((await d.receive())[0]), "reply");
        } finally {
          await d.close();
        }
      } else {
        const r = new Router(clientOpts);
        try {
          const up = new Promise<Peer>((res) => r.on("connect", res));
          r.connect(address);
          await up;
          await (server as Dealer).send([marker]);
          const [id, body] = await r.receive();
          assertEquals(body, marker);
          await r.send([id, marker]);
          await until(has, 5_000, `${name}: the well-behaved ROUTER's message`);
        } finally {
          await r.close();
        }
      }
    },
  };
}

for (
  const [name, mech, type] of [
    ["ROUTER NULL", "NULL", "ROUTER"],
    ["ROUTER CURVE + authorizer", "CURVE", "ROUTER"],
    ["DEALER-bind NULL", "NULL", "DEALER"],
    ["DEALER-bind CURVE", "CURVE", "DEALER"],
  ] as const
) {
  Deno.test(`fuzz (seed ${SEED}): raw TCP peers against our ${name}`, async () => {
    const t = await makeTarget(name, mech, type);
    let ended = 0;
    t.server.on("handshakeFailed", () => ended++);
    t.server.on("disconnect", () => ended++);
    try {
      // warm up (JIT, buffers) before the memory baseline
      await t.wellBehaved();
      await until(() => ended === 1, 5_000, "the warm-up peer's disconnect");
      ended = 0;
      const before = Deno.memoryUsage();
      const rand = new Rand(SEED ^ name.length * 7919);
      const kinds = new Map<string, number>();
      let started = 0;
      const deadline = performance.now() + BUDGET_MS;
      const worker = async () => {
        while (started < CASES && performance.now() < deadline) {
          started++;
          const kind = await fuzzOne(t, new Rand(rand.int(2 ** 31)));
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      // every fuzz connection ended in exactly one event on our side; none is left
      await until(() => ended >= started, 5_000, `${started} connection-end events (${ended})`);
      assertEquals(ended, started);
      assertEquals(t.server.connectedPeers(), []);
      assert(kinds.size >= 6, `too few kinds of input: ${[...kinds.keys()]}`);
      const after = Deno.memoryUsage();
      const grown = (after.heapUsed - before.heapUsed) / 2 ** 20;
      console.log(
        `${name}: ${started} connections ${JSON.stringify(Object.fromEntries(kinds))}, ` +
          `heap ${(before.heapUsed / 2 ** 20).toFixed(1)} → ${
            (after.heapUsed / 2 ** 20).toFixed(1)
          } MiB, rss ${(before.rss / 2 ** 20).toFixed(0)} → ${
            (after.rss / 2 ** 20).toFixed(0)
          } MiB`,
      );
      assert(grown < 48, `the heap grew by ${grown.toFixed(1)} MiB over the fuzz run`);
      // and a well-behaved peer still works
      await t.wellBehaved();
    } finally {
      await t.server.close();
    }
  });
}
