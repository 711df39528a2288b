// Our ZMTP transport (src/io/zmtp/) on its own: the wire codec, Z85, the CURVE and NULL
// handshake state machines, and our DEALER/ROUTER sockets over loopback (routing ids,
// handover, mandatory routing, reconnect back-off, heartbeats, timeouts, close). Deno's
// op and resource sanitizers stay on: a close that leaves a timer, a read or a socket
// behind fails the test.
import {
  deepStrictEqual as assertEquals,
  match,
  ok as assert,
  rejects,
  throws,
} from "node:assert/strict";
import {
  checkSignature,
  decodeCommand,
  decodeMetadata,
  encodeCommand,
  encodeFrame,
  encodeGreeting,
  encodeMetadata,
  type Frame,
  FrameDecoder,
  parseGreeting,
  ZmtpProtocolError,
} from "../../src/io/zmtp/codec.ts";
import { curveKeyPair, curvePublicKey } from "../../src/io/zmtp/box.ts";
import { CurveClient, CurveServer } from "../../src/io/zmtp/curve.ts";
import {
  type Authorizer,
  type HandshakeContext,
  HandshakeError,
  NullMechanism,
} from "../../src/io/zmtp/mechanism.ts";
import {
  Dealer,
  HostUnreachableError,
  type Peer,
  Router,
  SocketClosedError,
} from "../../src/io/zmtp/mod.ts";
import { z85Decode, z85Encode } from "../../src/protocol/z85.ts";
import { Rand } from "../fuzz/_rand.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ---------------------------------------------------------------------------- codec

function frameList(rand: Rand): { body: Uint8Array; more: boolean; command: boolean }[] {
  const sizes = [0, 1, 254, 255, 256, 257, 1000, 65_535, 65_536, 70_001];
  return Array.from({ length: 40 }, (_, i) => {
    const n = i < sizes.length ? sizes[i] : rand.pick(sizes);
    return { body: rand.bytes(n), more: rand.next() < 0.5, command: rand.next() < 0.2 };
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("codec: FrameDecoder returns the same frames for any chunking of the stream", () => {
  const rand = new Rand(1207);
  const frames = frameList(rand);
  const wire = concat(frames.map((f) => encodeFrame(f.body, f.more, f.command)));
  const cuts: ((left: number) => number)[] = [
    () => wire.length, // all at once
    () => 1, // byte by byte (headers split everywhere)
    () => 1 + rand.int(300), // small random chunks
    () => 1 + rand.int(100_000), // large random chunks
    (left) => Math.min(left, 9), // exactly a long header at a time
  ];
  for (const cut of cuts) {
    const d = new FrameDecoder(1 << 20);
    const got: Frame[] = [];
    for (let at = 0; at < wire.length;) {
      const n = Math.min(cut(wire.length - at), wire.length - at);
      got.push(...d.push(wire.subarray(at, at + n)));
      at += n;
    }
    assertEquals(got.length, frames.length);
    got.forEach((f, i) => {
      assertEquals([f.more, f.command, f.body.length], [
        frames[i].more,
        frames[i].command,
        frames[i].body.length,
      ]);
      assertEquals(f.body, frames[i].body);
    });
  }
});

Deno.test("codec: short and long frame headers (255 | 256 bytes), and a long header for a short body", () => {
  assertEquals([...encodeFrame(new Uint8Array(255), true).subarray(0, 2)], [1, 255]);
  assertEquals(
    [...encodeFrame(new Uint8Array(256), false, true).subarray(0, 9)],
    [6, 0, 0, 0, 0, 0, 0, 1, 0],
  );
  // RFC 37 lets a sender use the long form for any size
  const d = new FrameDecoder(100);
  const [f] = d.push(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 3, 7, 8, 9]));
  assertEquals([...f.body], [7, 8, 9]);
  // a 0-byte frame in both forms
  assertEquals(d.push(new Uint8Array([1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0])).length, 2);
});

Deno.test("codec: an oversize frame is refused from its header, before allocating its body", () => {
  const huge: [Uint8Array, RegExp][] = [
    [new Uint8Array([0, 101]), /frame of 101 bytes exceeds the limit of 100 bytes/],
    [new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 101]), /frame of 101 bytes/],
    [new Uint8Array([2, 0, 0, 0, 0x40, 0, 0, 0, 0]), /frame of 274877906944 bytes/], // 256 GiB
    [new Uint8Array([2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), /over 2\^53/],
  ];
  for (const [head, why] of huge) {
    throws(() => new FrameDecoder(100).push(head), (e: Error) => {
      assert(e instanceof ZmtpProtocolError);
      match(e.message, why);
      return true;
    });
    // the same, one header byte at a time
    const d = new FrameDecoder(100);
    throws(() => {
      for (const b of head) d.push(new Uint8Array([b]));
    }, why);
  }
  throws(() => new FrameDecoder(100).push(new Uint8Array([0x08, 0])), /invalid frame flags 0x8/);
  throws(() => new FrameDecoder(100).push(new Uint8Array([0xff])), /invalid frame flags/);
});

