/**
 * End-to-end tests of the local service over real HTTP and real ZeroMQ (CURVE): a
 * test-side endpoint (three DEALERs, upstream framing from src/protocol) registers,
 * receives tasks, reports statuses, returns results and gets acks.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { curveKeyPairZ85, Dealer } from "../../src/io/zmtp/mod.ts";
import { TaskStatusCode } from "../../src/protocol/messages.ts";
import { encodePickle } from "../../src/protocol/pickle/mod.ts";
import {
  deserialize,
  remoteException,
  serializeData,
  unpackTaskPayload,
} from "../../src/protocol/serialize.ts";
import { FuncXClient, RemoteError } from "../../src/sdk/client.ts";
import { pollSend, TestEndpoint } from "./_endpoint.ts";
import { api, eventually, withService } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ADD = "def add(a, b=0):\n    return a + b\n";

Deno.test("e2e: register, submit, deliver, statuses, results, acks", opts, async () => {
  await withService(async (t) => {
    const ep = await TestEndpoint.register(t.url, t.alice, "ep1");
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction(ADD, "add");
    const epId = ep.reply.endpoint_id;
    const ids = await fx.submit([
      { functionId: fn, endpointId: epId, args: [1, 2] },
      { functionId: fn, endpointId: epId, args: [1], kwargs: { b: 5 } },
      { functionId: fn, endpointId: epId, args: [10, 20] },
    ]);
    assertEquals(ids.length, 3);
    // queued while the endpoint is away
    let batch = await fx.getBatchResult(ids);
    for (const id of ids) assertEquals(batch.get(id)?.status, "waiting-for-ep");
    assertEquals((await fx.endpointStatus(epId)).status, "offline");

    await ep.connect();
    const tasks = await ep.waitForTasks(3);
    assertEquals(tasks.map((x) => x.taskId).sort(), [...ids].sort());
    const first = tasks.find((x) => x.taskId === ids[0])!;
    assertEquals(first.containerId, "RAW");
    const parts = unpackTaskPayload(first.body);
    assert(parts.fn.startsWith("03\n"));
    assertEquals(JSON.stringify(deserialize(parts.args)), JSON.stringify({ items: [1, 2] }));
    await eventually(async () => (await fx.endpointStatus(epId)).status === "online", "online");
    batch = await fx.getBatchResult(ids);
    for (const id of ids) assertEquals(batch.get(id)?.status, "waiting-for-nodes");

    await ep.sendStatus({
      [ids[0]]: TaskStatusCode.RUNNING,
      [ids[1]]: TaskStatusCode.WAITING_FOR_LAUNCH,
    });
    await eventually(async () => {
      const b = await fx.getBatchResult(ids);
      return b.get(ids[0])?.status === "running" && b.get(ids[1])?.status === "waiting-for-launch";
    }, "running / waiting-for-launch");

    await ep.sendResult(ids[0], { result: serializeData(3) });
    await ep.sendResult(ids[1], {
      exception: remoteException(
        "ValueError",
        "b is bad",
        'Traceback (most recent call last):\n  File "<x>", line 2\nValueError: b is bad\n',
      ),
    });
    await ep.sendResult(ids[2], { result: serializeData(30) });
    await ep.waitFor(() => ep.acks().length >= 3, 10_000, "3 acks");
    assertEquals(ep.acks().sort(), [...ids].sort());

    const results = await fx.waitForResults(ids, { timeoutMs: 10_000 });
    assertEquals(results.get(ids[0])?.value, 3);
    assertEquals(results.get(ids[0])?.status, "success");
    assertEquals(results.get(ids[2])?.value, 30);
    const err = results.get(ids[1])?.error;
    assert(err instanceof RemoteError);
    assertEquals(err.type, "ValueError");
    assertEquals(err.remoteMessage, "b is bad");
    assert(err.remoteTraceback.includes("Traceback"));
    assertEquals(results.get(ids[1])?.status, "failed");
    // handed out, and kept for the retention (a client whose answer was lost asks again and
    // gets the same record; purged afterwards: tests/service/lost_reply_test.ts)
    assertEquals((await fx.getTask(ids[0])).value, 3);
    // the status report shows up in the endpoint status log
    const st = await fx.endpointStatus(epId);
    assertEquals((st.logs[0] as Record<string, unknown>).managers, 1);
    await ep.close();
  });
});

Deno.test(
  "e2e: unfinished tasks are re-delivered on reconnect; duplicate results are dropped",
  opts,
  async () => {
    await withService(async (t) => {
      const ep = await TestEndpoint.register(t.url, t.alice, "ep-redeliver");
      const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
      const fn = await fx.registerFunction(ADD, "add");
      const epId = ep.reply.endpoint_id;
      await ep.connect();
      const ids = await fx.submit([
        { functionId: fn, endpointId: epId, args: [1, 1] },
        { functionId: fn, endpointId: epId, args: [2, 2] },
      ]);
      await ep.waitForTasks(2);
      await ep.sendResult(ids[0], { result: serializeData(2) });
      await ep.waitFor(() => ep.acks().includes(ids[0]), 10_000, "ack");
      await ep.close();
      await eventually(async () => (await fx.endpointStatus(epId)).status === "offline", "offline");

      // same endpoint comes back (same keys, same secret) without having returned ids[1]
      const again = new TestEndpoint(ep.reply, ep.keys);
      await again.connect();
      const tasks = await again.waitForTasks(1);
      assertEquals(tasks.map((x) => x.taskId), [ids[1]]);
      // a duplicate of an already stored result, then the result twice
      await again.sendResult(ids[0], { result: serializeData(999) });
      await again.sendResult(ids[1], { result: serializeData(4) });
      await again.sendResult(ids[1], { result: serializeData(888) });
      await again.waitFor(() => again.acks().length >= 3, 10_000, "3 acks");
      const results = await fx.waitForResults(ids, { timeoutMs: 10_000 });
      assertEquals(results.get(ids[0])?.value, 2);
      assertEquals(results.get(ids[1])?.value, 4);
      await again.close();
    }, { heartbeatPeriod: 0.2 }); // a vanished endpoint is noticed at the next heartbeat
  },
);

Deno.test("forwarder: one endpoint cannot take over another's identity", opts, async () => {
  await withService(async (t) => {
    const victim = await TestEndpoint.register(t.url, t.alice, "victim");
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction(ADD, "add");
    const [id] = await fx.submit([{
      functionId: fn,
      endpointId: victim.reply.endpoint_id,
      args: [1, 2],
    }]);

    // bob registers his own endpoint (so his key passes the handshake), then claims alice's uuid
    const bobs = await TestEndpoint.register(t.url, t.bob, "attacker");
    const attacker = new TestEndpoint(
      { ...bobs.reply, endpoint_id: victim.reply.endpoint_id },
      bobs.keys,
      victim.reply.endpoint_id,
    );
    await attacker.connect(bobs.reply.endpoint_secret);
    await eventually(
      () =>
        new RegExp(`refused tasks registration (from|of) ${victim.reply.endpoint_id}`).test(
          t.log(),
        ),
      "refusal in the log",
    );
    // forged result for alice's task is ignored
    await attacker.sendResult(id, { result: serializeData("forged") });
    await eventually(() => t.log().includes("dropped results from"), "forged result dropped");
    assertEquals(attacker.taskMessages().length, 0);
    assertEquals((await fx.getTask(id)).status, "waiting-for-ep");
    assertEquals((await fx.endpointStatus(victim.reply.endpoint_id)).status, "offline");
    await attacker.close();

    // a key nobody registered does not even get through the CURVE handshake (the authorizer)
    const stranger = new TestEndpoint(victim.reply, curveKeyPairZ85());
    await stranger.connect();
    await eventually(
      () => t.log().includes("refused a CURVE client key that no endpoint registered"),
      "ZAP refusal",
    );
    await stranger.close();

    // the real endpoint still gets its task and its result counts
    await victim.connectUntilAccepted();
    await victim.waitForTasks(1);
    await victim.sendResult(id, { result: serializeData(3) });
    const r = await fx.waitForResults([id], { timeoutMs: 10_000 });
    assertEquals(r.get(id)?.value, 3);
    await victim.close();
  });
});

Deno.test("forwarder: malformed frames on every socket are logged and ignored", opts, async () => {
  await withService(async (t) => {
    const ep = await TestEndpoint.register(t.url, t.alice, "fuzzed");
    await ep.connect();
    const garbage: Uint8Array[][] = [
      [new Uint8Array()],
      [new Uint8Array([0x80, 0x04, 0x95, 0xff])], // truncated pickle
      [new Uint8Array(Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff))],
      [new TextEncoder().encode("HEARTBEAT"), new TextEncoder().encode("extra frame")],
      [encodePickle([1, 2, 3])],
      [encodePickle({ task_id: "not-a-uuid", result: "00\nx" })],
      [encodePickle({ task_id: crypto.randomUUID(), result: 5 })],
      [encodePickle({ registration: ep.reply.endpoint_id, endpoint_secret: "wrong" })],
    ];
    for (const sock of [ep.tasks, ep.results, ep.commands]) {
      for (const frames of garbage) await pollSend(sock, frames);
    }
    // a non-uuid identity with a registered key
    const odd = new TestEndpoint(ep.reply, ep.keys, "not-a-uuid-identity");
    await odd.connect();
    // a plain (no CURVE) client
    const plain = new Dealer({ routingId: ep.reply.endpoint_id });
    plain.connect(`tcp://127.0.0.1:${ep.reply.tasks_port}`);
    plain.send([new Uint8Array([1, 2, 3])]).catch(() => {}); // never completes the handshake
    await eventually(() => {
      const log = t.log();
      return ["tasks", "results", "commands"].every((ch) =>
        log.includes(`dropped a malformed ${ch} message`)
      );
    }, "malformed-frame warnings on all sockets");
    await eventually(() => t.log().includes("non-uuid identity"), "non-uuid identity warning");
    // logged once per kind, not once per frame
    const lines = t.log().split("\n").filter((l) =>
      l.includes("WARN") && l.includes("dropped a malformed results message")
    );
    assert(lines.length <= 4, `too many warnings: ${lines.length}`);
    await plain.close();
    await odd.close();

    // the service still works end to end for the same endpoint
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction(ADD, "add");
    const [id] = await fx.submit([{
      functionId: fn,
      endpointId: ep.reply.endpoint_id,
      args: [2, 3],
    }]);
    await ep.waitForTasks(1);
    await ep.sendResult(id, { result: serializeData(5) });
    const r = await fx.waitForResults([id], { timeoutMs: 10_000 });
    assertEquals(r.get(id)?.value, 5);
    assertEquals((await api(`${t.url}/version`, null)).status, 200);
    await ep.close();
  });
});
