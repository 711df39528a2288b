/**
 * Seeded, bounded fuzzing of the service: random and malformed bodies into every HTTP
 * route, random and mutated frames into every forwarder socket. Nothing may give a 5xx,
 * crash the service or change stored data; the service keeps working afterwards.
 * Seed: `FUZZ_SEED` (default 20261125).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  encodeEPStatusReport,
  encodeRegistration,
  encodeResult,
} from "../../src/protocol/messages.ts";
import { serializeData } from "../../src/protocol/serialize.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { pollSend, TestEndpoint } from "./_endpoint.ts";
import { withService } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261125);

/** mulberry32 */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}

type R = ReturnType<typeof rng>;
const FIELDS = [
  "endpoint_name",
  "endpoint_uuid",
  "version",
  "endpoint_pubkey",
  "function_code",
  "function_name",
  "function_source",
  "container_uuid",
  "tasks",
  "task_group_id",
  "task_ids",
  "func",
  "endpoint",
  "payload",
  "public",
  "description",
  "grant_type",
  "code",
  "code_verifier",
  "refresh_token",
  "token",
  "client_id",
  "scope",
  "redirect_uri",
];
const STRINGS = [
  "",
  "0.3.4",
  "0.0.1",
  "../../etc/passwd",
  "%00",
  "\u0000",
  "\ud800",
  "💥",
  "a".repeat(3000),
  "12\n00\ngAQu\n",
  "03\n",
  "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
  "null",
  "{}",
  "00000000-0000-0000-0000-000000000000",
  "not-a-uuid",
];

function randomValue(r: R, depth = 0): unknown {
  switch (r.int(depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return r.next() < 0.5;
    case 2:
      return r.pick([0, -1, 1e308, 2 ** 53 + 1, 0.5, NaN]);
    case 3:
      return r.pick(STRINGS);
    case 4:
      return crypto.randomUUID();
    case 5:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(5); i > 0; i--) o[r.pick(FIELDS)] = randomValue(r, depth + 1);
      return o;
    }
  }
}

function randomBody(r: R): string {
  switch (r.int(6)) {
    case 0:
      return String.fromCharCode(...Array.from({ length: r.int(200) }, () => r.int(256)));
    case 1:
      return JSON.stringify(randomValue(r)).slice(0, r.int(50) + 1); // truncated JSON
    case 2:
      return "[".repeat(2000) + "]".repeat(2000); // deep nesting
    case 3:
      return new URLSearchParams(
        Object.fromEntries(FIELDS.slice(0, r.int(8)).map((f) => [f, r.pick(STRINGS)])),
      ).toString();
    default:
      return JSON.stringify(randomValue(r));
  }
}

function randomId(r: R): string {
  if (r.next() < 0.2) return r.pick(["%E0%A4%A", "%ZZ", "%ED%A0%80", "a%2Fb", "%00"]);
  const s = r.pick([...STRINGS.filter((x) => x !== "" && x !== "\ud800"), crypto.randomUUID()]);
  return encodeURIComponent(s);
}

Deno.test(`fuzz: random bodies into every HTTP route (seed ${SEED})`, opts, async () => {
  await withService(async (t) => {
    const r = rng(SEED);
    const base = t.url.replace(/\/v2$/, "");
    // stored data that must survive: a result not fetched yet, a queued task
    const ep = await TestEndpoint.register(t.url, t.alice, "keep");
    await ep.connect();
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction("def f(x):\n    return x\n", "f");
    const [done, queued] = await fx.submit([
      { functionId: fn, endpointId: ep.reply.endpoint_id, args: [1] },
      { functionId: fn, endpointId: ep.reply.endpoint_id, args: [2] },
    ]);
    await ep.waitForTasks(2);
    await ep.sendResult(done, { result: serializeData("kept") });
    await ep.waitFor(() => ep.acks().includes(done), 10_000, "ack");
    await ep.close();

    const routes: [string, () => string][] = [
      ["GET", () => `/v2/version?service=${randomId(r)}`],
      ["POST", () => "/v2/endpoints"],
      ["GET", () => `/v2/endpoints/${randomId(r)}/status`],
      ["DELETE", () => `/v2/endpoints/${randomId(r)}`],
      ["POST", () => "/v2/functions"],
      ["PUT", () => `/v2/functions/${randomId(r)}`],
      ["DELETE", () => `/v2/functions/${randomId(r)}`],
      ["POST", () => "/v1/submit"],
      ["GET", () => `/v2/tasks/${randomId(r)}`],
      ["POST", () => "/v2/batch_status"],
      ["GET", () => `/v2/task_groups/${randomId(r)}`],
      ["POST", () => `/v2/${randomId(r)}`],
      ["POST", () => "/auth/v2/oauth2/token"],
      ["POST", () => "/auth/v2/oauth2/token/introspect"],
      ["POST", () => "/auth/v2/oauth2/authorize"],
      [
        "GET",
        () => `/auth/v2/oauth2/authorize?client_id=${randomId(r)}&code_challenge=${randomId(r)}`,
      ],
      ["GET", () => `/auth/v2/web/auth-code?code=${randomId(r)}`],
      ["GET", () => "/auth/v2/oauth2/userinfo"],
      ["POST", () => "/"],
    ];
    const deadline = Date.now() + 60_000;
    let n = 0;
    for (let round = 0; round < 8 && Date.now() < deadline; round++) {
      for (const [method, path] of routes) {
        const p = path();
        const headers: Record<string, string> = {};
        const auth = r.int(4);
        if (auth === 0) headers.authorization = `Bearer ${t.alice}`;
        if (auth === 1) headers.authorization = r.pick(["Bearer", "Basic !!!", "Bearer fxa_x y"]);
        if (r.next() < 0.5) {
          headers["content-type"] = r.pick([
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
          ]);
        }
        const body = method === "GET" || method === "DELETE" ? undefined : randomBody(r);
        const res = await fetch(`${base}${p}`, { method, headers, body });
        const text = await res.text();
        n++;
        assert(res.status < 500, `${method} ${p} -> ${res.status}: ${text.slice(0, 200)}`);
        if (p.startsWith("/v") && res.status >= 400) {
          const rec = JSON.parse(text);
          assertEquals(rec.status, "Failed", `${method} ${p}: ${text.slice(0, 200)}`);
          assert(typeof rec.reason === "string" && rec.reason.length > 0);
        }
      }
    }
    assert(n >= routes.length, "fuzzed every route at least once");
    const after = await fx.getBatchResult([done, queued]);
    assertEquals(after.get(done)?.value, "kept");
    assertEquals(after.get(queued)?.status, "waiting-for-nodes");
    assert(!t.log().includes(" ERROR "), "no internal errors logged");
  });
});

