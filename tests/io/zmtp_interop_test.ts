// Our ZMTP 3.1 transport (src/io/zmtp/) against real libzmq (Debian python3-zmq, run by
// /usr/bin/python3 in its own process: tests/io/_libzmq_peer.py), in both directions,
// DEALER ↔ ROUTER, NULL and CURVE. Every test kills its Python peers in `finally`.
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  curveKeyPairZ85,
  Dealer,
  type HandshakeError,
  type Peer,
  Router,
  type SocketOptions,
} from "../../src/io/zmtp/mod.ts";
import { z85Encode } from "../../src/protocol/z85.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./_libzmq_peer.py", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

const HAS_ZMQ = (() => {
  try {
    return new Deno.Command(PYTHON, { args: ["-c", "import zmq"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!HAS_ZMQ) {
  console.error(
    `zmtp interop tests SKIPPED: ${PYTHON} cannot import zmq (apt-get install python3-zmq)`,
  );
}

/** A test that needs libzmq; ignored (with the message above) without it. */
function interop(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `libzmq interop: ${name}`, ignore: !HAS_ZMQ, fn });
}

/** Poll `cond` every 10 ms until true or `ms` passed (then throw naming `what`). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise for the first `event` of `sock`, failing after `ms`. */
function next<T extends unknown[]>(
  on: (l: (...a: T) => void) => () => void,
  ms: number,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const off = on((...a: T) => {
      clearTimeout(timer);
      off();
      resolve(a);
    });
  });
}

/** One libzmq peer process. */
class PyPeer {
  readonly lines: string[] = [];
  endpoint = "";
  #proc: Deno.ChildProcess;
  #stderr = "";
  #done: Promise<unknown>;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;

  constructor(args: string[]) {
    const proc = this.#proc = new Deno.Command(PYTHON, {
      args: [SCRIPT, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#proc.stdin.getWriter();
    const out = (async () => {
      let buf = "";
      for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
    })();
    const err = (async () => {
      for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
      }
    })();
    this.#done = Promise.all([out, err, this.#proc.status]);
  }

  get pid(): number {
    return this.#proc.pid;
  }

  /** Start `_libzmq_peer.py args` and wait for its READY line. */
  static async start(args: string[]): Promise<PyPeer> {
    const p = new PyPeer(args);
    try {
      await p.waitLine((l) => l.startsWith("READY"), 15_000);
      p.endpoint = p.lines.find((l) => l.startsWith("READY"))!.slice(6);
      return p;
    } catch (e) {
      await p.stop();
      throw e;
    }
  }

  async waitLine(pred: (l: string) => boolean, ms: number): Promise<string> {
    let found: string | undefined;
    let exited = false;
    void this.#proc.status.then(() => exited = true);
    await until(
      () => (found = this.lines.find(pred)) !== undefined || exited,
      ms,
      `a line from the libzmq peer (stderr: ${this.#stderr})`,
    );
    if (found === undefined) {
      // the process may have printed it just before exiting
      await this.#done;
      found = this.lines.find(pred);
      if (found === undefined) throw new Error(`libzmq peer exited: ${this.#stderr}`);
    }
    return found;
  }

  kill(signal: Deno.Signal) {
    try {
      this.#proc.kill(signal);
    } catch { /* gone */ }
  }

  /** Ask it to quit; SIGKILL it if it has not within 3 s (or was stopped). Idempotent. */
  async stop(): Promise<void> {
    this.kill("SIGCONT");
    try {
      await this.#stdin.write(enc.encode("quit\n"));
      await this.#stdin.close();
    } catch { /* already gone */ }
    const timer = setTimeout(() => this.kill("SIGKILL"), 3_000);
    await this.#done;
    clearTimeout(timer);
  }

  /** SIGKILL it now and wait for it. */
  async crash(): Promise<void> {
    this.kill("SIGKILL");
    try {
      await this.#stdin.close();
    } catch { /* gone */ }
    await this.#done;
  }
}

type Mech = "null" | "curve";
const MECHS: Mech[] = ["null", "curve"];

/** Keys for one test: a server pair and a client pair, Z85. */
function keys() {
  return { server: curveKeyPairZ85(), client: curveKeyPairZ85() };
}
type Keys = ReturnType<typeof keys>;

function pyArgs(mech: Mech, k: Keys): string[] {
  // `--opt=value`: a Z85 key may start with "-"
  return mech === "null" ? [] : [
    `--server-public=${k.server.publicKey}`,
    `--server-secret=${k.server.secretKey}`,
    `--client-public=${k.client.publicKey}`,
    `--client-secret=${k.client.secretKey}`,
  ];
}

function ourServer(mech: Mech, k: Keys, extra: SocketOptions = {}): SocketOptions {
  return mech === "null"
    ? extra
    : { curveServer: true, curveSecretKey: k.server.secretKey, ...extra };
}

function ourClient(mech: Mech, k: Keys, extra: SocketOptions = {}): SocketOptions {
  return mech === "null"
    ? extra
    : { curveServerKey: k.server.publicKey, curveSecretKey: k.client.secretKey, ...extra };
}

/** Bytes 0..n-1 of a pattern seeded by `seed`. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(
    Buffer.from(b.buffer, b.byteOffset, b.length),
  );
}

/** The message of the shape tests: multipart with 0-, 1-, 255-, 256- and 65 536-byte parts. */
function shapes(): Uint8Array[] {
  return [
    enc.encode("head"),
    new Uint8Array(0),
    pattern(255, 1),
    pattern(256, 2),
    new Uint8Array(0),
    pattern(65_536, 3),
    pattern(1, 4),
  ];
}

function assertFrames(got: Uint8Array[], want: Uint8Array[]) {
  assertEquals(got.map((f) => f.length), want.map((f) => f.length));
  for (let i = 0; i < want.length; i++) assert(same(got[i], want[i]), `part ${i} differs`);
}

const MIB16 = 16 * 1024 * 1024;

for (const mech of MECHS) {
  interop(
    `${mech}: our DEALER ↔ libzmq ROUTER: multipart, 0/255/256-byte frames, 16 MiB`,
    async () => {
      const k = keys();
      const py = await PyPeer.start(["router-bind", mech, ...pyArgs(mech, k)]);
      const d = new Dealer(ourClient(mech, k, { routingId: "ours" }));
      try {
        const failures: HandshakeError[] = [];
        d.on("handshakeFailed", (_a, e) => failures.push(e));
        d.connect(py.endpoint);
        const msg = shapes();
        await d.send(msg);
        assertFrames(await d.receive(), msg);
        const big = pattern(MIB16, 9);
        await d.send([big]);
        const [back] = await d.receive();
        assertEquals(back.length, MIB16);
        assert(same(back, big));
        // a 16 MiB message in parts, then a 0-byte single-part message
        const parts = [pattern(MIB16 - 300, 5), new Uint8Array(0), pattern(300, 6)];
        await d.send(parts);
        assertFrames(await d.receive(), parts);
        await d.send([new Uint8Array(0)]);
        assertFrames(await d.receive(), [new Uint8Array(0)]);
        assertEquals(failures, []);
        assertEquals(d.connectedPeers()[0].socketType, "ROUTER");
      } finally {
        await d.close();
        await py.stop();
      }
    },
  );

  interop(`${mech}: libzmq DEALER ↔ our ROUTER: identity, key, multipart, 16 MiB`, async () => {
    const k = keys();
    const r = new Router(ourServer(mech, k));
    const address = await r.bind("tcp://127.0.0.1:*");
    const connected = next<[Peer]>((l) => r.on("connect", l), 10_000, "connect");
    const py = await PyPeer.start([
      "dealer-connect",
      mech,
      "--address",
      address,
      "--identity",
      "py-dealer",
      ...pyArgs(mech, k),
    ]);
    try {
      const [peer] = await connected;
      assertEquals(dec.decode(peer.routingId), "py-dealer");
      assertEquals(dec.decode(peer.identity), "py-dealer");
      assertEquals(peer.socketType, "DEALER");
      if (mech === "curve") assertEquals(z85Encode(peer.curveKey!), k.client.publicKey);
      else assertEquals(peer.curveKey, undefined);
      const id = enc.encode("py-dealer");
      const msg = shapes();
      await r.send([id, ...msg]);
      const [from, ...rest] = await r.receive();
      assertEquals(dec.decode(from), "py-dealer");
      assertFrames(rest, msg);
      const big = pattern(MIB16, 11);
      await r.send([id, big, new Uint8Array(0)]);
      const [, b0, b1] = await r.receive();
      assert(same(b0, big));
      assertEquals(b1.length, 0);
    } finally {
      await py.stop();
      await r.close();
    }
  });
}

for (const mech of MECHS) {
  interop(
    `${mech}: the other way round: our DEALER binds (server), a libzmq ROUTER connects`,
    async () => {
      const k = keys();
      const d = new Dealer(ourServer(mech, k));
      const address = await d.bind("tcp://127.0.0.1:*");
      const connected = next<[Peer]>((l) => d.on("connect", l), 10_000, "connect");
      const py = await PyPeer.start([
        "router-connect",
        mech,
        "--address",
        address,
        ...pyArgs(mech, k),
      ]);
      try {
        const [peer] = await connected;
        assertEquals(peer.socketType, "ROUTER");
        if (mech === "curve") assertEquals(z85Encode(peer.curveKey!), k.client.publicKey);
        const msg = shapes();
        await d.send(msg);
        assertFrames(await d.receive(), msg);
      } finally {
        await py.stop();
        await d.close();
      }
    },
  );

  interop(
    `${mech}: the other way round: a libzmq DEALER binds (server), our ROUTER connects`,
    async () => {
      const k = keys();
      const py = await PyPeer.start([
        "dealer-bind",
        mech,
        "--identity",
        "py-bound",
        ...pyArgs(mech, k),
      ]);
      const r = new Router(ourClient(mech, k, { routingId: "our-router" }));
      try {
        const connected = next<[Peer]>((l) => r.on("connect", l), 10_000, "connect");
        r.connect(py.endpoint);
        const [peer] = await connected;
        assertEquals(dec.decode(peer.routingId), "py-bound");
        const msg = shapes();
        await r.send([peer.routingId, ...msg]);
        const [from, ...rest] = await r.receive();
        assertEquals(dec.decode(from), "py-bound");
        assertFrames(rest, msg);
      } finally {
        await r.close();
        await py.stop();
      }
    },
  );
}

interop("1,000 libzmq DEALERs on our ROUTER", async () => {
  const N = 1000;
  const r = new Router();
  const address = await r.bind("tcp://127.0.0.1:*");
  const ids = new Set<string>();
  r.on("connect", (p) => ids.add(dec.decode(p.routingId)));
  const py = await PyPeer.start([
    "dealer-connect",
    "null",
    "--address",
    address,
    "--identity",
    "d",
    "--count",
    String(N),
  ]);
  try {
    await until(() => ids.size === N, 30_000, `${N} connections (have ${ids.size})`);
    for (let i = 0; i < N; i++) await r.send([enc.encode(`d${i}`), enc.encode(`to d${i}`)]);
    const seen = new Set<string>();
    for (let i = 0; i < N; i++) {
      const [from, body] = await r.receive();
      assertEquals(dec.decode(body), `to ${dec.decode(from)}`);
      seen.add(dec.decode(from));
    }
    assertEquals(seen.size, N);
  } finally {
    await py.stop();
    await r.close();
  }
});

interop("1,000 of our DEALERs on a libzmq ROUTER", async () => {
  const N = 1000;
  const py = await PyPeer.start(["router-bind", "null"]);
  const dealers: Dealer[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const d = new Dealer({ routingId: `ours-${i}` });
      d.connect(py.endpoint);
      dealers.push(d);
    }
    await Promise.all(dealers.map((d, i) => d.send([enc.encode(`m${i}`)])));
    const got = await Promise.all(dealers.map((d) => d.receive()));
    got.forEach(([body], i) => assertEquals(dec.decode(body), `m${i}`));
  } finally {
    await Promise.all(dealers.map((d) => d.close()));
    await py.stop();
  }
});

