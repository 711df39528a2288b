/**
 * HTTP API: ownership on every route (another user gets 403/404 and never data), upstream
 * error records for bad input (malformed JSON, oversized bodies, unknown ids, bad UUIDs),
 * 200/207 submit semantics, the legacy submit form, function update/delete, endpoint delete.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import {
  packBuffers,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { FuncXClient, SubmitError } from "../../src/sdk/client.ts";
import { registerEndpoint } from "./_endpoint.ts";
import { api, rejectsWith, withService } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FN = packBuffers([serializeSource("f", "def f(x):\n    return x\n")]);
const PAYLOAD = packBuffers([serializeData(tuple(1)), serializeData({})]);

Deno.test(
  "api: another user's endpoint, function and task are refused on every route",
  opts,
  async () => {
    await withService(async (t) => {
      const { reply } = await registerEndpoint(t.url, t.alice, "alice-ep");
      const ep = reply.endpoint_id;
      const fn = (await api(`${t.url}/functions`, t.alice, "POST", {
        function_name: "f",
        function_code: FN,
      })).body.function_uuid as string;
      const sub = await api(`${t.url}/submit`, t.alice, "POST", { tasks: [[fn, ep, PAYLOAD]] });
      assertEquals(sub.status, 200);
      const task = (sub.body.results as { task_uuid: string }[])[0].task_uuid;
      const group = sub.body.task_group_id as string;

      const secretBits = [reply.endpoint_secret, "alice-ep", PAYLOAD.slice(0, 30)];
      const noLeak = (body: unknown) => {
        const text = JSON.stringify(body);
        for (const s of secretBits) assert(!text.includes(s), `leaked ${s}: ${text}`);
      };
      const checks: [string, string, unknown, number, number][] = [
        ["GET", `/endpoints/${ep}/status`, undefined, 403, 9],
        ["DELETE", `/endpoints/${ep}`, undefined, 403, 9],
        ["PUT", `/functions/${fn}`, { function_name: "stolen" }, 403, 8],
        ["DELETE", `/functions/${fn}`, undefined, 403, 8],
        ["GET", `/tasks/${task}`, undefined, 404, 6],
        ["GET", `/tasks/${task}/status`, undefined, 404, 6],
        ["GET", `/${task}/status`, undefined, 404, 6],
        ["GET", `/task_groups/${group}`, undefined, 404, 20],
        [
          "POST",
          `/endpoints`,
          {
            endpoint_name: "takeover",
            endpoint_uuid: ep,
            version: "0.3.4",
            endpoint_pubkey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
          },
          400,
          11,
        ],
      ];
      for (const [method, path, body, status, code] of checks) {
        for (const prefix of [t.url, t.url.replace(/\/v2$/, "/v1")]) {
          const r = await api(`${prefix}${path}`, t.bob, method, body);
          assertEquals([method, path, r.status, r.body.code], [method, path, status, code]);
          assertEquals(r.body.status, "Failed");
          noLeak(r.body);
        }
      }
      // submit to alice's endpoint or with alice's private function: per-task refusal, 207
      const mine = (await registerEndpoint(t.url, t.bob, "bob-ep")).reply.endpoint_id;
      const bobFn = (await api(`${t.url}/functions`, t.bob, "POST", { function_code: FN })).body
        .function_uuid as string;
      const s = await api(`${t.url}/submit`, t.bob, "POST", {
        tasks: [[bobFn, ep, PAYLOAD], [fn, mine, PAYLOAD], [bobFn, mine, PAYLOAD]],
      });
      assertEquals(s.status, 207);
      const results = s.body.results as Record<string, unknown>[];
      assertEquals(results.map((r) => r.status), ["Failed", "Failed", "Success"]);
      assertEquals(results.map((r) => r.http_status_code), [403, 403, 200]);
      assertEquals(results.map((r) => r.code), [9, 8, undefined]);
      // batch_status: alice's task is "unknown" to bob
      const bs = await api(`${t.url}/batch_status`, t.bob, "POST", { task_ids: [task] });
      assertEquals((bs.body.results as Record<string, unknown>)[task], {
        task_id: task,
        status: "Failed",
        reason: "Unknown task id",
      });
      // and alice still has everything
      const st = await api(`${t.url}/tasks/${task}`, t.alice);
      assertEquals(st.status, 200);
      assertEquals(st.body.status, "waiting-for-ep");
      assertEquals((await api(`${t.url}/endpoints/${ep}/status`, t.alice)).body.status, "offline");
    });
  },
);

Deno.test(
  "api: bad input gets clear error records and the service keeps running",
  opts,
  async () => {
    await withService(async (t) => {
      const post = (path: string, body: unknown) => api(`${t.url}${path}`, t.alice, "POST", body);
      const malformed = await post("/submit", "{not json");
      assertEquals([malformed.status, malformed.body.code], [400, 17]);
      match(String(malformed.body.reason), /not valid JSON/);
      const arr = await post("/functions", "[1,2]");
      assertEquals([arr.status, arr.body.code], [400, 17]);
      match(String(arr.body.reason), /must be a JSON object/);

      // > 5 MiB, declared and streamed
      const big = "x".repeat(5 * 1024 * 1024 + 10);
      const over = await post("/functions", JSON.stringify({ function_code: big }));
      assertEquals([over.status, over.body.code], [413, 17]);
      match(String(over.body.reason), /exceeds the 5242880 byte limit/);
      const chunked = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 6; i++) c.enqueue(new Uint8Array(1024 * 1024).fill(120));
          c.close();
        },
      });
      const res = await fetch(`${t.url}/submit`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.alice}` },
        body: chunked,
      });
      assertEquals(res.status, 413);
      await res.body?.cancel();

      // bad UUIDs and unknown ids
      const badUuid = await api(`${t.url}/tasks/not-a-uuid`, t.alice);
      assertEquals([badUuid.status, badUuid.body.code], [400, 22]);
      match(String(badUuid.body.reason), /Invalid UUID for task_id/);
      const unknownTask = await api(`${t.url}/tasks/${crypto.randomUUID()}`, t.alice);
      assertEquals([unknownTask.status, unknownTask.body.code], [404, 6]);
      const unknownEp = await api(`${t.url}/endpoints/${crypto.randomUUID()}/status`, t.alice);
      assertEquals([unknownEp.status, unknownEp.body.code], [404, 4]);
      const unknownFn = await api(`${t.url}/functions/${crypto.randomUUID()}`, t.alice, "DELETE");
      assertEquals([unknownFn.status, unknownFn.body.code], [404, 3]);
      const badEpUuid = await post("/endpoints", {
        endpoint_name: "x",
        endpoint_uuid: "1234",
        version: "0.3.4",
        endpoint_pubkey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
      });
      assertEquals([badEpUuid.status, badEpUuid.body.code], [400, 22]);
      const noVersion = await post("/endpoints", { endpoint_name: "x" });
      assertEquals([noVersion.status, noVersion.body.code], [400, 16]);
      const old = await post("/endpoints", { endpoint_name: "x", version: "0.0.5" });
      assertEquals([old.status, old.body.code], [400, 19]);
      const noKey = await post("/endpoints", { endpoint_name: "x", version: "0.3.4" });
      assertEquals([noKey.status, noKey.body.code], [400, 16]);
      match(String(noKey.body.reason), /endpoint_pubkey is required/);
      const badCode = await post("/functions", { function_code: "garbage" });
      assertEquals([badCode.status, badCode.body.code], [400, 17]);
      match(String(badCode.body.reason), /one packed buffer/);
      const badTasks = await post("/submit", { tasks: "nope" });
      assertEquals([badTasks.status, badTasks.body.code], [400, 17]);
      const empty = await post("/submit", {});
      assertEquals([empty.status, empty.body.code], [400, 16]);
      const mixed = await post("/submit", {
        tasks: [
          ["bad", crypto.randomUUID(), "x"],
          [crypto.randomUUID(), crypto.randomUUID(), "x"],
          5,
        ],
      });
      assertEquals(mixed.status, 207);
      assertEquals((mixed.body.results as Record<string, unknown>[]).map((r) => r.code), [
        22,
        3,
        17,
      ]);
      const bs = await post("/batch_status", { task_ids: "x" });
      assertEquals([bs.status, bs.body.code], [400, 16]);
      const bsUnknown = await post("/batch_status", { task_ids: ["garbage", 7] });
      assertEquals(Object.keys(bsUnknown.body.results as object).sort(), ["7", "garbage"]);
      const route = await api(`${t.url}/nope`, t.alice);
      assertEquals(route.status, 404);
      const method = await api(`${t.url}/submit`, t.alice, "GET");
      assertEquals(method.status, 405);
      const version = await api(`${t.url}/version?service=bogus`, null);
      assertEquals([version.status, version.body.code], [400, 17]);
      // still serving
      assertEquals((await api(`${t.url}/version?service=all`, null)).body.api, "0.3.4");
    });
  },
);

Deno.test(
  "api: legacy submit, function update/delete, endpoint delete fails its tasks",
  opts,
  async () => {
    await withService(async (t) => {
      const { reply } = await registerEndpoint(t.url, t.alice, "ep");
      const ep = reply.endpoint_id;
      const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
      const fn = await fx.registerFunction("def f(x):\n    return x\n", "f");
      const legacy = await api(`${t.url}/submit`, t.alice, "POST", {
        func: fn,
        endpoint: ep,
        payload: PAYLOAD,
      });
      assertEquals(legacy.status, 200);
      const task = (legacy.body.results as { task_uuid: string }[])[0].task_uuid;
      const upd = await api(`${t.url}/functions/${fn}`, t.alice, "PUT", {
        function_name: "g",
        description: "d",
      });
      assertEquals(upd.status, 200);
      const badUpd = await api(`${t.url}/functions/${fn}`, t.alice, "PUT", { public: "yes" });
      assertEquals([badUpd.status, badUpd.body.code], [400, 17]);
      // deleting the endpoint fails its unfinished tasks with a decodable remote exception
      const del = await api(`${t.url}/endpoints/${ep}`, t.alice, "DELETE");
      assertEquals(del.status, 200);
      assertEquals(del.body.failed_tasks, 1);
      const out = await fx.getTask(task);
      assertEquals(out.status, "failed");
      assertEquals(out.error?.type, "EndpointDeleted");
      match(out.error!.remoteMessage, /was deleted before the task finished/);
      assertEquals((await api(`${t.url}/endpoints/${ep}/status`, t.alice)).status, 404);
      const delFn = await api(`${t.url}/functions/${fn}`, t.alice, "DELETE");
      assertEquals(delFn.status, 200);
      const gone = await api(`${t.url}/submit`, t.alice, "POST", { tasks: [[fn, ep, PAYLOAD]] });
      assertEquals(gone.status, 207);
      // the SDK reports which tasks of a batch were accepted
      const other = (await registerEndpoint(t.url, t.alice, "ep2")).reply.endpoint_id;
      const fn2 = await fx.registerFunction("def g():\n    return 1\n", "g");
      const err = await rejectsWith(
        () =>
          fx.submit([{ functionId: fn2, endpointId: other }, {
            functionId: fn,
            endpointId: other,
          }]),
        SubmitError,
      );
      assertEquals(err.httpStatus, 404);
      assertEquals(err.code, 3);
      assertEquals(err.taskIds[1], null);
      assertEquals((await fx.getTask(err.taskIds[0]!)).status, "waiting-for-ep");
    });
  },
);
