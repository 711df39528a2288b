/**
 * The results WebSocket (`/ws/v2/`) against an executor-style Python client (websockets,
 * dill, tblib as the 0.3.x SDK uses them): authentication in the handshake, results pushed
 * per task group, only the user's own, many clients, and each result once across a client
 * reconnect (results stored while it was away arrive when it subscribes again).
 */
import assert from "node:assert/strict";
import {
  packBuffers,
  remoteException,
  serializeData,
  tuple,
} from "../../src/protocol/serialize.ts";
import { serializeSource } from "../../src/protocol/serialize.ts";
import { TestEndpoint } from "./_endpoint.ts";
import { api, eventually, withService } from "./_util.ts";
import { WsClient } from "../sdk/_ws_client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "results websocket: auth, push per group, ownership, many clients, reconnect",
  opts,
  async () => {
    await withService(async (t) => {
      const ws = t.url.replace(/^http/, "ws").replace(/\/v2$/, "/ws/v2/");
      const ep = await TestEndpoint.register(t.url, t.alice, "ws");
      await ep.connect();
      await ep.waitConnected();
      const epId = ep.reply.endpoint_id;
      const fn = (await api(`${t.url}/functions`, t.alice, "POST", {
        function_code: packBuffers([serializeSource("f", "def f(x):\n    return x\n")]),
      })).body.function_uuid as string;
      const clients: WsClient[] = [];
      try {
        // no token / a bad token: refused in the handshake, like the HTTP API
        const anon = WsClient.start(ws, "not-a-token", [crypto.randomUUID()]);
        clients.push(anon);
        await anon.waitFor((e) => e.some((x) => x.ev === "refused"), "refusal");
        assert.equal(anon.events[0].status, 401);
        const plain = await fetch(ws.replace(/^ws/, "http"));
        assert.equal(plain.status, 426);
        await plain.body?.cancel();

        const g1 = crypto.randomUUID();
        const g2 = crypto.randomUUID();
        const a1 = WsClient.start(ws, t.alice, [g1]);
        const a2 = WsClient.start(ws, t.alice, [g2]);
        const spy = WsClient.start(ws, t.bob, [g1, g2]); // bob listens on alice's groups
        clients.push(a1, a2, spy);
        for (const c of [a1, a2, spy]) await c.waitFor((e) => e[0]?.ev === "open", "open");

        let handled = 0;
        const submit = async (group: string, xs: number[]) => {
          const r = await api(`${t.url}/submit`, t.alice, "POST", {
            task_group_id: group,
            tasks: xs.map((
              x,
            ) => [fn, epId, packBuffers([serializeData(tuple(x)), serializeData({})])]),
          });
          assert.equal(r.status, 200);
          const ids = (r.body.results as { task_uuid: string }[]).map((x) => x.task_uuid);
          const tasks = await ep.waitForTasks(handled + ids.length);
          for (const task of tasks.slice(handled)) {
            const x = xs[ids.indexOf(task.taskId)];
            await ep.sendResult(
              task.taskId,
              x < 0
                ? { exception: remoteException("ValueError", `negative: ${x}`, "") }
                : { result: serializeData(x * 10) },
            );
          }
          handled += ids.length;
          return ids;
        };
        const ids1 = await submit(g1, [1, 2, 3, -1]);
        const ids2 = await submit(g2, [4, 5]);
        await a1.waitFor(() => a1.received().size === 4, "group 1");
        await a2.waitFor(() => a2.received().size === 2, "group 2");
        const byId = (c: WsClient) =>
          Object.fromEntries(
            [...c.received()].map(([k, v]) => [k, v.map((e) => e.value ?? e.message)]),
          );
        assert.deepEqual(byId(a1), {
          [ids1[0]]: [10],
          [ids1[1]]: [20],
          [ids1[2]]: [30],
          [ids1[3]]: ["negative: -1"],
        });
        assert.equal(a1.received().get(ids1[3])![0].type, "ValueError");
        assert.deepEqual(byId(a2), { [ids2[0]]: [40], [ids2[1]]: [50] });
        // handed out: still readable over HTTP for the retention (a lost answer can be asked
        // again), never pushed on the socket a second time
        assert.equal((await api(`${t.url}/tasks/${ids1[0]}`, t.alice)).body.status, "success");

        // a client that went away gets what finished meanwhile when it subscribes again
        await a1.command("close");
        await a1.waitFor((e) => e.some((x) => x.ev === "closed"), "closed");
        const ids3 = await submit(g1, [6, 7, 8]);
        // stored, nobody listening: kept until a subscription of alice's takes them
        const aliceId = t.svc.store.checkPassword("alice", "alice-pw")!.id;
        await eventually(
          () => t.svc.store.finishedTasksInGroup(aliceId, g1).length === 3,
          "3 results stored",
        );
        await a1.command("open");
        await a1.waitFor(() => a1.received().size === 7, "results after reconnect");
        for (const id of ids3) assert.equal(a1.received().get(id)!.length, 1);
        // a second alice client on the same group: each result goes to one of them, once
        const a3 = WsClient.start(ws, t.alice, [g1]);
        clients.push(a3);
        await a3.waitFor((e) => e[0]?.ev === "open", "open");
        const ids4 = await submit(g1, [9, 10, 11, 12]);
        await a1.waitFor(
          () => ids4.every((id) => a1.received().has(id) || a3.received().has(id)),
          "group 1 on two clients",
        );
        for (const id of ids4) {
          assert.equal(
            (a1.received().get(id)?.length ?? 0) + (a3.received().get(id)?.length ?? 0),
            1,
          );
        }
        // bob never saw any of alice's results
        assert.equal(spy.received().size, 0);
        for (const c of [a1, a2]) {
          for (const l of c.received().values()) assert.equal(l.length, 1);
        }
      } finally {
        for (const c of clients) await c.quit();
        await ep.close();
      }
    });
  },
);
