/**
 * The 0.3.x SDK's bulk paths end to end (real service process, real endpoint CLI, python3
 * workers): `map_run` of 1,000 items through `POST /submit_batch` collected with
 * `get_batch_result` (`POST /batch_status`), and an executor-style client on the results
 * WebSocket that gets 1,000 results pushed, each exactly once, across a reconnect of its own
 * and a restart of the service while tasks run.
 */
import assert from "node:assert/strict";
import {
  deserialize,
  packBuffers,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { loginViaForm } from "../helpers/service.ts";
import { WsClient } from "../sdk/_ws_client.ts";
import { createWorld, PY } from "./_world.ts";

async function call(url: string, token: string, method: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

interface TaskRecord {
  result?: string;
  exception?: string;
  reason?: string;
}

const args = (...xs: unknown[]) =>
  packBuffers([serializeData(tuple(...(xs as number[]))), serializeData({})]);

Deno.test({
  name:
    "e2e sdk: map_run of 1,000 items; 1,000 results once each over the WebSocket across a reconnect and a service restart",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const w = await createWorld();
    let client: WsClient | undefined;
    try {
      w.configure("ep");
      const ep = await w.startEndpoint("ep");
      const token = (await loginViaForm(w.svc.authUrl, "alice", "alice-pw")).access_token;
      const url = () => w.svc.url;
      const register = async (src: string, name: string) =>
        (await call(`${url()}/functions`, token, "POST", {
          function_code: packBuffers([serializeSource(name, src)]),
        })).body.function_uuid as string;
      const square = await register(PY.square, "square");
      const sleepy = await register(PY.sleepy, "sleepy");

      // ---- map_run: {"endpoints": [id], "func": id, "payload": [...], "is_async": false}
      const N = 1000;
      const mapped = await call(`${url()}/submit_batch`, token, "POST", {
        endpoints: [ep.endpointId],
        func: square,
        payload: Array.from({ length: N }, (_, i) => args(i)),
        is_async: false,
      });
      assert.equal(mapped.status, 200);
      const ids = mapped.body.task_uuids as string[];
      assert.equal(new Set(ids).size, N);
      const got = new Map<string, unknown>();
      const deadline = Date.now() + 240_000;
      while (got.size < N) {
        assert.ok(Date.now() < deadline, `map_run: ${got.size}/${N} results`);
        const pending = ids.filter((id) => !got.has(id));
        const r = await call(`${url()}/batch_status`, token, "POST", { task_ids: pending });
        for (const [id, rec] of Object.entries(r.body.results as Record<string, TaskRecord>)) {
          if (rec.result !== undefined) got.set(id, deserialize(rec.result));
          else assert.equal(rec.exception, undefined, `task ${id} failed`);
        }
        if (got.size < N) await new Promise((res) => setTimeout(res, 100));
      }
      for (const [i, id] of ids.entries()) assert.equal(got.get(id), i * i);
      // handed out once: asked again (an answer may have been lost), the same results
      const again = await call(`${url()}/batch_status`, token, "POST", {
        task_ids: ids.slice(0, 3),
      });
      for (const [id, rec] of Object.entries(again.body.results as Record<string, TaskRecord>)) {
        assert.equal(deserialize(rec.result!), ids.indexOf(id) ** 2);
      }

      // ---- executor-style: one session task group, batches of 100, results on the socket
      const group = crypto.randomUUID();
      const wsUrl = () => url().replace(/^http/, "ws").replace(/\/v2$/, "/ws/v2/");
      client = WsClient.start(wsUrl(), token, [group]);
      await client.waitFor((e) => e.some((x) => x.ev === "open"), "socket open");
      const expected = new Map<string, unknown>();
      const submit = async (fn: string, list: [string, unknown[]][]) => {
        const r = await call(`${url()}/submit`, token, "POST", {
          task_group_id: group,
          tasks: list.map(([, a]) => [fn, ep.endpointId, args(...a)]),
        });
        assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
        for (const [i, rec] of (r.body.results as { task_uuid: string }[]).entries()) {
          expected.set(
            rec.task_uuid,
            list[i][0] === "sq" ? (list[i][1][0] as number) ** 2 : list[i][1][1],
          );
        }
      };
      const batchOf = (from: number, n = 100): [string, unknown[]][] =>
        Array.from({ length: n }, (_, i) => ["sq", [from + i]]);
      const all = (c: WsClient) => () => [...expected.keys()].every((id) => c.received().has(id));
      for (let b = 0; b < 3; b++) await submit(square, batchOf(b * 100));
      await client.waitFor(all(client), "the first 300 results", 120_000);

      // the client goes away; 200 finish meanwhile; it comes back and subscribes again
      await client.command("close");
      await client.waitFor((e) => e.at(-1)?.ev === "closed", "client closed");
      for (let b = 3; b < 5; b++) await submit(square, batchOf(b * 100));
      await client.command("open");
      await client.waitFor(all(client), "results stored while the client was away", 120_000);

      // the service restarts while 100 tasks run (0.05 s each): the endpoint keeps their
      // results until the new service acks them, the client reconnects by itself
      await submit(sleepy, Array.from({ length: 100 }, (_, i) => ["sl", [0.05, `s${i}`]]));
      assert.equal(await w.svc.stop(), 0);
      // results made while the service is down wait, unacknowledged, at the endpoint
      const until = Date.now() + 60_000;
      while (!((ep.status()?.unacked_results ?? 0) > 0)) {
        assert.ok(Date.now() < until, "no result finished while the service was down");
        await new Promise((res) => setTimeout(res, 50));
      }
      await client.waitFor(
        (e) => e.some((x) => x.ev === "closed" && x.by === "service"),
        "service closed the socket",
      );
      await w.restartService();
      for (let b = 6; b < 10; b++) await submit(square, batchOf(b * 100));
      await client.waitFor(all(client), "all 1,000 results", 240_000);

      assert.equal(expected.size, 1000);
      const received = client.received();
      for (const [id, value] of expected) {
        const evs = received.get(id)!;
        assert.equal(evs.length, 1, `task ${id} delivered ${evs.length} times`);
        assert.equal(evs[0].ev, "result");
        assert.deepEqual(evs[0].value, value);
      }
      assert.equal(received.size, 1000, "nothing but these tasks");
      assert.ok(client.events.filter((e) => e.ev === "open").length >= 3, "reconnected twice");
    } finally {
      const err = await client?.quit();
      if (err) console.error(err);
      await w.close();
    }
  },
});