interop(
  "our DEALER reconnects with back-off to a libzmq ROUTER restarted on the same port",
  async () => {
    const k = keys();
    let py = await PyPeer.start(["router-bind", "curve", ...pyArgs("curve", k)]);
    const address = py.endpoint;
    const d = new Dealer(
      ourClient("curve", k, { reconnectInterval: 20, reconnectIntervalMax: 160 }),
    );
    const retries: number[] = [];
    const reasons: string[] = [];
    let connects = 0;
    d.on("connectFailed", (_a, _e, ms) => retries.push(ms));
    d.on("disconnect", (_p, why) => reasons.push(why));
    d.on("connect", () => connects++);
    try {
      d.connect(address);
      // a stream in flight when the peer dies
      for (let i = 0; i < 50; i++) await d.send([enc.encode(`before ${i}`)]);
      assertEquals(dec.decode((await d.receive())[0]), "before 0");
      await py.crash();
      await until(() => reasons.length === 1, 5_000, "the disconnect");
      // a killed process closes its sockets: FIN, or RST when our bytes were still unread there
      match(reasons[0], /^(closed by the peer|read failed: Connection reset by peer.*)$/);
      await until(() => retries.length >= 5, 5_000, "five refused reconnects");
      // exponential back-off from 20 ms, capped at 160 ms
      assertEquals(retries.slice(0, 5), [20, 40, 80, 160, 160]);
      py = await PyPeer.start([
        "router-bind",
        "curve",
        "--address",
        address,
        ...pyArgs("curve", k),
      ]);
      await until(() => connects === 2, 5_000, "the reconnect");
      // what the old connection had not delivered is gone with it; new messages flow
      await d.send([enc.encode("after")]);
      let body = "";
      while (body !== "after") body = dec.decode((await d.receive())[0]);
    } finally {
      await d.close();
      await py.stop();
    }
  },
);

