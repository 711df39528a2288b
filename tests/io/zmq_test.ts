// The shared ZeroMQ receive/send module against real zeromq.js sockets. Each receive test is
// built on a condition where a plain pending zeromq.js `receive()` hangs under Deno 2.9
// (measured 10 of 10 runs): the receive starts before the peer connects, so the first edge
// of the socket's fd is the connection/handshake, not the message. Under the old bug these
// tests would hang forever; they assert nothing about time.
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import * as zmq from "zeromq";
import {
  closeSocket,
  kick,
  messages,
  receiveLoop,
  SendQueue,
  sendWhenReady,
  SOCKET_OPTIONS,
  trySend,
} from "../../src/io/zmq.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const opts = { sanitizeOps: false, sanitizeResources: false };

/** A promise with its resolver (resolved by the receive handler). */
function signal<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

Deno.test(
  "receiveLoop: a receive waiting before the first peer connects gets the message",
  opts,
  async () => {
    const router = new zmq.Router(SOCKET_OPTIONS);
    await router.bind("tcp://127.0.0.1:0");
    const got = signal<string>();
    const errors: unknown[] = [];
    const loop = receiveLoop(router, ([, body]) => got.resolve(dec.decode(body)), {
      onError: (e) => errors.push(e),
    });
    // the loop's receive() is pending now; give the connect + ZMTP handshake time to land
    // first, so the first edge on the router's fd is not a message (a setup pause only)
    const dealer = new zmq.Dealer(SOCKET_OPTIONS);
    dealer.connect(router.lastEndpoint!);
    await new Promise((r) => setTimeout(r, 50));
    assert(await sendWhenReady(dealer, [enc.encode("first")]));
    assertEquals(await got.promise, "first");
    await closeSocket(dealer);
    await closeSocket(router);
    await loop.done;
    assertEquals(errors, []);
  },
);

Deno.test("receiveLoop: CURVE handshake before the first message", opts, async () => {
  const server = zmq.curveKeyPair();
  const client = zmq.curveKeyPair();
  const router = new zmq.Router({
    ...SOCKET_OPTIONS,
    curveServer: true,
    curveSecretKey: server.secretKey,
  });
  await router.bind("tcp://127.0.0.1:0");
  const got: string[] = [];
  const all = signal<void>();
  const loop = receiveLoop(router, ([, body]) => {
    got.push(dec.decode(body));
    if (got.length === 3) all.resolve();
  });
  const dealer = new zmq.Dealer({
    ...SOCKET_OPTIONS,
    curveServerKey: server.publicKey,
    curvePublicKey: client.publicKey,
    curveSecretKey: client.secretKey,
  });
  dealer.connect(router.lastEndpoint!);
  await new Promise((r) => setTimeout(r, 50)); // handshake first (setup pause, see above)
  for (const m of ["a", "b", "c"]) assert(await sendWhenReady(dealer, [enc.encode(m)]));
  await all.promise;
  assertEquals(got, ["a", "b", "c"]);
  await closeSocket(dealer);
  await closeSocket(router);
  await loop.done;
});

Deno.test(
  "receiveLoop: peers connecting one by one while a receive waits (many sockets)",
  opts,
  async () => {
    const router = new zmq.Router(SOCKET_OPTIONS);
    await router.bind("tcp://127.0.0.1:0");
    let want = signal<string>();
    const loop = receiveLoop(router, ([id, body]) => {
      // reply on the same socket, as the interchange does
      trySend(router, [id, body]);
      want.resolve(dec.decode(body));
    });
    const dealers: zmq.Dealer[] = [];
    const replies: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      // every new peer is a fresh connection edge on the router while its receive waits
      want = signal<string>();
      const d = new zmq.Dealer(SOCKET_OPTIONS);
      dealers.push(d);
      d.connect(router.lastEndpoint!);
      const echoed = signal<void>();
      // each dealer also waits for its echo before it has sent anything (fresh handshake)
      const dl = receiveLoop(d, ([body]) => {
        if (dec.decode(body) === `m${i}`) echoed.resolve();
      });
      replies.push(echoed.promise.then(() => dl.done.catch(() => {})));
      assert(await sendWhenReady(d, [enc.encode(`m${i}`)]));
      assertEquals(await want.promise, `m${i}`);
      await echoed.promise;
    }
    for (const d of dealers) await closeSocket(d);
    await Promise.all(replies);
    await closeSocket(router);
    await loop.done;
  },
);

Deno.test("receiveLoop: closing the socket ends the loop without an error", opts, async () => {
  const dealer = new zmq.Dealer(SOCKET_OPTIONS);
  dealer.connect("tcp://127.0.0.1:9"); // nobody there: the receive just waits
  const errors: unknown[] = [];
  let calls = 0;
  const loop = receiveLoop(dealer, () => {
    calls++;
  }, { onError: (e) => errors.push(e) });
  await new Promise((r) => setTimeout(r, 30)); // let the shared rescue timer run on it
  await closeSocket(dealer);
  await loop.done;
  kick(dealer); // no-op on a closed socket, must not throw
  assertEquals([errors, calls], [[], 0]);
});

