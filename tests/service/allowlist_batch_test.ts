/**
 * The 0.3.x SDK calls `add_to_whitelist` / `get_whitelist` / `delete_from_whitelist`
 * (`/endpoints/<id>/whitelist`) and `map_run` (`POST /submit_batch`), with the request and
 * response shapes of funcX SDK 0.3.7 and the web service of that time.
 */
import assert from "node:assert/strict";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { functionCodeHash } from "../../src/protocol/function_hash.ts";
import {
  packBuffers,
  serializeData,
  serializeSource,
  tuple,
} from "../../src/protocol/serialize.ts";
import { registerEndpoint } from "./_endpoint.ts";
import { api, withService } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const F_SER = serializeSource("f", "def f(x):\n    return x\n");
const G_SER = serializeSource("g", "def g(x):\n    return -x\n");
const args = (x: number) => packBuffers([serializeData(tuple(x)), serializeData({})]);

Deno.test(
  "whitelist: GET/POST/DELETE as the SDK calls them; FunctionNotPermitted on submit",
  opts,
  async () => {
    await withService(async (t) => {
      const ep = (await registerEndpoint(t.url, t.alice, "ep")).reply.endpoint_id;
      const fn = async (ser: string) =>
        (await api(`${t.url}/functions`, t.alice, "POST", { function_code: packBuffers([ser]) }))
          .body.function_uuid as string;
      const F = await fn(F_SER);
      const G = await fn(G_SER);
      const wl = `${t.url}/endpoints/${ep}/whitelist`;
      const submit = (fid: string) =>
        api(`${t.url}/submit`, t.alice, "POST", { tasks: [[fid, ep, args(1)]] });

      // not restricted: anything of alice's runs
      assert.deepEqual(await api(wl, t.alice), {
        status: 200,
        body: { status: "Success", result: [] },
      });
      assert.equal((await submit(G)).status, 200);

      // add_to_whitelist(ep, [F]): {"func": [ids]}
      const added = await api(wl, t.alice, "POST", { func: [F] });
      assert.equal(added.status, 200);
      assert.equal(added.body.status, "Success");
      assert.match(added.body.reason as string, new RegExp(F));
      assert.deepEqual((await api(wl, t.alice)).body, { status: "Success", result: [F] });
      assert.equal((await submit(F)).status, 200);
      const refused = await submit(G);
      assert.equal(refused.status, 207);
      const rec = (refused.body.results as Record<string, unknown>[])[0];
      assert.equal(rec.code, 10);
      assert.equal(rec.http_status_code, 403);
      assert.equal(rec.status, "Failed");
      assert.deepEqual(rec.error_args, [G, ep]);
      assert.match(rec.reason as string, /not permitted/);

      // someone else's endpoint, unknown functions, malformed bodies
      assert.equal((await api(wl, t.bob)).body.code, 9);
      assert.equal((await api(wl, t.bob, "POST", { func: [G] })).status, 403);
      const unknown = await api(wl, t.alice, "POST", { func: [crypto.randomUUID()] });
      assert.equal(unknown.body.code, 3);
      assert.equal((await api(wl, t.alice, "POST", {})).body.code, 16);
      assert.equal((await api(wl, t.alice, "POST", { func: ["nope"] })).body.code, 22);

      // delete_from_whitelist(ep, [F]): one DELETE per id; the endpoint stays restricted
      assert.deepEqual(await api(`${wl}/${F}`, t.alice, "DELETE"), {
        status: 200,
        body: { status: "Success", result: F },
      });
      assert.equal((await api(`${wl}/${F}`, t.alice, "DELETE")).status, 404);
      assert.equal((await api(`${wl}/${F}`, t.bob, "DELETE")).status, 403);
      assert.equal(((await submit(F)).body.results as { code: number }[])[0].code, 10);
    });
  },
);

Deno.test(
  "whitelist: an endpoint's config allowed_functions arrive with its registration",
  opts,
  async () => {
    await withService(async (t) => {
      const fnCode = packBuffers([G_SER]);
      const G = (await api(`${t.url}/functions`, t.alice, "POST", { function_code: fnCode })).body
        .function_uuid as string;
      const keys = curveKeyPairZ85();
      const uuid = crypto.randomUUID();
      const register = (allowed: unknown) =>
        api(`${t.url}/endpoints`, t.alice, "POST", {
          endpoint_name: "ep",
          endpoint_uuid: uuid,
          version: "0.3.4",
          endpoint_pubkey: keys.publicKey,
          allowed_functions: allowed,
        });
      const missing = crypto.randomUUID();
      const r = await register([G, missing]);
      assert.equal(r.status, 200);
      // the hashes let the endpoint check task code itself; unknown ids get none
      assert.deepEqual(r.body.allowed_function_hashes, { [G]: functionCodeHash(G_SER) });
      const wl = `${t.url}/endpoints/${uuid}/whitelist`;
      assert.deepEqual((await api(wl, t.alice)).body.result, [G, missing]);
      assert.equal((await register(["x"])).body.code, 22);
      assert.equal((await register("all")).body.code, 17);
      // null: not restricted any more
      const open = await register(null);
      assert.equal(open.body.allowed_function_hashes, undefined);
      assert.deepEqual((await api(wl, t.alice)).body.result, []);
    });
  },
);

Deno.test("submit_batch: map_run's request and response", opts, async () => {
  await withService(async (t) => {
    const ep = (await registerEndpoint(t.url, t.alice, "ep")).reply.endpoint_id;
    const G = (await api(`${t.url}/functions`, t.alice, "POST", {
      function_code: packBuffers([G_SER]),
    })).body.function_uuid as string;
    const batch = (func: string, payload: unknown, token = t.alice) =>
      api(`${t.url}/submit_batch`, token, "POST", {
        endpoints: [ep],
        func,
        payload,
        is_async: false,
      });
    const r = await batch(G, [1, 2, 3].map(args));
    assert.equal(r.status, 200);
    assert.equal(r.body.status, "Success");
    const ids = r.body.task_uuids as string[];
    assert.equal(ids.length, 3);
    for (const id of ids) {
      const task = await api(`${t.url}/tasks/${id}`, t.alice);
      assert.equal(task.body.status, "waiting-for-ep");
    }
    // all or nothing: the first refused task's error record, nothing launched
    const before = t.svc.store.taskCounts().queued;
    assert.equal((await batch(crypto.randomUUID(), [args(1)])).body.code, 3);
    assert.equal((await batch(G, [args(1)], t.bob)).body.code, 8);
    assert.equal(
      (await api(`${t.url}/endpoints/${ep}/whitelist`, t.alice, "POST", {
        func: [G],
      })).status,
      200,
    );
    const other = (await api(`${t.url}/functions`, t.alice, "POST", {
      function_code: packBuffers([F_SER]),
    })).body.function_uuid as string;
    const refused = await batch(other, [args(1), args(2)]);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 10);
    assert.equal(t.svc.store.taskCounts().queued, before);
    assert.equal((await api(`${t.url}/submit_batch`, t.alice, "POST", { func: G })).body.code, 16);
  });
});