interop(
  "a libzmq DEALER reconnects to our ROUTER restarted on the same port, and after its own restart",
  async () => {
    const k = keys();
    let r = new Router(ourServer("curve", k));
    const address = await r.bind("tcp://127.0.0.1:*");
    const args = [
      "dealer-connect",
      "curve",
      "--address",
      address,
      "--identity",
      "py",
      ...pyArgs("curve", k),
    ];
    const connected = next((l) => r.on("connect", l), 10_000, "connect");
    let py = await PyPeer.start(args);
    try {
      const id = enc.encode("py");
      await connected;
      await r.send([id, enc.encode("one")]);
      assertEquals(dec.decode((await r.receive())[1]), "one");
      // our side restarts on the same port: libzmq's reconnect finds the new socket
      await r.close();
      r = new Router(ourServer("curve", k));
      const reconnected = next((l) => r.on("connect", l), 10_000, "reconnect to our new ROUTER");
      await r.bind(address);
      await reconnected;
      await r.send([id, enc.encode("two")]);
      assertEquals(dec.decode((await r.receive())[1]), "two");
      // the libzmq side restarts: the same identity is routable again once the old one left
      const gone = next((l) => r.on("disconnect", l), 10_000, "disconnect");
      await py.crash();
      await gone;
      const back = next<[Peer]>((l) => r.on("connect", l), 10_000, "the restarted peer");
      py = await PyPeer.start(args);
      const [peer] = await back;
      assertEquals(dec.decode(peer.routingId), "py");
      await r.send([id, enc.encode("three")]);
      assertEquals(dec.decode((await r.receive())[1]), "three");
    } finally {
      await py.stop();
      await r.close();
    }
  },
);

