/**
 * Seeded, time-bounded fuzzing of the manager-side socket of a real endpoint's interchange
 * (endpoint run with the real CLI, real service, real manager and python3 workers): random
 * frames, mutated manager messages, REGISTER with a wrong or missing token, RESULTS for
 * unknown tasks. Afterwards the daemon is alive, still runs tasks with the right results,
 * gave no task to the fuzzing peers, and logged the problems without flooding its log.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  encodeBare,
  encodeCapacity,
  encodeRegister,
  encodeResults,
} from "../../src/engine/wire.ts";
import { createWorld, fastEndpointConfig, PY } from "../e2e/_world.ts";
import { fuzzSeed, Rand } from "./_rand.ts";
import { Dealer } from "../../src/io/zmtp/mod.ts";
import { sendWithin } from "./_peer.ts";

const SEED = fuzzSeed(424242);
const BUDGET_MS = 5_000;
const enc = new TextEncoder();

Deno.test({
  name: "fuzz: the interchange's manager socket survives random and mutated manager frames",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await createWorld();
    const socks: Dealer[] = [];
    try {
      w.configure("ep", fastEndpointConfig());
      const ep = await w.startEndpoint("ep");
      const log = () => Deno.readTextFileSync(join(ep.dir, "endpoint.log"));
      const m = /manager socket on (tcp:\/\/[^ ]+) /.exec(log());
      assert(m, "the interchange logged its manager address");
      const rand = new Rand(SEED);
      const inbox: Uint8Array[][] = [];
      for (let i = 0; i < 3; i++) {
        const uid = i === 0 ? "fuzz-manager" : rand.text(10) || "x";
        const s = new Dealer({ routingId: uid });
        s.connect(m[1]);
        socks.push(s);
        s.setHandler((frames) => {
          inbox.push(frames);
        });
      }
      const reg = (token: string) =>
        encodeRegister({
          uid: "fuzz-manager",
          block_id: rand.pick(["0", "1", "99", "../x"]),
          hostname: "h",
          pid: 1,
          workers: rand.pick([1, 0, -1, 1e9]),
          cores: 1,
          token,
        });
      const valid = (): Uint8Array[][] => [
        reg(""),
        reg("0123456789abcdef0123456789abcdef"),
        encodeCapacity({ free: rand.pick([1, 0, -5, 1e12]), queued: 0 }),
        encodeResults([{
          taskId: crypto.randomUUID(),
          failed: rand.next() < 0.5,
          message: rand.bytes(20),
        }]),
        encodeBare("HEARTBEAT"),
        [enc.encode("BYE"), enc.encode(JSON.stringify({ reason: rand.text() }))],
      ];
      const deadline = Date.now() + BUDGET_MS;
      let sent = 0;
      while (Date.now() < deadline && sent < 20_000) {
        const s = rand.pick(socks);
        const base = rand.pick(valid());
        const k = rand.int(6);
        let frames: Uint8Array[];
        if (k === 0) frames = base;
        else if (k < 3) frames = base.map((f) => rand.next() < 0.5 ? rand.mutateBytes(f) : f);
        else if (k === 3) frames = [rand.bytes(rand.int(40))];
        else if (k === 4) frames = [...base, rand.bytes(8)];
        else frames = base.slice(0, Math.max(1, base.length - 1));
        if (await sendWithin(s, frames, 0)) sent++;
        if (sent % 100 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      assert(sent >= 500, `only ${sent} messages sent`);
      await new Promise((r) => setTimeout(r, 1000));

      // the endpoint still works; nothing was handed to the fuzzing peers
      const fn = await w.client.registerFunction(PY.square, "square");
      const ids = await w.client.submit(
        Array.from(
          { length: 6 },
          (_, i) => ({ functionId: fn, endpointId: ep.endpointId, args: [i] }),
        ),
      );
      const res = await w.client.waitForResults(ids, { timeoutMs: 30_000 });
      assertEquals(ids.map((id) => res.get(id)?.value), [0, 1, 4, 9, 16, 25]);
      const tasksToFuzzer = inbox.filter((f) => new TextDecoder().decode(f[0]) === "TASKS");
      assertEquals(tasksToFuzzer.length, 0, "a task went to an unregistered peer");
      const st = ep.status()!;
      assertEquals(st.state, "connected");
      assertEquals(st.managers.length, 1, "only the real manager is registered");

      const text = log();
      // the first problem of each bad peer is logged (then it is rate limited)
      assert(
        /WARN .*(bad message from peer|unregistered manager|without this interchange's token|does not match).*fuzz-manager|WARN .*fuzz-manager/
          .test(text),
        "the fuzzing peer was logged",
      );
      const warns = text.split("\n").filter((l) => / (WARN|ERROR) /.test(l));
      assert(warns.length < 100, `${warns.length} warnings for ${sent} frames: log is flooded`);
      assertEquals(await ep.stop(), 0);
    } finally {
      for (const s of socks) await s.close();
      await w.close().catch(() => {});
    }
  },
});
