/**
 * The chaos run's TCP fault proxy against a real echo server on loopback: forwarding, stall
 * (bytes held back, delivered after), half-open (the server side closed, the client's bytes
 * dropped, new connections fine), reset in the middle of a message, slow drip, and a partition
 * that heals.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { FaultProxy } from "../../scripts/chaos/fault_proxy.ts";
import { waitFor } from "../helpers/wait.ts";

/** An echo server that also records what each connection sent and whether it ended. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: { got: number[]; ended: boolean }[] = [];
  const open = new Set<Deno.Conn>();
  (async () => {
    for await (const c of listener) {
      const rec = { got: [] as number[], ended: false };
      conns.push(rec);
      open.add(c);
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          for (;;) {
            const n = await c.read(buf);
            if (n === null) break;
            rec.got.push(...buf.subarray(0, n));
            await c.write(buf.slice(0, n));
          }
        } catch { /* reset */ }
        rec.ended = true;
        open.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    conns,
    close() {
      listener.close();
      for (const c of open) c.close();
    },
  };
}

async function readN(c: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await c.read(out.subarray(off));
    if (got === null) throw new Error(`closed after ${off} of ${n} bytes`);
    off += got;
  }
  return out;
}

async function withProxy(fn: (p: FaultProxy, srv: ReturnType<typeof echoServer>) => Promise<void>) {
  const srv = echoServer();
  const p = FaultProxy.start({ target: { hostname: "127.0.0.1", port: srv.port } });
  try {
    await fn(p, srv);
  } finally {
    await p.close();
    srv.close();
  }
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("fault proxy: forwards, and a stall holds bytes back until cleared", opts, async () => {
  await withProxy(async (p) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
    await c.write(enc("hello"));
    assertEquals(dec(await readN(c, 5)), "hello");
    p.fault({ kind: "stall" });
    await c.write(enc("held"));
    const echoed = readN(c, 4);
    // the proxy does not even read while stalled
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(p.stats.up, 5);
    p.clear();
    assertEquals(dec(await echoed), "held");
    c.close();
  });
});

Deno.test(
  "fault proxy: half-open closes the server side only; new connections work",
  opts,
  async () => {
    await withProxy(async (p, srv) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
      await c.write(enc("a"));
      await readN(c, 1);
      p.fault({ kind: "half-open" });
      await waitFor(() => srv.conns[0].ended, { what: "the server side closed" });
      await c.write(enc("into the void")); // the client's socket is still open
      await waitFor(() => p.stats.dropped >= 13, { what: "the bytes dropped" });
      const c2 = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
      await c2.write(enc("new"));
      assertEquals(dec(await readN(c2, 3)), "new");
      c.close();
      c2.close();
    });
  },
);

Deno.test("fault proxy: reset cuts a connection in the middle of a message", opts, async () => {
  await withProxy(async (p, srv) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
    p.fault({ kind: "reset", afterBytes: 7, direction: "up" });
    await c.write(enc("0123456789abcdef"));
    await waitFor(() => srv.conns[0]?.ended, { what: "the server saw the cut" });
    assertEquals(dec(new Uint8Array(srv.conns[0].got)), "0123456");
    let end = "";
    try {
      const n = await c.read(new Uint8Array(64));
      end = n === null ? "eof" : `data ${n}`;
    } catch (e) {
      end = (e as Error).name;
    }
    assert(end === "eof" || /Reset|Connection/.test(end), end);
  });
});

Deno.test("fault proxy: a slow drip delivers every byte, in order, slowly", opts, async () => {
  await withProxy(async (p) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
    p.fault({ kind: "drip", bytesPerTick: 10, tickMs: 20 });
    const msg = "x".repeat(45) + "END";
    const t0 = performance.now();
    await c.write(enc(msg));
    assertEquals(dec(await readN(c, msg.length)), msg);
    // 48 bytes go up in 5 pieces with a 20 ms wait after each (the echo overlaps with them)
    assert(performance.now() - t0 >= 80, `${performance.now() - t0} ms`);
    assert(p.stats.up === 48 && p.stats.down === 48, JSON.stringify(p.stats));
    c.close();
  });
});

Deno.test("fault proxy: a partition drops bytes and heals after N ms", opts, async () => {
  await withProxy(async (p, srv) => {
    const old = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
    await old.write(enc("1"));
    await readN(old, 1);
    p.fault({ kind: "partition", healAfterMs: 300 });
    await old.write(enc("lost"));
    const during = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
    await during.write(enc("wait"));
    // healed: the connection that lived through it was cut, the one made during it connects
    await waitFor(() => p.current === null, { what: "the partition healed" });
    assertEquals(dec(await readN(during, 4)), "wait");
    assertEquals(await old.read(new Uint8Array(8)).catch(() => null), null);
    assertEquals(dec(new Uint8Array(srv.conns[0].got)), "1");
    during.close();
  });
});