Deno.test("codec: an over-limit header after frames of the same chunk is held until pushed again", () => {
  const d = new FrameDecoder(100);
  const ready = encodeFrame(encodeCommand("READY"), false, true);
  const big = encodeFrame(new Uint8Array(1000).fill(7), false);
  const wire = concat([ready, big]);
  for (const cut of [wire.length, ready.length + 9, ready.length + 20, ready.length + 5]) {
    const dd = new FrameDecoder(100);
    const first = dd.push(wire.subarray(0, cut));
    assertEquals(first.length, 1);
    // a header that is complete is held; a partial one is only judged once complete
    assertEquals(dd.held, cut >= ready.length + 9, `cut ${cut}`);
    dd.maxFrame = 2000; // what a connection does once the handshake is done
    const rest = [...dd.push(new Uint8Array(0)), ...dd.push(wire.subarray(cut))];
    assertEquals(rest.length, 1);
    assertEquals(rest[0].body.length, 1000);
    assert(!dd.held);
  }
  // without a raised limit the held header is refused on the next push
  assertEquals(d.push(wire).length, 1);
  throws(() => d.push(new Uint8Array(0)), /frame of 1000 bytes exceeds the limit of 100 bytes/);
});

Deno.test("codec: greeting, commands and metadata", () => {
  const g = encodeGreeting("CURVE", true);
  assertEquals(g.length, 64);
  assertEquals(parseGreeting(g), { major: 3, minor: 1, mechanism: "CURVE", asServer: true });
  checkSignature(g);
  const bad = g.slice();
  bad[0] = 0x00;
  throws(() => checkSignature(bad), /not a ZMTP peer/);
  const old = g.slice();
  old[10] = 2;
  throws(() => parseGreeting(old), /ZMTP 2\.1; 3\.0 or later is required/);
  assertEquals(decodeCommand(encodeCommand("PING", new Uint8Array([0, 1]))).name, "PING");
  throws(() => decodeCommand(new Uint8Array([5, 65])), /malformed command/);
  throws(() => decodeCommand(new Uint8Array([0])), /malformed command/);
  const m = decodeMetadata(encodeMetadata([["Socket-Type", "ROUTER"], ["Identity", ""]]));
  assertEquals(dec.decode(m.get("socket-type")), "ROUTER");
  assertEquals(m.get("identity")?.length, 0);
  const raw = encodeMetadata([["Identity", "abc"]]);
  throws(() => decodeMetadata(raw.subarray(0, raw.length - 1)), /malformed metadata value/);
  throws(() => decodeMetadata(new Uint8Array([3, 65, 32, 66, 0, 0, 0, 0])), /property name/);
});

// ---------------------------------------------------------------------------- Z85

Deno.test("z85: known vectors (RFC 32 and libzmq's own key pair)", () => {
  const hello = new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
  assertEquals(z85Encode(hello), "HelloWorld");
  assertEquals(z85Decode("HelloWorld"), hello);
  // vectors produced by libzmq 4.3.4 / pyzmq (zmq_z85_encode, zmq_curve_keypair)
  const seq = Uint8Array.from({ length: 32 }, (_, i) => i);
  assertEquals(z85Encode(seq), "009c61o!#m2NH?C3>iWS5d]J*6CRx17-skh9337x");
  assertEquals(z85Decode("009c61o!#m2NH?C3>iWS5d]J*6CRx17-skh9337x"), seq);
  assertEquals(z85Encode(new Uint8Array(8).fill(0xff)), "%nSc0%nSc0");
  assertEquals(z85Encode(new Uint8Array(4)), "00000");
  // libzmq's pair: our X25519 + Z85 derive the same public key from its secret key
  const libzmq = {
    publicKey: "E+&<Dd*XW.S?8+/G7L[I]jazgO}9./F)oR3T1}:R",
    secretKey: "qctg7]@l&1yX5+$UXuF4kECa%<KDzg&rUVD@pL8*",
  };
  assertEquals(curvePublicKey(libzmq.secretKey), libzmq.publicKey);
  assertEquals(z85Encode(z85Decode(libzmq.publicKey)), libzmq.publicKey);
  const rand = new Rand(85);
  for (let i = 0; i < 200; i++) {
    const b = rand.bytes(4 * rand.int(20));
    assertEquals(z85Decode(z85Encode(b)), b);
  }
});