Deno.test(`fuzz: mutated frames into every forwarder socket (seed ${SEED})`, opts, async () => {
  await withService(async (t) => {
    const r = rng(SEED + 1);
    const ep = await TestEndpoint.register(t.url, t.alice, "fuzz");
    await ep.connect();
    const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
    const fn = await fx.registerFunction("def f(x):\n    return x\n", "f");
    const [done, queued] = await fx.submit([
      { functionId: fn, endpointId: ep.reply.endpoint_id, args: [1] },
      { functionId: fn, endpointId: ep.reply.endpoint_id, args: [2] },
    ]);
    await ep.waitForTasks(2);
    await ep.sendResult(done, { result: serializeData("kept") });
    await ep.waitFor(() => ep.acks().includes(done), 10_000, "ack");

    const id = ep.reply.endpoint_id;
    const templates = [
      () => encodeRegistration({ registration: id, endpoint_secret: "wrong-secret" }),
      () => encodeRegistration({ registration: crypto.randomUUID() }),
      () => encodeResult({ task_id: crypto.randomUUID(), result: serializeData(r.int(100)) }),
      () => encodeResult({ task_id: done, result: serializeData("overwrite?") }),
      () => encodeEPStatusReport(id, { managers: r.int(5) }, { [crypto.randomUUID()]: r.int(7) }),
      () => new TextEncoder().encode("HEARTBEAT"),
      () => new Uint8Array([2, ...new TextEncoder().encode(id)]),
    ];
    const mutate = (b: Uint8Array): Uint8Array => {
      const out = Array.from(b);
      switch (r.int(4)) {
        case 0:
          for (let i = r.int(4) + 1; i > 0 && out.length; i--) {
            out[r.int(out.length)] ^= 1 << r.int(8);
          }
          break;
        case 1:
          out.length = r.int(out.length + 1);
          break;
        case 2:
          for (let i = r.int(20); i > 0; i--) out.splice(r.int(out.length + 1), 0, r.int(256));
          break;
        default:
          break; // unmodified
      }
      return new Uint8Array(out);
    };
    const socks = [ep.tasks, ep.results, ep.commands];
    for (let i = 0; i < 300; i++) {
      const frames = [mutate(r.pick(templates)())];
      if (r.next() < 0.1) frames.push(mutate(r.pick(templates)()));
      await pollSend(r.pick(socks), frames);
    }
    // an empty (truncated) frame is indistinguishable from a ROUTER_NOTIFY connection event:
    // it ends this connection's trust, so register again as the real endpoint would
    await ep.reRegister();
    // a trailing probe: once it is acked, every fuzz frame before it has been handled
    const probe = crypto.randomUUID();
    await ep.sendResult(probe, { result: serializeData(0) });
    await ep.waitFor(() => ep.acks().includes(probe), 20_000, "probe ack");

    const after = await fx.getBatchResult([done, queued]);
    assertEquals(after.get(done)?.value, "kept");
    assertEquals(after.get(queued)?.pending, true, "queued task still pending");
    // still fully working
    await ep.sendResult(queued, { result: serializeData("late") });
    const r2 = await fx.waitForResults([queued], { timeoutMs: 10_000 });
    assertEquals(r2.get(queued)?.value, "late");
    assert(!t.log().includes(" ERROR "), "no internal errors logged");
    await ep.close();
  });
});