/** The first handshake failure of `sock` (with a deadline). */
function firstFailure(sock: Dealer | Router): Promise<HandshakeError> {
  return next<[string, HandshakeError]>(
    (l) => sock.on("handshakeFailed", l),
    10_000,
    "handshakeFailed",
  )
    .then(([, e]) => e);
}

interop("handshake: a wrong server key fails cleanly, naming the cause, both ways", async () => {
  const k = keys();
  const other = curveKeyPairZ85();
  // our client holds a key that is not the libzmq server's
  const py = await PyPeer.start(["router-bind", "curve", ...pyArgs("curve", k)]);
  const d = new Dealer({ curveServerKey: other.publicKey, curveSecretKey: k.client.secretKey });
  try {
    const failed = firstFailure(d);
    d.connect(py.endpoint);
    const e = await failed;
    assertEquals(e.failure, "server-key");
    match(e.message, /server public key/);
    assertEquals(d.connectedPeers(), []);
  } finally {
    await d.close();
    await py.stop();
  }
  // a libzmq client holds a key that is not our server's
  const r = new Router({ curveServer: true, curveSecretKey: k.server.secretKey });
  const address = await r.bind("tcp://127.0.0.1:*");
  const failed = firstFailure(r);
  const py2 = await PyPeer.start([
    "dealer-connect",
    "curve",
    "--address",
    address,
    ...pyArgs("curve", { server: other, client: k.client }),
  ]);
  try {
    const e = await failed;
    assertEquals(e.failure, "crypto");
    match(e.message, /another server public key/);
    assertEquals(r.connectedPeers(), []);
  } finally {
    await py2.stop();
    await r.close();
  }
});

