/**
 * Restart: the service runs as a real process (`service start --foreground`); it is
 * stopped (SIGTERM) and later killed (SIGKILL) with tasks queued, tasks in flight and
 * results unfetched. Nothing is lost: tokens, endpoints, queued tasks, stored results,
 * the forwarder key.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { serializeData } from "../../src/protocol/serialize.ts";
import { TaskStatusCode } from "../../src/protocol/messages.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, startService } from "../helpers/service.ts";
import { closeAllEndpoints, registerEndpoint, TestEndpoint } from "./_endpoint.ts";
import { eventually } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "restart: stop and kill with queued tasks and unfetched results lose nothing",
  opts,
  async () => {
    const home = await Deno.makeTempDir({ prefix: "fx-restart-" });
    let svc = await startService({ home, heartbeatPeriod: 0.5 });
    try {
      await addUser(home, "alice", "pw");
      const tokens = await loginViaForm(svc.authUrl, "alice", "pw");
      const fx = () => new FuncXClient({ serviceAddress: svc.url, token: tokens.access_token });
      const fn = await fx().registerFunction("def f(x):\n    return x\n", "f");
      const first = await registerEndpoint(svc.url, tokens.access_token, "busy");
      const idle = await registerEndpoint(svc.url, tokens.access_token, "idle");
      const busyId = first.reply.endpoint_id;
      const idleId = idle.reply.endpoint_id;
      let ep = new TestEndpoint(first.reply, first.keys);
      await ep.connect();
      const ids = await fx().submit([
        { functionId: fn, endpointId: busyId, args: ["a"] },
        { functionId: fn, endpointId: busyId, args: ["b"] },
        { functionId: fn, endpointId: busyId, args: ["c"] },
        { functionId: fn, endpointId: idleId, args: ["q"] },
      ]);
      await ep.waitForTasks(3);
      await ep.sendResult(ids[0], { result: serializeData("A") });
      await ep.sendStatus({ [ids[1]]: TaskStatusCode.RUNNING });
      await ep.waitFor(() => ep.acks().includes(ids[0]), 10_000, "ack");
      await eventually(
        async () => (await fx().getBatchResult([ids[1]])).get(ids[1])?.status === "running",
        "the status report to be stored",
      );
      await ep.close();

      // 1) clean stop, start again on new ports
      assertEquals(await svc.stop(), 0);
      const pubkey = first.reply.forwarder_pubkey.split("\n").filter((l) =>
        l.includes("public-key")
      );
      svc = await startService({ home, heartbeatPeriod: 0.5 });
      const st = await fx().getBatchResult([ids[1], ids[2], ids[3]]);
      assertEquals([...st.values()].map((o) => o.status), [
        "running",
        "waiting-for-nodes",
        "waiting-for-ep",
      ]);

      // the endpoint re-registers (same uuid, same key) like a real one does on reconnect
      const again = await registerEndpoint(
        svc.url,
        tokens.access_token,
        "busy",
        busyId,
        first.keys,
      );
      assertEquals(
        again.reply.forwarder_pubkey.split("\n").filter((l) => l.includes("public-key")),
        pubkey,
      );
      ep = new TestEndpoint(again.reply, again.keys);
      await ep.connect();
      const redelivered = await ep.waitForTasks(2);
      assertEquals(redelivered.map((x) => x.taskId).sort(), [ids[1], ids[2]].sort());
      await ep.sendResult(ids[1], { result: serializeData("B") });
      await ep.waitFor(() => ep.acks().includes(ids[1]), 10_000, "ack B");
      await ep.close();

      // 2) SIGKILL right after an acked result: it is still there afterwards
      await svc.kill();
      svc = await startService({ home, heartbeatPeriod: 0.5 });
      const third = await registerEndpoint(
        svc.url,
        tokens.access_token,
        "busy",
        busyId,
        first.keys,
      );
      ep = new TestEndpoint(third.reply, third.keys);
      await ep.connect();
      const tasks = await ep.waitForTasks(1);
      assertEquals(tasks.map((x) => x.taskId), [ids[2]]);
      await ep.sendResult(ids[2], { result: serializeData("C") });
      const idleAgain = await registerEndpoint(
        svc.url,
        tokens.access_token,
        "idle",
        idleId,
        idle.keys,
      );
      const ep2 = new TestEndpoint(idleAgain.reply, idleAgain.keys);
      await ep2.connect();
      const q = await ep2.waitForTasks(1);
      assertEquals(q.map((x) => x.taskId), [ids[3]]);
      await ep2.sendResult(ids[3], { result: serializeData("Q") });

      const all = await fx().waitForResults(ids, { timeoutMs: 15_000 });
      assertEquals(ids.map((id) => all.get(id)?.value), ["A", "B", "C", "Q"]);
      await ep.close();
      await ep2.close();
    } finally {
      await closeAllEndpoints();
      await svc.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
);
