/**
 * The cause of the chaos run's lost=10 (seed 11, round 2's service kill): the service deleted
 * a finished task as soon as it put its result into an answer, before the answer reached the
 * client. When that answer is lost — the service killed after the delete, the connection
 * reset, the client gave up waiting — nothing can give the result back and the task is lost
 * ("Unknown task id" on the next poll). These tests lose the answer for real (a TCP fault
 * proxy between client and service cuts the connection in the middle of the reply) and ask
 * again: the same result must come back. The retention and its purge are checked on the store
 * with a controlled clock.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { servicePaths } from "../../src/config/paths.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { ServiceStore } from "../../src/service/store.ts";
import { FaultProxy } from "../../scripts/chaos/fault_proxy.ts";
import { TestEndpoint } from "./_endpoint.ts";
import { api, withService } from "./_util.ts";
import { waitFor } from "../helpers/wait.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "lost reply: a result whose answer was cut mid-reply is handed out again, not lost",
  opts,
  async () => {
    await withService(async (t) => {
      const ep = await TestEndpoint.register(t.url, t.alice, "ep-lost-reply");
      await ep.connect();
      const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
      const fn = await fx.registerFunction("def sq(x):\n    return x * x\n", "sq");
      const ids = await fx.submit([
        { functionId: fn, endpointId: ep.reply.endpoint_id, args: [3] },
        { functionId: fn, endpointId: ep.reply.endpoint_id, args: [4] },
      ]);
      const tasks = await ep.waitForTasks(2);
      for (const task of tasks) {
        const x = task.taskId === ids[0] ? 3 : 4;
        await ep.sendResult(task.taskId, { result: serializeData(x * x) });
      }
      // stored: seen through the database, which does not hand anything out
      const peek = ServiceStore.open(servicePaths(t.home).db);
      try {
        await waitFor(() => ids.every((id) => peek.getTask(id)?.status === "success"), {
          what: "both results stored",
        });
      } finally {
        peek.close();
      }

      const url = new URL(t.url);
      const proxy = FaultProxy.start({
        target: { hostname: url.hostname, port: Number(url.port) },
      });
      try {
        // the reply is cut after its first bytes: the service has answered (and, before the
        // fix, deleted the tasks), the client gets nothing
        proxy.fault({ kind: "reset", direction: "down", afterBytes: 10 });
        const viaProxy = `http://127.0.0.1:${proxy.port}/v2`;
        let err = "";
        try {
          await api(`${viaProxy}/batch_status`, t.alice, "POST", { task_ids: ids });
        } catch (e) {
          err = String(e);
        }
        assert(err !== "", "the cut reply reached the client");
        assert(proxy.stats.cut >= 1 && proxy.stats.down >= 10, JSON.stringify(proxy.stats));
        // the same for a single task's GET
        err = "";
        try {
          await api(`${viaProxy}/tasks/${ids[1]}`, t.alice);
        } catch (e) {
          err = String(e);
        }
        assert(err !== "", "the cut GET reply reached the client");
      } finally {
        await proxy.close();
      }

      // the client asks again (directly): the same results, not "Unknown task id"
      const again = await api(`${t.url}/batch_status`, t.alice, "POST", { task_ids: ids });
      const recs = again.body.results as Record<string, Record<string, unknown>>;
      for (const id of ids) {
        assertEquals(recs[id].status, "success", JSON.stringify(recs[id]));
        assert(typeof recs[id].result === "string", JSON.stringify(recs[id]));
      }
      const got = await fx.getBatchResult(ids);
      assertEquals([got.get(ids[0])?.value, got.get(ids[1])?.value], [9, 16]);
      // and the single GET
      const one = await api(`${t.url}/tasks/${ids[1]}`, t.alice);
      assertEquals(one.body.status, "success");
    });
  },
);

Deno.test("lost reply: handed-out results are kept for the retention, then purged", () => {
  let now = 1_000_000;
  const store = ServiceStore.open(":memory:", { resultRetentionS: 600, clock: () => now });
  try {
    const user = store.addUser("u", "pw");
    const row = (uuid: string) => ({
      uuid,
      userId: user.id,
      functionUuid: crypto.randomUUID(),
      endpointUuid: "e",
      taskGroupId: "g",
      container: "RAW",
      payload: "p",
    });
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    store.insertTasks([row(a), row(b)], new Set(["e"]));
    assertEquals(store.storeResults([{ taskId: a, endpointUuid: "e", result: "r" }]), new Set([a]));
    store.handedOut([a, b]); // b is not final: not marked
    now += 599;
    store.handedOut([]);
    assertEquals(store.getTask(a)?.result, "r");
    // handing it out again does not restart the retention
    store.handedOut([a]);
    now += 2;
    store.handedOut([]);
    assertEquals(store.getTask(a), undefined);
    assertEquals(store.getTask(b)?.status, "waiting-for-nodes");
    // a late duplicate of a purged task's result is not stored
    assertEquals(store.storeResults([{ taskId: a, endpointUuid: "e", result: "r2" }]).size, 0);
  } finally {
    store.close();
  }
  // retention 0: deleted at once (upstream's behaviour)
  const now0 = ServiceStore.open(":memory:", { resultRetentionS: 0 });
  try {
    const user = now0.addUser("u", "pw");
    const id = crypto.randomUUID();
    now0.insertTasks([{
      uuid: id,
      userId: user.id,
      functionUuid: "f",
      endpointUuid: "e",
      taskGroupId: "g",
      container: "RAW",
      payload: "p",
    }], new Set(["e"]));
    now0.storeResults([{ taskId: id, endpointUuid: "e", result: "r" }]);
    now0.handedOut([id]);
    assertEquals(now0.getTask(id), undefined);
  } finally {
    now0.close();
  }
});
