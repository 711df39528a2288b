/**
 * Seeded, time-bounded fuzzing of the three ZeroMQ sockets of the real forwarder (the local
 * service run as `main.ts service start --foreground`): random frames, mutated valid
 * messages (registrations, results, status reports, heartbeats), wrong frame counts, from a
 * registered endpoint, from an unregistered CURVE key and from a non-uuid identity.
 * Afterwards the service still answers, another endpoint's queued task is untouched, each
 * kind of problem was logged (once, not once per frame) and the fuzzed endpoint still gets
 * a task and gets its result stored and acked.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import {
  encodeEPStatusReport,
  encodeRegistration,
  encodeResult,
  packHeartbeat,
} from "../../src/protocol/messages.ts";
import { remoteException, serializeData } from "../../src/protocol/serialize.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, startService } from "../helpers/service.ts";
import { connectPeer, registerEndpoint, sendWithin } from "./_peer.ts";
import { fuzzSeed, Rand } from "./_rand.ts";

const SEED = fuzzSeed(7_2026);
const BUDGET_MS = 5_000;

Deno.test({
  name: "fuzz: forwarder tasks/results/commands sockets survive random and mutated frames",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-fwd-" });
    const svc = await startService({ home, heartbeatPeriod: 1 });
    const peers: { close(): void }[] = [];
    try {
      await addUser(home, "alice", "alice-pw");
      const tokens = await loginViaForm(svc.authUrl, "alice", "alice-pw");
      const client = new FuncXClient({ serviceAddress: svc.url, token: tokens.access_token });
      const regA = await registerEndpoint(svc.url, tokens.access_token, "fuzzed");
      const regB = await registerEndpoint(svc.url, tokens.access_token, "bystander");
      const fn = await client.registerFunction("def f(x):\n    return x\n", "f");
      // a task for B, which is never connected: it must stay queued whatever A sends
      const [taskB] = await client.submit([{ functionId: fn, endpointId: regB.endpoint_id }]);

      const a = await connectPeer(regA, {
        identity: regA.endpoint_id,
        secret: regA.endpoint_secret,
      });
      peers.push(a);
      // a registered key with a non-uuid identity, and a key nobody registered
      const odd = await connectPeer(regA, { identity: "not-a-uuid", register: false });
      peers.push(odd);
      const stranger = await connectPeer(regA, {
        identity: crypto.randomUUID(),
        keys: curveKeyPairZ85(),
        register: false,
      });
      peers.push(stranger);
      assert(await a.nextTask(300) === undefined);

      const rand = new Rand(SEED);
      const id = regA.endpoint_id;
      const valid = (): Uint8Array[] => [
        encodeRegistration({ registration: id, endpoint_secret: regA.endpoint_secret }),
        encodeRegistration({ registration: id, funcx_endpoint_version: "0.3.4" }),
        encodeRegistration({ registration: crypto.randomUUID(), endpoint_secret: "x" }),
        encodeResult({ task_id: crypto.randomUUID(), result: serializeData(rand.int(1000)) }),
        encodeResult({
          task_id: crypto.randomUUID(),
          exception: remoteException("ValueError", "x", ""),
        }),
        encodeEPStatusReport(id, { total_workers: 1 }, new Map([[crypto.randomUUID(), 3]])),
        packHeartbeat(id),
        new TextEncoder().encode("HEARTBEAT"),
      ];
      const deadline = Date.now() + BUDGET_MS;
      let sent = 0;
      while (Date.now() < deadline && sent < 20_000) {
        const sender = rand.next() < 0.8 ? a : rand.pick([odd, stranger]);
        const sock = rand.pick([sender.tasks, sender.results, sender.commands]);
        const k = rand.int(10);
        let frames: Uint8Array[];
        if (k < 5) frames = [rand.mutateBytes(rand.pick(valid()))];
        else if (k < 7) frames = [rand.bytes(rand.int(300))];
        else if (k === 7) frames = [rand.pick(valid()), rand.bytes(rand.int(20))];
        else if (k === 8) frames = [new Uint8Array(0)];
        else frames = [rand.pick(valid())];
        // a refused peer's queue fills up: then its frames are simply not sent
        if (await sendWithin(sock, frames, 0)) sent++;
        if (sent % 200 === 0) await a.drain(1);
      }
      assert(sent >= 500, `only ${sent} messages sent`);

      // the service still answers, B's task is untouched
      const v = await fetch(`${svc.url}/version`);
      assertEquals(v.status, 200);
      await v.body?.cancel();
      const b = await client.getBatchResult([taskB]);
      assertEquals(b.get(taskB)?.pending, true, "the bystander's task is still queued");

      // A still works end to end (re-register in case a fuzzed frame was its first word)
      for (
        const [sock, msg] of [
          [a.tasks, { registration: id, funcx_endpoint_version: "0.3.4" }],
          [a.results, { registration: id }],
          [a.commands, { registration: id }],
        ] as const
      ) {
        assert(
          await sendWithin(
            sock,
            encodeRegistration({ ...msg, endpoint_secret: regA.endpoint_secret }),
          ),
        );
      }
      const [taskA] = await client.submit([{ functionId: fn, endpointId: id, args: [5] }]);
      let got: { taskId: string } | undefined;
      const until = Date.now() + 10_000;
      while (!got && Date.now() < until) {
        const t = await a.nextTask(until - Date.now());
        if (t?.taskId === taskA) got = t;
      }
      assert(got, "the fuzzed endpoint still receives its task");
      assert(
        await sendWithin(a.results, encodeResult({ task_id: taskA, result: serializeData(55) })),
      );
      const res = await client.waitForResults([taskA], { timeoutMs: 10_000 });
      assertEquals(res.get(taskA)?.value, 55);
      const ackUntil = Date.now() + 5000;
      while (!a.acks.has(taskA) && Date.now() < ackUntil) await a.nextTask(100);
      assert(a.acks.has(taskA), "the result was acked");

      // problems were logged, once per kind rather than once per frame
      const log = Deno.readTextFileSync(join(home, "service", "service.log"));
      const warns = log.split("\n").filter((l) => / WARN /.test(l));
      assert(warns.some((l) => l.includes("malformed")), "malformed frames were logged");
      assert(warns.some((l) => l.includes("CURVE")), "the unknown key was logged");
      assert(warns.some((l) => l.includes("non-uuid")), "the non-uuid identity was logged");
      const kinds = new Map<string, number>();
      for (const w of warns) {
        const k = w.replace(/^\S+ /, "").replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<uuid>").slice(
          0,
          90,
        );
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
      const flooding = [...kinds].filter(([, n]) => n > 5);
      assertEquals(flooding, [], `${warns.length} warnings for ${sent} frames: log is flooded`);
      assertEquals(log.split("\n").filter((l) => / ERROR /.test(l)), []);
    } finally {
      for (const p of peers) p.close();
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