Deno.test("z85: bad input is refused with a reason", () => {
  throws(() => z85Encode(new Uint8Array(3)), /multiple of 4/);
  throws(() => z85Decode("abcd"), /multiple of 5/);
  throws(() => z85Decode("abcd~"), /invalid character at 4/);
  throws(() => z85Decode("abcdé"), /invalid character at 4/);
  throws(() => z85Decode("#####"), /out of range at 0/);
});

// ---------------------------------------------------------------------------- mechanisms

function ctx(
  socketType: "DEALER" | "ROUTER",
  identity = "",
  authorize?: Authorizer,
): HandshakeContext {
  return { socketType, identity: enc.encode(identity), peerAddress: "127.0.0.1:1", authorize };
}

/** The body inside a wire frame made by `Mechanism.encode`. */
function body(wire: Uint8Array): Uint8Array {
  return new FrameDecoder(1 << 24).push(wire)[0].body;
}

async function curvePair(authorize?: Authorizer) {
  const s = curveKeyPair(), c = curveKeyPair();
  const client = new CurveClient(ctx("DEALER", "cli"), { ...c, serverKey: s.publicKey });
  const server = new CurveServer(ctx("ROUTER", "", authorize), s);
  const [hello] = client.start();
  const welcome = await server.onCommand(hello);
  const initiate = await client.onCommand(welcome.send[0]);
  const ready = await server.onCommand(initiate.send[0]);
  return { s, c, client, server, hello, welcome, initiate, ready };
}

Deno.test("curve: a full handshake; messages both ways; metadata and keys known", async () => {
  const { c, client, server, ready } = await curvePair();
  assert(ready.done);
  assert((await client.onCommand(ready.send[0])).done);
  assertEquals(dec.decode(server.peerMetadata.get("identity")), "cli");
  assertEquals(dec.decode(client.peerMetadata.get("socket-type")), "ROUTER");
  assertEquals(server.peerKey, c.publicKey);
  for (const [from, to] of [[client, server], [server, client]] as const) {
    for (const [b, more] of [[enc.encode("x"), true], [new Uint8Array(0), false]] as const) {
      const got = to.decode(body(from.encode(b, more, false)));
      assertEquals([got.body, got.more, got.command], [b, more, false]);
    }
  }
});

Deno.test("curve: a replayed or reordered MESSAGE is refused (nonces strictly increase)", async () => {
  const { client, server, ready } = await curvePair();
  await client.onCommand(ready.send[0]);
  const m1 = body(client.encode(enc.encode("1"), false, false));
  const m2 = body(client.encode(enc.encode("2"), false, false));
  const m3 = body(client.encode(enc.encode("3"), false, false));
  server.decode(m1);
  server.decode(m3);
  throws(() => server.decode(m2), (e: HandshakeError) => {
    assertEquals(e.failure, "protocol");
    match(e.message, /MESSAGE: nonce not increasing/);
    return true;
  });
  throws(() => server.decode(m3), /nonce not increasing/);
  // a MESSAGE with a changed byte does not open
  const m4 = body(client.encode(enc.encode("4"), false, false));
  m4[m4.length - 1] ^= 1;
  throws(() => server.decode(m4), (e: HandshakeError) => e.failure === "crypto");
  // the server's own direction cannot be fed back to it (other nonce prefix)
  const echo = body(server.encode(enc.encode("5"), false, false));
  throws(() => server.decode(echo), HandshakeError);
});