Deno.test(
  "receiveLoop: a plain close() of both peers while receives wait, many times",
  opts,
  async () => {
    // the pattern that crashed Deno 2.9.6 (peer closes, then we do, with a receive waiting;
    // 6 runs in 20 with both cores busy when the close was deferred by one macrotask only):
    // the module closes only after the waiting receive ended and the poll thread is done
    for (let i = 0; i < 40; i++) {
      const router = new zmq.Router(SOCKET_OPTIONS);
      await router.bind("tcp://127.0.0.1:0");
      const dealer = new zmq.Dealer(SOCKET_OPTIONS);
      dealer.connect(router.lastEndpoint!);
      const got = signal<void>();
      const errors: unknown[] = [];
      const a = receiveLoop(router, () => got.resolve(), { onError: (e) => errors.push(e) });
      const b = receiveLoop(dealer, () => {}, { onError: (e) => errors.push(e) });
      assert(await sendWhenReady(dealer, [enc.encode("x")]));
      await got.promise;
      dealer.close();
      router.close();
      await Promise.all([a.done, b.done]);
      assertEquals(errors, []);
    }
  },
);

Deno.test("receiveLoop: stop() stops handing messages to the handler", opts, async () => {
  const router = new zmq.Router(SOCKET_OPTIONS);
  await router.bind("tcp://127.0.0.1:0");
  const dealer = new zmq.Dealer(SOCKET_OPTIONS);
  dealer.connect(router.lastEndpoint!);
  const got: string[] = [];
  const first = signal<void>();
  const loop = receiveLoop(router, ([, b]) => {
    got.push(dec.decode(b));
    first.resolve();
  });
  assert(await sendWhenReady(dealer, [enc.encode("1")]));
  await first.promise;
  await loop.stop();
  await closeSocket(router);
  await loop.done;
  await closeSocket(dealer);
  assertEquals(got, ["1"]);
});

Deno.test("messages(): async iteration with the same wake-up, ends on close", opts, async () => {
  const router = new zmq.Router(SOCKET_OPTIONS);
  await router.bind("tcp://127.0.0.1:0");
  const seen: string[] = [];
  const three = signal<void>();
  const reader = (async () => {
    for await (const [, b] of messages(router)) {
      seen.push(dec.decode(b));
      if (seen.length === 3) three.resolve();
    }
  })();
  const dealer = new zmq.Dealer(SOCKET_OPTIONS);
  dealer.connect(router.lastEndpoint!);
  const q = new SendQueue(dealer);
  for (const m of ["x", "y", "z"]) q.send([enc.encode(m)]);
  await q.flushed();
  await three.promise;
  await closeSocket(router);
  await reader;
  await closeSocket(dealer);
  assertEquals(seen, ["x", "y", "z"]);
});

Deno.test("SendQueue: keeps order while no peer is there, then delivers all", opts, async () => {
  // a bound DEALER has no pipe until a peer connects: nothing is writable, all is queued
  const dealer = new zmq.Dealer(SOCKET_OPTIONS);
  await dealer.bind("tcp://127.0.0.1:0");
  const q = new SendQueue(dealer);
  const n = 2000;
  for (let i = 0; i < n; i++) q.send([enc.encode(String(i))]);
  await new Promise((r) => setTimeout(r, 0)); // the refusals (EAGAIN) are reported async
  assertEquals(q.pendingSends, n);
  const router = new zmq.Router(SOCKET_OPTIONS);
  const got: number[] = [];
  const all = signal<void>();
  const loop = receiveLoop(router, ([, b]) => {
    got.push(Number(dec.decode(b)));
    if (got.length === n) all.resolve();
  });
  router.connect(dealer.lastEndpoint!);
  await q.flushed();
  await all.promise;
  assertEquals(got, Array.from({ length: n }, (_, i) => i));
  assertEquals(q.pendingSends, 0);
  await closeSocket(dealer);
  await closeSocket(router);
  await loop.done;
});

Deno.test("SendQueue: a closed socket drops queued messages with a reason", opts, async () => {
  const dealer = new zmq.Dealer(SOCKET_OPTIONS); // never connected: no pipe, nothing writable
  const drops: string[] = [];
  const q = new SendQueue(dealer, { onDrop: (r) => drops.push(r) });
  q.send([enc.encode("a")]);
  q.send([enc.encode("b")]);
  await closeSocket(dealer);
  await q.flushed();
  assertEquals(drops, ["socket closed", "socket closed"]);
  assertEquals(await sendWhenReady(dealer, [enc.encode("c")]), false);
});

Deno.test("receiveLoop: a blocking sendTimeout is refused with a clear error", opts, async () => {
  const dealer = new zmq.Dealer({ linger: 0 });
  try {
    throws(() => receiveLoop(dealer, () => {}), /sendTimeout is -1, must be 0/);
  } finally {
    await closeSocket(dealer);
  }
});
