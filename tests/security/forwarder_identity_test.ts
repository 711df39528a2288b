/**
 * An endpoint cannot take over another endpoint's identity on the real forwarder: a peer
 * that uses the victim's uuid as its ZeroMQ identity but its own (registered) CURVE key and
 * its own / no / a made-up endpoint_secret is refused and logged, and the real endpoint keeps
 * getting its tasks — while the victim is connected, while it is away, and right after it
 * dropped its connection.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { encodeResult } from "../../src/protocol/messages.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, startService } from "../helpers/service.ts";
import { connectPeer, type Peer, registerEndpoint, sendWithin } from "../fuzz/_peer.ts";

async function world() {
  const home = Deno.makeTempDirSync({ prefix: "fx-sec-id-" });
  const svc = await startService({ home, heartbeatPeriod: 1 });
  await addUser(home, "alice", "alice-pw");
  await addUser(home, "mallory", "mallory-pw");
  const alice = await loginViaForm(svc.authUrl, "alice", "alice-pw");
  const mallory = await loginViaForm(svc.authUrl, "mallory", "mallory-pw");
  const victim = await registerEndpoint(svc.url, alice.access_token, "victim");
  const own = await registerEndpoint(svc.url, mallory.access_token, "mallory-ep");
  const client = new FuncXClient({ serviceAddress: svc.url, token: alice.access_token });
  const fn = await client.registerFunction("def f(x):\n    return x\n", "f");
  const peers: Peer[] = [];
  return {
    home,
    svc,
    victim,
    own,
    client,
    fn,
    async peer(...args: Parameters<typeof connectPeer>) {
      const p = await connectPeer(...args);
      peers.push(p);
      return p;
    },
    submit: async () =>
      (await client.submit([{ functionId: fn, endpointId: victim.endpoint_id, args: [1] }]))[0],
    log: () => Deno.readTextFileSync(join(home, "service", "service.log")),
    async close() {
      for (const p of peers) p.close();
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    },
  };
}

Deno.test({
  name: "security: a peer with another endpoint's uuid but its own key/secret is refused",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world();
    try {
      const id = w.victim.endpoint_id;
      // while the victim is away, impostors try its identity with mallory's registered key
      const impostors = [
        await w.peer(w.victim, { identity: id, keys: w.own.keys, secret: w.own.endpoint_secret }),
        await w.peer(w.victim, { identity: id.toUpperCase(), keys: w.own.keys }),
        await w.peer(w.victim, { identity: id, keys: w.own.keys, secret: "fxs_guess" }),
        await w.peer(w.victim, { identity: id, keys: curveKeyPairZ85() }),
      ];
      const t1 = await w.submit();
      for (const imp of impostors) {
        assertEquals(await imp.drain(1500), [], "an impostor received the victim's task");
      }
      // a result pushed by an impostor is not stored
      for (const imp of impostors) {
        await sendWithin(
          imp.results,
          encodeResult({ task_id: t1, result: serializeData(666) }),
          500,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
      assertEquals((await w.client.getBatchResult([t1])).get(t1)?.pending, true);
      for (const imp of impostors) imp.close();

      // the real endpoint connects and gets the task; its result is stored
      // (like the real endpoint, it reconnects when nothing arrives)
      let real = await w.peer(w.victim, { identity: id, secret: w.victim.endpoint_secret });
      let got: string | undefined;
      for (let attempt = 0; attempt < 6 && got !== t1; attempt++) {
        if (attempt > 0) {
          real.close();
          real = await w.peer(w.victim, { identity: id, secret: w.victim.endpoint_secret });
        }
        const until = Date.now() + 5_000;
        while (got !== t1 && Date.now() < until) got = (await real.nextTask(500))?.taskId;
      }
      assertEquals(got, t1, "the real endpoint gets its task");
      // an impostor connecting while the real one is connected gets nothing either
      const late = await w.peer(w.victim, {
        identity: id,
        keys: w.own.keys,
        secret: w.own.endpoint_secret,
      });
      const t2 = await w.submit();
      let got2: string | undefined;
      const until2 = Date.now() + 10_000;
      while (got2 !== t2 && Date.now() < until2) got2 = (await real.nextTask(500))?.taskId;
      assertEquals(got2, t2);
      assertEquals(await late.drain(500), []);
      // like the real endpoint's ack watchdog: reconnect and resend until the result is stored
      let stored: unknown;
      for (let attempt = 0; attempt < 6 && stored !== 1; attempt++) {
        if (attempt > 0) {
          real.close();
          real = await w.peer(w.victim, { identity: id, secret: w.victim.endpoint_secret });
        }
        await sendWithin(real.results, encodeResult({ task_id: t1, result: serializeData(1) }));
        const res = await w.client.waitForResults([t1], { timeoutMs: 4_000 }).catch(() => null);
        stored = res?.get(t1)?.value;
      }
      assertEquals(stored, 1);

      const log = w.log();
      assert(
        /refused tasks registration (from [0-9a-f-]+: missing or wrong endpoint_secret|of [0-9a-f-]+ from \S+: the connection's CURVE key is not the one registered)/
          .test(log),
        "the refusal is logged",
      );
      assert(/refused a CURVE client key/.test(log), "the unknown key is logged");
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "security: an impostor cannot slip in right after the real endpoint drops its connection",
  // Trust is bound to the connection object and its CURVE key (src/service/forwarder.ts).
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world();
    try {
      const id = w.victim.endpoint_id;
      const real = await w.peer(w.victim, { identity: id, secret: w.victim.endpoint_secret });
      const t0 = await w.submit();
      let got: string | undefined;
      const until = Date.now() + 10_000;
      while (got !== t0 && Date.now() < until) got = (await real.nextTask(500))?.taskId;
      assertEquals(got, t0, "the real endpoint is connected");
      // the victim's process dies; an impostor (own registered key, no valid secret) takes the
      // identity immediately and says nothing, hoping the forwarder still trusts the uuid
      real.close();
      const imp = await w.peer(w.victim, { identity: id, keys: w.own.keys, register: false });
      const t1 = await w.submit();
      const stolen = await imp.drain(3000);
      assertEquals(stolen, [], "tasks went to an unauthenticated connection of the victim's uuid");
      await sendWithin(imp.results, encodeResult({ task_id: t1, result: serializeData(666) }), 500);
      await new Promise((r) => setTimeout(r, 500));
      const r = (await w.client.getBatchResult([t1])).get(t1);
      assertEquals(r?.value, undefined, "a result from the impostor was stored");
    } finally {
      await w.close();
    }
  },
});