Deno.test("curve: a replayed HELLO or INITIATE is refused", async () => {
  const { server, hello, initiate, s } = await curvePair();
  await rejects(async () => await server.onCommand(hello), /unexpected HELLO/);
  await rejects(async () => await server.onCommand(initiate.send[0]), /unexpected INITIATE/);
  // a second server (same long-term key) given the old INITIATE: not its cookie
  const other = new CurveServer(ctx("ROUTER"), s);
  await other.onCommand(hello);
  await rejects(async () => await other.onCommand(initiate.send[0]), (e: HandshakeError) => {
    assertEquals(e.failure, "crypto");
    match(e.message, /cookie that is not ours/);
    return true;
  });
});

Deno.test("curve: a wrong server key: the server sends ERROR, the client names the cause", async () => {
  const s = curveKeyPair(), c = curveKeyPair(), wrong = curveKeyPair();
  const client = new CurveClient(ctx("DEALER"), { ...c, serverKey: wrong.publicKey });
  const server = new CurveServer(ctx("ROUTER"), s);
  const step = await server.onCommand(client.start()[0]);
  assertEquals(step.fail?.failure, "crypto");
  match(step.fail!.message, /another server public key/);
  assertEquals(decodeCommand(step.send[0]).name, "ERROR");
  await rejects(async () => await client.onCommand(step.send[0]), (e: HandshakeError) => {
    assertEquals(e.failure, "server-key");
    return true;
  });
  // and a client that hears nothing back says so
  assertEquals(client.closedError().failure, "server-key");
});

Deno.test("curve: the authorizer refuses a client key; the client hears ZAP's 400", async () => {
  const seen: Uint8Array[] = [];
  const { c, client, ready } = await curvePair((req) => {
    seen.push(req.clientKey!);
    return "not on the list";
  });
  assertEquals(seen, [c.publicKey]);
  assertEquals(ready.fail?.failure, "unauthorized");
  assertEquals(ready.fail?.message, "not on the list");
  await rejects(async () => await client.onCommand(ready.send[0]), (e: HandshakeError) => {
    assertEquals(e.failure, "refused-by-peer");
    // the status code libzmq understands, not the authorizer's own text
    match(e.message, /not authorized .*ZAP status 400/);
    return true;
  });
  // an authorizer that throws refuses too
  const thrown = await curvePair(() => {
    throw new Error("db down");
  });
  assertEquals(thrown.ready.fail?.message, "authorizer failed: db down");
});

Deno.test("curve: malformed and low-order HELLOs are refused as protocol or crypto errors", async () => {
  const s = curveKeyPair();
  const hello = new CurveClient(ctx("DEALER"), { ...curveKeyPair(), serverKey: s.publicKey })
    .start()[0];
  const short = hello.slice(0, hello.length - 1);
  await rejects(
    async () => await new CurveServer(ctx("ROUTER"), s).onCommand(short),
    /malformed HELLO/,
  );
  const v2 = hello.slice();
  v2[6] = 2; // "HELLO" is 5 bytes after the length byte: data starts at 6
  await rejects(async () => await new CurveServer(ctx("ROUTER"), s).onCommand(v2), /version 2\.0/);
  const zeroKey = hello.slice();
  zeroKey.fill(0, 6 + 74, 6 + 106); // C' = 0: a low-order point
  await rejects(
    async () => await new CurveServer(ctx("ROUTER"), s).onCommand(zeroKey),
    (e: HandshakeError) => e.failure === "crypto",
  );
});

Deno.test("null: READY both ways; socket types checked; the authorizer runs before READY", async () => {
  const a = new NullMechanism(ctx("DEALER", "me"));
  const b = new NullMechanism(ctx("ROUTER", "", () => true), true);
  assertEquals(b.start(), []); // nothing before the authorizer said yes
  const stepB = await b.onCommand(a.start()[0]);
  assert(stepB.done);
  assert((await a.onCommand(stepB.send[0])).done);
  assertEquals(dec.decode(b.peerMetadata.get("identity")), "me");
  const pub = encodeCommand("READY", encodeMetadata([["Socket-Type", "PUB"]]));
  await rejects(
    async () => await new NullMechanism(ctx("ROUTER")).onCommand(pub),
    (e: HandshakeError) => e.failure === "socket-type" && /a PUB peer/.test(e.message),
  );
  const refuser = new NullMechanism(ctx("ROUTER", "", () => "go away"), true);
  const r = await refuser.onCommand(new NullMechanism(ctx("DEALER")).start()[0]);
  assertEquals(r.fail?.failure, "unauthorized");
  await rejects(
    async () => await new NullMechanism(ctx("DEALER")).onCommand(r.send[0]),
    /peer refused us: not authorized .*ZAP status 400/,
  );
});