interop(
  "handshake: an unauthorized client key is refused (our authorizer; libzmq's ZAP)",
  async () => {
    const k = keys();
    const asked: string[] = [];
    const r = new Router({
      curveServer: true,
      curveSecretKey: k.server.secretKey,
      authorize: (req) => {
        asked.push(z85Encode(req.clientKey!));
        return "client key not registered";
      },
    });
    const address = await r.bind("tcp://127.0.0.1:*");
    const failed = firstFailure(r);
    const py = await PyPeer.start([
      "dealer-connect",
      "curve",
      "--address",
      address,
      "--monitor",
      ...pyArgs("curve", k),
    ]);
    try {
      const e = await failed;
      assertEquals(e.failure, "unauthorized");
      assertEquals(e.message, "client key not registered");
      assertEquals(asked[0], k.client.publicKey);
      assertEquals(r.connectedPeers(), []);
      // the libzmq side is disconnected without ever completing a handshake (libzmq 4.3
      // raises HANDSHAKE_FAILED_AUTH only for a ZAP status code as the ERROR reason)
      await py.waitLine((l) => l.startsWith("EVENT EVENT_DISCONNECTED"), 10_000);
      assert(!py.lines.some((l) => l.startsWith("EVENT EVENT_HANDSHAKE_SUCCEEDED")));
    } finally {
      await py.stop();
      await r.close();
    }
    // libzmq's ZAP admits only another key
    const py2 = await PyPeer.start([
      "router-bind",
      "curve",
      "--allow",
      curveKeyPairZ85().publicKey,
      ...pyArgs("curve", k),
    ]);
    const d = new Dealer(ourClient("curve", k));
    try {
      const failed2 = firstFailure(d);
      d.connect(py2.endpoint);
      const e = await failed2;
      assertEquals(e.failure, "refused-by-peer");
      match(e.message, /refused us: not authorized .*ZAP status 400/);
    } finally {
      await d.close();
      await py2.stop();
    }
  },
);

interop(
  "handshake: a mechanism mismatch fails cleanly, naming the cause, both ways",
  async () => {
    const k = keys();
    const py = await PyPeer.start(["router-bind", "curve", ...pyArgs("curve", k)]);
    const d = new Dealer();
    try {
      const failed = firstFailure(d);
      d.connect(py.endpoint);
      const e = await failed;
      assertEquals(e.failure, "mechanism-mismatch");
      // libzmq hangs up on our greeting without finishing its own: it never names its mechanism
      match(e.message, /does not accept the NULL security mechanism \(mechanism mismatch\)/);
    } finally {
      await d.close();
      await py.stop();
    }
    const r = new Router(ourServer("curve", k));
    const address = await r.bind("tcp://127.0.0.1:*");
    const failed = firstFailure(r);
    const py2 = await PyPeer.start(["dealer-connect", "null", "--address", address]);
    try {
      const e = await failed;
      assertEquals(e.failure, "mechanism-mismatch");
      match(e.message, /does not accept the CURVE security mechanism \(mechanism mismatch\)/);
    } finally {
      await py2.stop();
      await r.close();
    }
  },
);

