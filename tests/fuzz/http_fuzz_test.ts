/**
 * Seeded, time-bounded fuzzing of every HTTP route of the real local service (run as
 * `main.ts service start --foreground`): random methods, random and mutated JSON bodies,
 * invalid JSON, wrong content types, oversized bodies, random path parameters and tokens.
 * Nothing may answer 5xx, every refusal carries a one-line reason, the service keeps
 * answering, nothing is logged as an internal error, and another user's stored endpoint,
 * function and task survive untouched.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { join } from "node:path";
import { FuncXClient } from "../../src/sdk/client.ts";
import { addUser, loginViaForm, startService } from "../helpers/service.ts";
import { fuzzSeed, Rand } from "./_rand.ts";

const SEED = fuzzSeed(20261125);
const BUDGET_MS = 7_000;

interface Route {
  method: string;
  path: string;
  body?: Record<string, unknown>;
}

function routes(ids: { ep: string; fn: string; task: string; group: string }): Route[] {
  const pub = curveKeyPairZ85().publicKey;
  return [
    { method: "GET", path: "/version?service=all" },
    { method: "GET", path: "/authenticate" },
    {
      method: "POST",
      path: "/endpoints",
      body: { endpoint_name: "x", endpoint_uuid: null, version: "0.3.4", endpoint_pubkey: pub },
    },
    {
      method: "POST",
      path: "/register_endpoint_2",
      body: { endpoint_name: "y", version: "0.3.4", endpoint_pubkey: pub },
    },
    { method: "GET", path: `/endpoints/${ids.ep}/status` },
    { method: "DELETE", path: `/endpoints/${ids.ep}` },
    {
      method: "POST",
      path: "/functions",
      body: { function_name: "f", function_code: "5\n03\nab", function_source: "", public: false },
    },
    { method: "POST", path: "/register_function", body: { function_code: "5\n00\nab" } },
    { method: "PUT", path: `/functions/${ids.fn}`, body: { description: "d", public: true } },
    { method: "DELETE", path: `/functions/${ids.fn}` },
    {
      method: "POST",
      path: "/submit",
      body: { task_group_id: ids.group, tasks: [[ids.fn, ids.ep, "1\na"]] },
    },
    { method: "GET", path: `/tasks/${ids.task}` },
    { method: "GET", path: `/tasks/${ids.task}/status` },
    { method: "GET", path: `/${ids.task}/status` },
    { method: "POST", path: "/batch_status", body: { task_ids: [ids.task] } },
    { method: "GET", path: `/task_groups/${ids.group}` },
  ];
}

const AUTH_ROUTES: Route[] = [
  { method: "GET", path: "/auth/v2/oauth2/authorize" },
  { method: "POST", path: "/auth/v2/oauth2/authorize", body: { username: "a", password: "b" } },
  { method: "GET", path: "/auth/v2/web/auth-code" },
  {
    method: "POST",
    path: "/auth/v2/oauth2/token",
    body: { grant_type: "refresh_token", refresh_token: "r", client_id: "c" },
  },
  { method: "POST", path: "/auth/v2/oauth2/token/introspect", body: { token: "t" } },
  { method: "POST", path: "/auth/v2/oauth2/token/revoke", body: { token: "t" } },
  { method: "GET", path: "/auth/v2/oauth2/userinfo" },
  { method: "GET", path: "/" },
];

Deno.test({
  name: "fuzz: every HTTP route refuses random and malformed input cleanly (seeded, bounded)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-http-" });
    const svc = await startService({ home });
    try {
      await addUser(home, "alice", "alice-pw");
      await addUser(home, "bob", "bob-pw");
      const alice = await loginViaForm(svc.authUrl, "alice", "alice-pw");
      const bob = await loginViaForm(svc.authUrl, "bob", "bob-pw");
      // bob's data, which the fuzzing (as alice / anonymous) must not disturb
      const bobClient = new FuncXClient({ serviceAddress: svc.url, token: bob.access_token });
      const reg = await fetch(`${svc.url}/endpoints`, {
        method: "POST",
        headers: { authorization: `Bearer ${bob.access_token}` },
        body: JSON.stringify({
          endpoint_name: "bob-ep",
          version: "0.3.4",
          endpoint_pubkey: curveKeyPairZ85().publicKey,
        }),
      });
      assertEquals(reg.status, 200);
      const bobEp = (await reg.json()).endpoint_id as string;
      const bobFn = await bobClient.registerFunction("def f(x):\n    return x\n", "f");
      const [bobTask] = await bobClient.submit([
        { functionId: bobFn, endpointId: bobEp, args: [1] },
      ]);

      const rand = new Rand(SEED);
      const tokens = [
        `Bearer ${alice.access_token}`,
        `Bearer ${alice.access_token}`,
        "",
        "Bearer ",
        "Bearer garbage",
        "Basic YTpi",
        `Bearer ${bob.access_token.slice(0, -2)}xx`,
      ];
      const prefixes = ["/v2", "/v1", "/api/v1"];
      // path parameters: anything but '%' (malformed percent-encoding has its own test below)
      const seg = () => encodeURI(rand.text(12).replaceAll("%", "")).replaceAll("/", "%2F");
      const idsFor = () => ({
        ep: rand.pick([
          bobEp,
          crypto.randomUUID(),
          seg(),
          "..%2F..%2Fetc",
          "0".repeat(500),
        ]),
        fn: rand.pick([bobFn, crypto.randomUUID(), seg()]),
        task: rand.pick([bobTask, crypto.randomUUID(), seg(), "%00"]),
        group: rand.pick([crypto.randomUUID(), seg()]),
      });
      const deadline = Date.now() + BUDGET_MS;
      let requests = 0;
      const problems: string[] = [];
      while (Date.now() < deadline && requests < 3000) {
        const all = [
          ...routes(idsFor()).map((r) => ({ ...r, path: rand.pick(prefixes) + r.path })),
        ];
        const route = rand.next() < 0.2 ? rand.pick(AUTH_ROUTES) : rand.pick(all);
        const method = rand.next() < 0.1
          ? rand.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
          : route.method;
        const headers: Record<string, string> = {};
        const auth = rand.pick(tokens);
        if (auth) headers.authorization = auth;
        let body: BodyInit | undefined;
        if (method !== "GET" && method !== "HEAD") {
          const k = rand.int(10);
          const base = route.body ?? {};
          if (k < 5) body = JSON.stringify(rand.mutateJson(base));
          else if (k === 5) body = JSON.stringify(base).slice(0, rand.int(20));
          else if (k === 6) body = rand.bytes(rand.int(200)) as BodyInit;
          else if (k === 7) body = new URLSearchParams({ a: rand.text() }).toString();
          else if (k === 8 && requests % 50 === 0) body = "[" + "1,".repeat(3_000_000) + "1]";
          else body = JSON.stringify(rand.json(3));
          headers["content-type"] = rand.pick([
            "application/json",
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
          ]);
        }
        const res = await fetch(`${svc.url.replace(/\/v2$/, "")}${route.path}`, {
          method,
          headers,
          body,
          redirect: "manual",
        });
        const text = await res.text();
        requests++;
        const what = `${method} ${route.path} -> ${res.status}`;
        if (res.status >= 500) problems.push(`${what}: ${text.slice(0, 200)}`);
        if (res.status >= 400 && (res.headers.get("content-type") ?? "").includes("json")) {
          let rec: Record<string, unknown> = {};
          try {
            rec = JSON.parse(text);
          } catch {
            problems.push(`${what}: error body is not JSON: ${text.slice(0, 100)}`);
          }
          const reason = rec.reason ?? rec.error_description ?? rec.error;
          if (typeof reason !== "string" || reason === "" || reason.includes("\n")) {
            problems.push(`${what}: no one-line reason: ${text.slice(0, 200)}`);
          }
        }
      }
      assertEquals(problems.slice(0, 10), [], `seed ${SEED}: ${problems.length} problem(s)`);
      assert(requests >= 100, `only ${requests} requests in ${BUDGET_MS} ms`);

      // still answering, bob's data intact
      const v = await fetch(`${svc.url}/version?service=all`);
      assertEquals(v.status, 200);
      await v.body?.cancel();
      const st = await bobClient.endpointStatus(bobEp);
      assertEquals(st.status, "offline");
      const again = await bobClient.getBatchResult([bobTask]);
      assertEquals(again.get(bobTask)?.pending, true, "bob's queued task is still queued");
      const [another] = await bobClient.submit([
        { functionId: bobFn, endpointId: bobEp, args: [2] },
      ]);
      assert(another);
      const log = Deno.readTextFileSync(join(home, "service", "service.log"));
      const internal = log.split("\n").filter((l) => / ERROR /.test(l));
      assertEquals(internal.slice(0, 5), [], "no internal errors logged");
    } finally {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "fuzz: malformed percent-encoding in a path parameter is a 400, not an internal error",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = Deno.makeTempDirSync({ prefix: "fx-fuzz-http-" });
    const svc = await startService({ home });
    try {
      await addUser(home, "alice", "alice-pw");
      const alice = await loginViaForm(svc.authUrl, "alice", "alice-pw");
      const headers = { authorization: `Bearer ${alice.access_token}` };
      for (
        const [method, path] of [
          ["GET", "/tasks/%"],
          ["GET", "/tasks/%zz/status"],
          ["GET", "/%E0%A4%A/status"],
          ["GET", "/endpoints/%/status"],
          ["DELETE", "/endpoints/abc%"],
          ["PUT", "/functions/%%"],
          ["DELETE", "/functions/%"],
          ["GET", "/task_groups/%c0"],
        ]
      ) {
        const res = await fetch(`${svc.url}${path}`, { method, headers, body: undefined });
        const body = await res.json();
        assertEquals(
          [method, path, res.status],
          [method, path, 400],
          `${method} ${path}: ${JSON.stringify(body)}`,
        );
        assert(typeof body.reason === "string" && !body.reason.includes("\n"));
      }
    } finally {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