// ---------------------------------------------------------------------------- sockets

function nextEvent<T extends unknown[]>(
  on: (l: (...a: T) => void) => () => void,
  ms = 5_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no event within ${ms} ms`));
    }, ms);
    const off = on((...a: T) => {
      clearTimeout(timer);
      off();
      resolve(a);
    });
  });
}

Deno.test("router: routing ids from Identity, generated ids, no take-over without handover", async () => {
  const r = new Router();
  const address = await r.bind("tcp://127.0.0.1:*");
  const peers: Peer[] = [];
  r.on("connect", (p) => peers.push(p));
  const d1 = new Dealer({ routingId: "w" });
  const d2 = new Dealer({ routingId: "w" });
  const d3 = new Dealer();
  const d4 = new Dealer({ routingId: new Uint8Array([0, 1, 2]) });
  try {
    d1.connect(address);
    await until(() => peers.length === 1, 5_000, "d1");
    for (const d of [d2, d3, d4]) d.connect(address);
    await until(() => peers.length === 4, 5_000, "d2..d4");
    assertEquals(dec.decode(peers[0].routingId), "w");
    for (const p of peers.slice(1)) {
      // a taken id, none, and one starting with 0 (ours to generate): a generated 5-byte id
      assertEquals(p.routingId.length, 5);
      assertEquals(p.routingId[0], 0);
    }
    assertEquals(new Set(peers.map((p) => p.routingId.join(","))).size, 4);
    await r.send([enc.encode("w"), enc.encode("to d1")]);
    assertEquals(dec.decode((await d1.receive())[0]), "to d1");
    await d3.send([enc.encode("from d3")]);
    const [id, b] = await r.receive();
    assertEquals(dec.decode(b), "from d3");
    assert(r.peer(id) !== undefined);
  } finally {
    for (const d of [d1, d2, d3, d4]) await d.close();
    await r.close();
  }
});

Deno.test("router: handover gives a routing id to the new connection and closes the old one", async () => {
  const r = new Router({ handover: true });
  const address = await r.bind("tcp://127.0.0.1:*");
  const d1 = new Dealer({ routingId: "w", reconnectInterval: 60_000 });
  const d2 = new Dealer({ routingId: "w" });
  try {
    const c1 = nextEvent<[Peer]>((l) => r.on("connect", l));
    d1.connect(address);
    const [p1] = await c1;
    const gone = nextEvent<[Peer, string]>((l) => r.on("disconnect", l));
    const c2 = nextEvent<[Peer]>((l) => r.on("connect", l));
    d2.connect(address);
    const [p2] = await c2;
    const [old, why] = await gone;
    assertEquals(old, p1);
    assertEquals(why, "routing id handed over to a new connection");
    assertEquals(dec.decode(p2.routingId), "w");
    assertEquals(r.peer(enc.encode("w")), p2);
    await r.send([enc.encode("w"), enc.encode("to d2")]);
    assertEquals(dec.decode((await d2.receive())[0]), "to d2");
  } finally {
    await d1.close();
    await d2.close();
    await r.close();
  }
});

Deno.test("router: mandatory routing throws EHOSTUNREACH; non-mandatory drops", async () => {
  const r = new Router();
  throws(() => r.trySend([enc.encode("nobody"), new Uint8Array(1)]), (e: HostUnreachableError) => {
    assert(e instanceof HostUnreachableError);
    assertEquals(e.code, "EHOSTUNREACH");
    match(e.message, /no peer with routing id "nobody"/);
    return true;
  });
  await rejects(r.send([new Uint8Array([0, 255]), new Uint8Array(1)]), /routing id 0x00ff/);
  throws(() => r.trySend([enc.encode("only-id")]), /needs a routing id and a body/);
  await r.close();
  const lax = new Router({ mandatory: false });
  await lax.send([enc.encode("nobody"), new Uint8Array(1)]);
  await lax.close();
});

Deno.test("an empty message is refused, and does not take a place in the peer's queue", async () => {
  const r = new Router();
  const address = await r.bind("tcp://127.0.0.1:*");
  const d = new Dealer({ sendHighWaterMark: 2 });
  try {
    d.connect(address);
    await d.send([enc.encode("first")]);
    await r.receive();
    for (let i = 0; i < 3; i++) {
      throws(() => d.trySend([]), /a message needs at least one frame/);
      await rejects(d.send([]), TypeError);
      throws(() => d.connectedPeers()[0].trySend([]), TypeError);
    }
    await until(() => d.connectedPeers()[0].queued === 0, 2_000, "an empty queue");
    await d.send([enc.encode("after")]);
    assertEquals(dec.decode((await r.receive())[1]), "after");
  } finally {
    await d.close();
    await r.close();
  }
});

Deno.test("dealer: reconnect back-off doubles up to its maximum, then connects when the peer comes", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const d = new Dealer({ reconnectInterval: 10, reconnectIntervalMax: 80 });
  const retries: number[] = [];
  d.on("connectFailed", (address, e, ms) => {
    assertEquals(address, `tcp://127.0.0.1:${port}`);
    assert(e instanceof Error);
    retries.push(ms);
  });
  const r = new Router();
  try {
    d.connect(`tcp://127.0.0.1:${port}`);
    await until(() => retries.length >= 6, 5_000, "six refused connects");
    assertEquals(retries.slice(0, 6), [10, 20, 40, 80, 80, 80]);
    const connected = nextEvent((l) => d.on("connect", l));
    await r.bind(`tcp://127.0.0.1:${port}`);
    await connected;
    await d.send([enc.encode("late")]);
    assertEquals(dec.decode((await r.receive())[1]), "late");
  } finally {
    await d.close();
    await r.close();
  }
});