interop(
  "heartbeats: we answer libzmq's PINGs; ours time out a SIGSTOPped libzmq peer",
  async () => {
    for (const mech of MECHS) {
      const k = keys();
      const py = await PyPeer.start([
        "router-bind",
        mech,
        "--hb-ivl",
        "100",
        "--hb-timeout",
        "400",
        "--hb-ttl",
        "500",
        "--monitor",
        ...pyArgs(mech, k),
      ]);
      const d = new Dealer(ourClient(mech, k, { heartbeatInterval: 100, heartbeatTimeout: 600 }));
      const reasons: string[] = [];
      d.on("disconnect", (_p, why) => reasons.push(why));
      try {
        d.connect(py.endpoint);
        await d.send([enc.encode("hi")]);
        await d.receive();
        // libzmq's PING carries its TTL (500 ms): that we hold it proves the PINGs arrive
        const conn = (d.connectedPeers()[0] as unknown as { conn: { peerTtl: number } }).conn;
        await until(() => conn.peerTtl === 500, 3_000, "libzmq's PING");
        // an idle window of several libzmq timeouts: our PONGs (and PINGs) keep both sides up
        await new Promise((r) => setTimeout(r, 1_200));
        assertEquals(reasons, []);
        assert(!py.lines.some((l) => l.includes("DISCONNECTED")), py.lines.join("\n"));
        await d.send([enc.encode("still")]);
        assertEquals(dec.decode((await d.receive())[0]), "still");
        // a stopped peer answers nothing: dropped after our heartbeat timeout
        py.kill("SIGSTOP");
        await until(() => reasons.length > 0, 5_000, "the heartbeat timeout");
        const silentMs = Number(
          /^heartbeat timeout: nothing received for (\d+) ms$/.exec(reasons[0])?.[1],
        );
        // libzmq's TTL (500 ms) is shorter than our own timeout (600 ms): it applies
        assert(silentMs >= 500, `dropped after ${silentMs} ms of silence: ${reasons[0]}`);
      } finally {
        await d.close();
        await py.stop();
      }
    }
  },
);

interop("max message size: a larger message closes that connection, with the reason", async () => {
  for (const mech of MECHS) {
    const k = keys();
    const py = await PyPeer.start(["router-bind", mech, ...pyArgs(mech, k)]);
    const d = new Dealer(ourClient(mech, k, { maxMessageSize: 1000, reconnectInterval: 5_000 }));
    const reasons: string[] = [];
    d.on("disconnect", (_p, why) => reasons.push(why));
    try {
      d.connect(py.endpoint);
      await d.send([new Uint8Array(600), new Uint8Array(400)]); // exactly the limit: fine
      assertEquals((await d.receive()).map((f) => f.length), [600, 400]);
      await d.send([new Uint8Array(600), new Uint8Array(401)]); // echoed back: too big
      await until(() => reasons.length > 0, 5_000, "the disconnect");
      match(reasons[0], /more than 1000 bytes \(maxMessageSize\)/);
    } finally {
      await d.close();
      await py.stop();
    }
  }
});

interop(
  "high-water mark: send() waits while libzmq is stopped; nothing dropped, order kept",
  async () => {
    const N = 300;
    const py = await PyPeer.start(["router-bind", "null"]);
    const d = new Dealer({ sendHighWaterMark: 8 });
    try {
      d.connect(py.endpoint);
      await d.send([enc.encode("warm-up")]);
      await d.receive();
      py.kill("SIGSTOP");
      const body = new Uint8Array(64 * 1024);
      let sent = 0;
      const sending = (async () => {
        for (let i = 0; i < N; i++) {
          await d.send([enc.encode(String(i)), body]);
          sent++;
        }
      })();
      const peer = d.connectedPeers()[0];
      await until(() => peer.queued >= 8, 10_000, "the high-water mark");
      const stalledAt = sent;
      assert(stalledAt < N, "every send completed although the peer was stopped");
      assertEquals(d.trySend([enc.encode("x")]), false);
      py.kill("SIGCONT");
      await sending;
      for (let i = 0; i < N; i++) {
        const [seq, b] = await d.receive();
        assertEquals(dec.decode(seq), String(i));
        assertEquals(b.length, body.length);
      }
    } finally {
      await d.close();
      await py.stop();
    }
  },
);
