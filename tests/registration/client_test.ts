import { assert, assertEquals, assertMatch, assertRejects } from "../auth/_assert.ts";
import {
  RegistrationError,
  ServiceUnavailableError,
  WebServiceClient,
} from "../../src/registration/client.ts";

const PUB = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const REPLY = {
  response: true,
  endpoint_id: "4b116d3c-1703-4f8f-9f6f-39921e5864df",
  forwarder_pubkey: `curve\n    public-key = "${PUB}"\n`,
  public_ip: "127.0.0.1",
  tasks_port: 55001,
  results_port: 55002,
  commands_port: "55003",
  endpoint_secret: "fxs_secret",
};

type Handler = (req: Request, body: unknown) => Response;

function serve(handlers: Handler[]) {
  const seen: { path: string; auth: string | null; body: unknown }[] = [];
  let i = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = req.method === "POST" ? await req.json() : undefined;
    seen.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization"), body });
    const h = handlers[Math.min(i++, handlers.length - 1)];
    return h(req, body);
  });
  return { url: `http://127.0.0.1:${server.addr.port}/v2`, seen, close: () => server.shutdown() };
}

const error = (status: number, code: number, reason: string) => () =>
  Response.json({ status: "Failed", code, reason, http_status_code: status }, { status });
const ok = (v: unknown) => () => Response.json(v);
const REQ = {
  endpoint_name: "ep",
  endpoint_uuid: REPLY.endpoint_id,
  version: "0.3.4",
  endpoint_pubkey: PUB,
};

Deno.test("register: 5xx retried with doubling capped backoff, then the validated reply", async () => {
  const s = serve([
    error(502, 12, "forwarder down"),
    error(503, 0, "busy"),
    error(500, 18, "oops"),
    ok(REPLY),
  ]);
  try {
    const delays: number[] = [];
    const ws = new WebServiceClient(s.url, () => Promise.resolve("tok"), {
      initialDelayMs: 10,
      maxDelayMs: 25,
    });
    const r = await ws.registerEndpoint(REQ, { onRetry: (x) => delays.push(x.delayMs) });
    assertEquals(delays, [10, 20, 25]);
    assertEquals(r.endpoint_id, REPLY.endpoint_id);
    assertEquals(r.commands_port, 55003);
    assertEquals(s.seen.length, 4);
    assertEquals(s.seen[3].auth, "Bearer tok");
    assertEquals(s.seen[3].body, REQ);
  } finally {
    await s.close();
  }
});

Deno.test("register: 4xx is a RegistrationError with the service's reason, not retried", async () => {
  const s = serve([error(400, 11, "Endpoint 4b11 was already registered by a different user")]);
  try {
    const ws = new WebServiceClient(s.url, () => Promise.resolve("tok"), { initialDelayMs: 1 });
    const e = await assertRejects(() => ws.registerEndpoint(REQ), RegistrationError);
    assertEquals(e.status, 400);
    assertEquals(e.code, 11);
    assertMatch(e.message, /POST \/endpoints: HTTP 400: Endpoint 4b11 was already registered/);
    assertEquals(s.seen.length, 1);
  } finally {
    await s.close();
  }
});

Deno.test("register: a 401 gets one retry with a refreshed token", async () => {
  const s = serve([error(401, 1, "Invalid or revoked token"), ok(REPLY)]);
  try {
    const forced: boolean[] = [];
    const ws = new WebServiceClient(s.url, (force = false) => {
      forced.push(force);
      return Promise.resolve(force ? "new" : "old");
    });
    await ws.registerEndpoint(REQ);
    assertEquals(forced, [false, true]);
    assertEquals(s.seen.map((x) => x.auth), ["Bearer old", "Bearer new"]);
  } finally {
    await s.close();
  }
});

Deno.test("register: an unusable reply is refused naming the field", async () => {
  const s = serve([ok({ ...REPLY, tasks_port: 0 })]);
  try {
    const ws = new WebServiceClient(s.url, () => Promise.resolve("tok"));
    await assertRejects(() => ws.registerEndpoint(REQ), RegistrationError, "tasks_port");
  } finally {
    await s.close();
  }
});

Deno.test("connection refused: retried, then ServiceUnavailableError; abort stops retrying", async () => {
  const s = serve([ok(REPLY)]);
  const url = s.url;
  await s.close();
  const ws = new WebServiceClient(url, () => Promise.resolve("tok"), { initialDelayMs: 5 });
  const e = await assertRejects(
    () => ws.registerEndpoint(REQ, { maxAttempts: 3 }),
    ServiceUnavailableError,
  );
  assertEquals(e.attempts, 3);
  assertMatch(e.message, /cannot reach/);
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("stopping")), 50);
  const t0 = Date.now();
  await assertRejects(() => ws.registerEndpoint(REQ, { signal: ac.signal }), Error, "stopping");
  assert(Date.now() - t0 < 5000);
});

Deno.test("version check: too old an endpoint is refused with what to do", async () => {
  const s = serve([
    ok({ api: "1", forwarder: "1", min_sdk_version: "0", min_ep_version: "0.10.0" }),
    ok({ api: "1", forwarder: "1", min_sdk_version: "0", min_ep_version: "0.2.1" }),
  ]);
  try {
    const ws = new WebServiceClient(s.url, () => Promise.resolve("tok"));
    await assertRejects(() => ws.checkVersion("0.3.4"), RegistrationError, "upgrade");
    assertEquals((await ws.checkVersion("0.3.4")).min_ep_version, "0.2.1");
    assertEquals(s.seen[0].auth, null);
  } finally {
    await s.close();
  }
});