Deno.test("close: pending receive and send reject, later calls refuse, nothing is left running", async () => {
  const d = new Dealer({ reconnectInterval: 10 });
  d.connect("tcp://127.0.0.1:1"); // refused forever: a reconnect loop to stop
  const pendingReceive = rejects(d.receive(), SocketClosedError);
  const pendingSend = rejects(d.send([enc.encode("never")]), SocketClosedError);
  await d.close();
  await pendingReceive;
  await pendingSend;
  await rejects(d.receive(), SocketClosedError);
  await rejects(d.send([new Uint8Array(1)]), SocketClosedError);
  await rejects(d.bind("tcp://127.0.0.1:*"), SocketClosedError);
  throws(() => d.connect("tcp://127.0.0.1:1"), SocketClosedError);
  assertEquals(d.trySend([new Uint8Array(1)]), false);
  await d.close(); // twice is fine
  const messages: Uint8Array[][] = [];
  for await (const m of d) messages.push(m);
  assertEquals(messages, []);
});

Deno.test("close: a closed ROUTER's port is free at once; its peers see the disconnect", async () => {
  const r = new Router({ heartbeatInterval: 50 });
  const address = await r.bind("tcp://127.0.0.1:*");
  const d = new Dealer({ reconnectInterval: 20, heartbeatInterval: 50 });
  try {
    const up = nextEvent((l) => d.on("connect", l));
    d.connect(address);
    await up;
    const down = nextEvent<[Peer, string]>((l) => d.on("disconnect", l));
    await r.close();
    assertEquals((await down)[1], "closed by the peer");
    // the same port at once (Deno frees a listener only once its pending accept returned)
    const r2 = new Router();
    try {
      const again = nextEvent((l) => d.on("connect", l));
      await r2.bind(address);
      await again;
    } finally {
      await r2.close();
    }
  } finally {
    await d.close();
  }
});

Deno.test("close: linger lets queued messages out first", async () => {
  const r = new Router();
  const address = await r.bind("tcp://127.0.0.1:*");
  const d = new Dealer();
  d.connect(address);
  const n = 200;
  for (let i = 0; i < n; i++) await d.send([enc.encode(String(i)), new Uint8Array(10_000)]);
  await d.close({ linger: 5_000 });
  for (let i = 0; i < n; i++) assertEquals(dec.decode((await r.receive())[1]), String(i));
  await r.close();
});

/** A raw TCP peer that completes a NULL handshake as a DEALER and then stays silent. */
async function silentNullPeer(address: string): Promise<Deno.TcpConn> {
  const port = Number(address.split(":").pop());
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  await c.write(encodeGreeting("NULL", false));
  await c.write(
    encodeFrame(encodeCommand("READY", encodeMetadata([["Socket-Type", "DEALER"]])), false, true),
  );
  return c;
}

