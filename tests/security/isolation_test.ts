/**
 * The real local service never shows or changes another user's endpoint, function, task or
 * result, on every route of the API (all three prefixes), and the status page does not
 * list them either. Alice's data is set up for real (an endpoint speaking to the forwarder
 * delivers one result); Bob then tries every route with Alice's ids.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { encodeResult } from "../../src/protocol/messages.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, type StartedService, startService } from "../helpers/service.ts";
import { connectPeer, registerEndpoint, sendWithin } from "../fuzz/_peer.ts";

interface AliceData {
  ep: string;
  fn: string;
  pendingTask: string;
  doneTask: string;
  group: string;
  aliceToken: string;
  bobToken: string;
  bobFn: string;
  bobEp: string;
}

async function setup(svc: StartedService, home: string): Promise<AliceData> {
  await addUser(home, "alice", "alice-pw");
  await addUser(home, "bob", "bob-pw");
  const alice = await loginViaForm(svc.authUrl, "alice", "alice-pw");
  const bob = await loginViaForm(svc.authUrl, "bob", "bob-pw");
  const ac = new FuncXClient({ serviceAddress: svc.url, token: alice.access_token });
  const bc = new FuncXClient({ serviceAddress: svc.url, token: bob.access_token });
  const reg = await registerEndpoint(svc.url, alice.access_token, "alice-ep");
  const bobReg = await registerEndpoint(svc.url, bob.access_token, "bob-ep");
  const fn = await ac.registerFunction("def secret_fn(x):\n    return x\n", "secret_fn");
  const bobFn = await bc.registerFunction("def f(x):\n    return x\n", "f");
  const group = crypto.randomUUID();
  const [doneTask, pendingTask] = await ac.submit([
    { functionId: fn, endpointId: reg.endpoint_id, args: [1] },
    { functionId: fn, endpointId: reg.endpoint_id, args: [2] },
  ], { taskGroupId: group });
  // alice's endpoint receives the first task and returns a result the service stores
  const peer = await connectPeer(reg, { identity: reg.endpoint_id, secret: reg.endpoint_secret });
  try {
    let seen = false;
    const until = Date.now() + 10_000;
    while (!seen && Date.now() < until) seen = (await peer.nextTask(500))?.taskId === doneTask;
    assert(seen, "alice's endpoint got its task");
    assert(
      await sendWithin(
        peer.results,
        encodeResult({ task_id: doneTask, result: serializeData("alice-secret-result") }),
      ),
    );
    const ackUntil = Date.now() + 10_000;
    while (!peer.acks.has(doneTask) && Date.now() < ackUntil) await peer.nextTask(100);
    assert(peer.acks.has(doneTask), "the result was stored and acked");
  } finally {
    peer.close();
  }
  return {
    ep: reg.endpoint_id,
    fn,
    pendingTask,
    doneTask,
    group,
    aliceToken: alice.access_token,
    bobToken: bob.access_token,
    bobFn,
    bobEp: bobReg.endpoint_id,
  };
}

function _leaks(text: string): string[] {
  const out: string[] = [];
  if (text.includes("alice-secret-result") || text.includes(serializeData("alice-secret-result"))) {
    out.push("result");
  }
  if (text.includes("secret_fn")) out.push("function source/name");
  if (text.includes("alice-ep")) out.push("endpoint name");
  return out;
}

Deno.test({
  name: "security: no API route shows or changes another user's endpoint, function or task",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-sec-iso-" });
    const svc = await startService({ home });
    try {
      const d = await setup(svc, home);
      const base = svc.url.replace(/\/v2$/, "");
      const bobPub = curveKeyPairZ85().publicKey;
      const attempts: { method: string; path: string; body?: unknown }[] = [
        { method: "GET", path: `/endpoints/${d.ep}/status` },
        { method: "DELETE", path: `/endpoints/${d.ep}` },
        {
          method: "POST",
          path: "/endpoints",
          body: {
            endpoint_name: "x",
            endpoint_uuid: d.ep,
            version: "0.3.4",
            endpoint_pubkey: bobPub,
          },
        },
        {
          method: "POST",
          path: "/register_endpoint_2",
          body: {
            endpoint_name: "x",
            endpoint_uuid: d.ep,
            version: "0.3.4",
            endpoint_pubkey: bobPub,
          },
        },
        { method: "PUT", path: `/functions/${d.fn}`, body: { public: true, function_name: "z" } },
        { method: "DELETE", path: `/functions/${d.fn}` },
        { method: "POST", path: "/submit", body: { tasks: [[d.fn, d.bobEp, "1\na"]] } },
        { method: "POST", path: "/submit", body: { tasks: [[d.bobFn, d.ep, "1\na"]] } },
        { method: "POST", path: "/submit", body: { func: d.fn, endpoint: d.ep, payload: "1\na" } },
        {
          method: "POST",
          path: "/submit",
          body: { task_group_id: d.group, tasks: [[d.bobFn, d.ep, "1\na"]] },
        },
        { method: "GET", path: `/tasks/${d.doneTask}` },
        { method: "GET", path: `/tasks/${d.doneTask}/status` },
        { method: "GET", path: `/${d.doneTask}/status` },
        { method: "GET", path: `/tasks/${d.pendingTask}` },
        { method: "GET", path: `/tasks/${d.doneTask.toUpperCase()}` },
        { method: "POST", path: "/batch_status", body: { task_ids: [d.doneTask, d.pendingTask] } },
        {
          method: "POST",
          path: "/batch_status",
          body: { task_ids: [d.doneTask.toUpperCase(), ` ${d.doneTask}`] },
        },
        { method: "GET", path: `/task_groups/${d.group}` },
      ];
      const problems: string[] = [];
      for (const prefix of ["/v2", "/v1", "/api/v1"]) {
        for (const a of attempts) {
          const res = await fetch(`${base}${prefix}${a.path}`, {
            method: a.method,
            headers: {
              authorization: `Bearer ${d.bobToken}`,
              "content-type": "application/json",
            },
            body: a.body === undefined ? undefined : JSON.stringify(a.body),
          });
          const text = await res.text();
          const what = `${a.method} ${prefix}${a.path} -> ${res.status}`;
          const leaks = _leaks(text);
          if (leaks.length > 0) problems.push(`${what} leaks ${leaks.join(", ")}`);
          if (a.path === "/batch_status") {
            const body = JSON.parse(text);
            for (const [k, v] of Object.entries(body.results ?? {})) {
              const rec = v as Record<string, unknown>;
              if (rec.status !== "Failed" || rec.reason !== "Unknown task id") {
                problems.push(`${what}: task ${k} is visible: ${JSON.stringify(rec)}`);
              }
            }
          } else if (a.path !== "/submit" && res.status < 400) {
            problems.push(`${what}: not refused: ${text.slice(0, 200)}`);
          }
          if (a.path === "/submit" && res.status === 207) {
            const r = JSON.parse(text).results as { status: string }[];
            if (r.some((x) => x.status === "Success")) {
              problems.push(`${what}: a task was accepted`);
            }
          }
        }
      }
      assertEquals(problems, []);
      const later: string[] = [];

      // nothing of alice's changed: her endpoint, function, pending task and result are intact
      const ac = new FuncXClient({ serviceAddress: svc.url, token: d.aliceToken });
      assertEquals((await ac.endpointStatus(d.ep)).status, "offline");
      const got = await ac.getBatchResult([d.doneTask, d.pendingTask]);
      assertEquals(got.get(d.doneTask)?.value, "alice-secret-result");
      assertEquals(got.get(d.pendingTask)?.pending, true);
      const [again] = await ac.submit([{ functionId: d.fn, endpointId: d.ep, args: [3] }]);
      assert(again, "alice's function is still hers and private");
      const bc = new FuncXClient({ serviceAddress: svc.url, token: d.bobToken });
      await bc.submit([{ functionId: d.fn, endpointId: d.bobEp, args: [3] }]).then(
        () => later.push("bob could submit alice's private function"),
        () => {},
      );
      assertEquals(later, []);
    } finally {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "security: the status page does not list other users' endpoints or tasks",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-sec-iso-" });
    const svc = await startService({ home });
    try {
      const d = await setup(svc, home);
      // Any local user reaches the service over loopback: on a shared login node the
      // status page is served to every user of the machine, authenticated or not.
      const res = await fetch(svc.url.replace(/\/v2$/, "/"), {
        headers: { authorization: `Bearer ${d.bobToken}` },
      });
      const text = await res.text();
      const shown = [d.ep, d.pendingTask, d.doneTask, "alice-ep"].filter((x) => text.includes(x));
      assertEquals(shown, [], "alice's endpoint/task ids are listed on the status page");
    } finally {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