Deno.test("a large first message in the same TCP read as the peer's READY is delivered", async () => {
  // the handshake's frame limit (64 KiB) must not apply to a message right after READY
  const r = new Router();
  const address = await r.bind("tcp://127.0.0.1:*");
  const port = Number(address.split(":").pop());
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const ready = encodeCommand("READY", encodeMetadata([["Socket-Type", "DEALER"]]));
    const all = concat([
      encodeGreeting("NULL", false),
      encodeFrame(ready, false, true),
      encodeFrame(new Uint8Array(100_000).fill(3), false),
    ]);
    for (let off = 0; off < all.length;) off += await c.write(all.subarray(off));
    const [, body] = await r.receive();
    assertEquals(body.length, 100_000);
  } finally {
    c.close();
    await r.close();
  }
});

Deno.test("a peer that writes its greeting, READY and a message one byte at a time is understood", async () => {
  const r = new Router();
  const address = await r.bind("tcp://127.0.0.1:*");
  const c = await Deno.connect({ hostname: "127.0.0.1", port: Number(address.split(":").pop()) });
  c.setNoDelay(true);
  try {
    const ready = encodeCommand(
      "READY",
      encodeMetadata([["Socket-Type", "DEALER"], ["Identity", "drip"]]),
    );
    const all = concat([
      encodeGreeting("NULL", false),
      encodeFrame(ready, false, true),
      encodeFrame(enc.encode("a"), true),
      encodeFrame(new Uint8Array(300).fill(9), false),
    ]);
    for (let i = 0; i < all.length; i++) await c.write(all.subarray(i, i + 1));
    const [id, a, b] = await r.receive();
    assertEquals([dec.decode(id), dec.decode(a), b.length], ["drip", "a", 300]);
  } finally {
    c.close();
    await r.close();
  }
});

Deno.test("addresses: IPv6 and wildcard binds report the address actually bound", async () => {
  const r = new Router();
  try {
    match(await r.bind("tcp://127.0.0.1:*"), /^tcp:\/\/127\.0\.0\.1:\d+$/);
    let v6: string | undefined;
    try {
      v6 = await r.bind("tcp://[::1]:0");
    } catch { /* no IPv6 loopback on this machine */ }
    if (v6) {
      match(v6, /^tcp:\/\/\[::1\]:\d+$/);
      const d = new Dealer({ routingId: "six" });
      try {
        d.connect(v6);
        await d.send([enc.encode("over v6")]);
        const [id, body] = await r.receive();
        assertEquals([dec.decode(id), dec.decode(body)], ["six", "over v6"]);
      } finally {
        await d.close();
      }
    }
    await rejects(
      r.bind("tcp://127.0.0.1"),
      /invalid address "tcp:\/\/127\.0\.0\.1": expected tcp:\/\/host:port/,
    );
    await rejects(r.bind("ipc:///tmp/x"), /invalid address/);
    await rejects(r.bind("tcp://127.0.0.1:70000"), /port out of range/);
  } finally {
    await r.close();
  }
});

Deno.test("a message of endless empty parts is refused (bounded memory); 1,000 parts are fine", async () => {
  const r = new Router({ maxMessageSize: 1024 * 1024 });
  const address = await r.bind("tcp://127.0.0.1:*");
  const reasons: string[] = [];
  r.on("disconnect", (_p, why) => reasons.push(why));
  const d = new Dealer();
  const c = await Deno.connect({ hostname: "127.0.0.1", port: Number(address.split(":").pop()) });
  try {
    d.connect(address);
    const many = Array.from({ length: 1000 }, () => new Uint8Array(0));
    await d.send(many);
    assertEquals((await r.receive()).length, 1 + 1000);
    // 0-byte parts cost nothing against maxMessageSize: only the part cap stops them
    const ready = encodeCommand("READY", encodeMetadata([["Socket-Type", "DEALER"]]));
    await c.write(concat([encodeGreeting("NULL", false), encodeFrame(ready, false, true)]));
    const empties = new Uint8Array(2 * 10_000);
    for (let i = 0; i < empties.length; i += 2) empties[i] = 1; // MORE, size 0
    for (let k = 0; k < 10 && reasons.length === 0; k++) {
      try {
        for (let off = 0; off < empties.length;) off += await c.write(empties.subarray(off));
      } catch {
        break; // closed by our side
      }
    }
    await until(() => reasons.length === 1, 5_000, "the disconnect");
    assertEquals(reasons[0], "protocol error: a message of more than 65536 parts");
  } finally {
    c.close();
    await d.close();
    await r.close();
  }
});

Deno.test("heartbeats: a silent peer is dropped after the timeout; a live one is kept", async () => {
  const r = new Router({ heartbeatInterval: 30, heartbeatTimeout: 150 });
  const address = await r.bind("tcp://127.0.0.1:*");
  const reasons: string[] = [];
  r.on("disconnect", (_p, why) => reasons.push(why));
  const live = new Dealer({ heartbeatInterval: 30 });
  let silent: Deno.TcpConn | undefined;
  try {
    live.connect(address);
    silent = await silentNullPeer(address);
    await until(() => r.connectedPeers().length === 2, 5_000, "both peers");
    await until(() => reasons.length === 1, 5_000, "the silent peer's timeout");
    const silentMs = Number(
      /^heartbeat timeout: nothing received for (\d+) ms$/.exec(reasons[0])?.[1],
    );
    assert(silentMs >= 150, `dropped after ${silentMs} ms of silence, before the timeout`);
    // the live DEALER answers PINGs: still there after more than one timeout
    const tLive = performance.now();
    await until(() => performance.now() - tLive > 400, 1_000, "a quiet window");
    assertEquals(reasons.length, 1);
    assertEquals(r.connectedPeers().length, 1);
  } finally {
    silent?.close();
    await live.close();
    await r.close();
  }
});

Deno.test("heartbeats: a peer we stopped reading (receive high-water mark) is kept; nothing is lost", async () => {
  const r = new Router({ receiveHighWaterMark: 4, heartbeatInterval: 30, heartbeatTimeout: 150 });
  const address = await r.bind("tcp://127.0.0.1:*");
  const reasons: string[] = [];
  r.on("disconnect", (_p, why) => reasons.push(why));
  const d = new Dealer({ heartbeatInterval: 30, heartbeatTimeout: 150 });
  d.on("disconnect", (_p, why) => reasons.push(`dealer: ${why}`));
  try {
    d.connect(address);
    const n = 100;
    for (let i = 0; i < n; i++) await d.send([enc.encode(String(i))]);
    // the application does not read for several heartbeat timeouts
    const t0 = performance.now();
    await until(() => performance.now() - t0 > 600, 2_000, "a window without receive()");
    assertEquals(reasons, []);
    for (let i = 0; i < n; i++) assertEquals(dec.decode((await r.receive())[1]), String(i));
  } finally {
    await d.close();
    await r.close();
  }
});

Deno.test("handshake timeout: a peer that never finishes its handshake fails as timeout", async () => {
  const r = new Router({ handshakeTimeout: 100 });
  const address = await r.bind("tcp://127.0.0.1:*");
  const port = Number(address.split(":").pop());
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const [, e] = await nextEvent<[string, HandshakeError]>((l) => r.on("handshakeFailed", l));
    assertEquals(e.failure, "timeout");
    match(e.message, /no complete handshake within 100 ms/);
  } finally {
    c.close();
    await r.close();
  }
});

Deno.test("back-pressure between our own sockets: send() waits, nothing dropped, order kept", async () => {
  const r = new Router({ receiveHighWaterMark: 4 });
  const address = await r.bind("tcp://127.0.0.1:*");
  const d = new Dealer({ sendHighWaterMark: 4 });
  try {
    d.connect(address);
    const n = 2_000;
    const body = new Uint8Array(16_000);
    let sent = 0;
    const sending = (async () => {
      for (let i = 0; i < n; i++) {
        await d.send([enc.encode(String(i)), body]);
        sent++;
      }
    })();
    // nobody receives: the ROUTER stops reading at 4, the kernel fills, the DEALER waits
    await until(() => d.connectedPeers()[0]?.queued >= 4, 10_000, "the DEALER's high-water mark");
    assert(sent < n);
    for (let i = 0; i < n; i++) assertEquals(dec.decode((await r.receive())[1]), String(i));
    await sending;
  } finally {
    await d.close();
    await r.close();
  }
});
