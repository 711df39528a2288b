/**
 * The dashboard without a browser: the chart series and percentiles, cookies and the CSRF
 * check, sessions, the access rules (own, shared through a group, public; tasks only the
 * submitter's) on a real store, and, on a real in-process service, the sign-in redirects
 * (state, PKCE), the security headers, sign-out refused without the CSRF token or from
 * another origin, and the session gone (token revoked) after sign-out.
 * The browser run is tests/e2e/dashboard_browser_test.ts.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { endpointSeries, percentile } from "../../src/service/dashboard/metrics.ts";
import {
  cookieHeader,
  cookieName,
  csrfProblem,
  readCookie,
} from "../../src/service/dashboard/security.ts";
import { SessionStore } from "../../src/service/dashboard/session.ts";
import { type Liveness, visibleEndpoints, visibleTask } from "../../src/service/dashboard/data.ts";
import { taskPage, tasksPage } from "../../src/service/dashboard/pages.ts";
import { ServiceStore } from "../../src/service/store.ts";
import { remoteException, serializeData } from "../../src/protocol/serialize.ts";
import { withService } from "./_util.ts";
import { join } from "node:path";
import { createLogger } from "../../src/daemon/log.ts";
import { LocalService } from "../../src/service/service.ts";
import { addUser } from "../helpers/service.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("dashboard metrics: percentiles and per-bucket series", () => {
  assertEquals(percentile([], 0.5), null);
  assertEquals(percentile([1, 2, 3, 4], 0.5), 2);
  assertEquals(percentile([1, 2, 3, 4], 0.99), 4);
  const s = endpointSeries({
    now: 600,
    window: 600,
    step: 60,
    finished: [
      { created_at: 530, finished_at: 550, status: "success" },
      { created_at: 545, finished_at: 550, status: "failed" },
      { created_at: 10, finished_at: 30, status: "success" },
      { created_at: 0, finished_at: -5, status: "success" }, // outside the window
    ],
    reports: [
      { ts: 100, info: { total_workers: 4, idle_workers: 1 } },
      { ts: 500, info: { total_workers: 4 } },
      { ts: -1, info: { total_workers: 9, idle_workers: 0 } },
    ],
  });
  assertEquals(s.tasksPerSecond.length, 10);
  assertEquals(s.tasksPerSecond[9], 2 / 60);
  assertEquals(s.tasksPerSecond[0], 1 / 60);
  assertEquals(s.failed[9], 1);
  assertEquals(s.latency.p50[9], 5);
  assertEquals(s.latency.p99[9], 20);
  assertEquals(s.latency.p50[5], null);
  assertEquals(s.workers, [{ t: 100, total: 4, busy: 3 }, { t: 500, total: 4, busy: 4 }]);
});

Deno.test("dashboard security: cookies and the CSRF check", () => {
  assertEquals(cookieName("s", true), "__Host-s");
  assertEquals(cookieName("s", false), "s");
  assertEquals(
    cookieHeader("__Host-s", "v", { secure: true, maxAge: 60 }),
    "__Host-s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure",
  );
  const req = (h: Record<string, string>) =>
    new Request("http://127.0.0.1:1/dashboard/logout", { method: "POST", headers: h });
  assertEquals(readCookie(req({ cookie: "a=1; s=xyz" }), "s"), "xyz");
  assertEquals(readCookie(req({}), "s"), undefined);
  assertEquals(csrfProblem(req({ origin: "http://127.0.0.1:1" }), "tok", "tok"), null);
  assertEquals(csrfProblem(req({}), "tok", "tok"), null);
  match(csrfProblem(req({}), "tok", "nope")!, /CSRF token/);
  match(csrfProblem(req({}), "tok", null)!, /CSRF token/);
  match(csrfProblem(req({ origin: "http://evil.example" }), "tok", "tok")!, /cross-origin/);
  match(csrfProblem(req({ "sec-fetch-site": "cross-site" }), "tok", "tok")!, /cross-site/);
  // Chromium's own form under no-referrer: Origin null, same-origin fetch site
  assertEquals(
    csrfProblem(req({ origin: "null", "sec-fetch-site": "same-origin" }), "tok", "tok"),
    null,
  );
  match(
    csrfProblem(req({ origin: "null", "sec-fetch-site": "same-site" }), "tok", "tok")!,
    /cross-site/,
  );
});

Deno.test("dashboard sessions: expiry, single-use sign-ins", () => {
  let now = 1000;
  const s = new SessionStore({ now: () => now });
  const p = s.beginLogin();
  assertEquals(p.challenge.length, 43);
  assertEquals(s.takeLogin(p.id)?.state, p.state);
  assertEquals(s.takeLogin(p.id), undefined); // single use
  const late = s.beginLogin();
  now += 601;
  assertEquals(s.takeLogin(late.id), undefined); // expired
  const sess = s.create({
    userId: 1,
    username: "alice",
    accessToken: "a",
    refreshToken: null,
    expiresAt: now + 100,
  });
  assertEquals(s.get(sess.id)?.username, "alice");
  assert(sess.csrf.length >= 43 && sess.csrf !== sess.id);
  now += 101;
  assertEquals(s.get(sess.id), undefined); // the token's lifetime bounds the session
  assertEquals(s.get(undefined), undefined);
});

Deno.test("dashboard access: own, group-shared and public endpoints; tasks only the submitter's", () => {
  const store = ServiceStore.open(":memory:");
  try {
    const alice = store.addUser("alice", "pw-alice-1");
    const bob = store.addUser("bob", "pw-bob-123");
    const carol = store.addUser("carol", "pw-carol-1");
    const ep = (uuid: string, user: number, name: string) =>
      store.upsertEndpoint({
        uuid,
        user_id: user,
        name,
        version: "0.3.4",
        pubkey: "k",
        secret_hash: "h",
        ip: "",
      });
    const A = "00000000-0000-4000-8000-00000000000a";
    const B = "00000000-0000-4000-8000-00000000000b";
    const P = "00000000-0000-4000-8000-00000000000c";
    ep(A, alice.id, "alice-lab");
    ep(B, bob.id, "bob-own");
    ep(P, carol.id, "carol-public");
    const lab = store.sharing.addGroup("lab", alice.id);
    store.sharing.setMember(lab.id, bob.id, "member");
    store.sharing.setEndpointSharing(A, { public: false, groups: [lab.id] });
    store.sharing.setEndpointSharing(P, { public: true, groups: [] });
    const live: Liveness = {
      isOnline: (u) => u === A,
      lastSeen: () => undefined,
      platform: (u) => u === A ? { hname: "node1", os: "linux" } : undefined,
    };
    const names = (uid: number) =>
      visibleEndpoints(store, live as never, uid, 0).map((e) => e.name).sort();
    assertEquals(names(alice.id), ["alice-lab", "carol-public"]);
    assertEquals(names(bob.id), ["alice-lab", "bob-own", "carol-public"]);
    assertEquals(names(carol.id), ["carol-public"]);
    const a = visibleEndpoints(store, live as never, bob.id, 0).find((e) => e.uuid === A)!;
    assertEquals(a.own, false);
    assertEquals(a.host, "node1");
    assertEquals(a.sharedWith, "alice and members of lab");

    // alice's tasks on her endpoint: bob may use the endpoint, but the tasks stay hers
    const F = "00000000-0000-4000-8000-0000000000f1";
    store.createFunction({
      uuid: F,
      user_id: alice.id,
      name: "sq",
      code: "c",
      source: "def sq(x):\n    return x * x\n",
      container: null,
      entry_point: "sq",
      description: "",
      public: 0,
    });
    const T1 = "00000000-0000-4000-8000-0000000000e1";
    const T2 = "00000000-0000-4000-8000-0000000000e2";
    store.insertTasks(
      [T1, T2].map((uuid) => ({
        uuid,
        userId: alice.id,
        functionUuid: F,
        endpointUuid: A,
        taskGroupId: "g",
        container: "RAW",
        payload: "p",
      })),
      new Set([A]),
    );
    store.updateStatuses(new Map([[T1, "running"]]));
    const workerStart = Date.now() / 1000;
    store.storeResults([
      {
        taskId: T1,
        endpointUuid: A,
        result: serializeData([1, "two"]),
        times: { start: 5, end: 6 },
      },
      {
        taskId: T2,
        endpointUuid: A,
        exception: remoteException(
          "ZeroDivisionError",
          "division by zero",
          'Traceback (most recent call last):\n  File "f", line 1\nZeroDivisionError: division by zero\n',
        ),
        times: { start: workerStart, end: workerStart },
      },
    ]);
    store.deleteTasks([T1, T2]); // as when the SDK fetched the results
    const t1 = visibleTask(store, alice.id, T1)!;
    assertEquals(JSON.parse(t1.result!), [1, "two"]);
    assertEquals(t1.source, "def sq(x):\n    return x * x\n");
    assert(t1.row.dispatched_at !== null && t1.row.started_at !== null);
    assertEquals([t1.row.exec_start, t1.row.exec_end], [5, 6]);
    // a worker start before the task was received (clock skew) is not taken as the start
    assert(t1.row.started_at! >= t1.row.created_at, "started before received");
    const t2 = visibleTask(store, alice.id, T2.toUpperCase())!;
    assertEquals(t2.exception?.type, "ZeroDivisionError");
    assertEquals(t2.row.started_at, workerStart); // the worker's start, consistent with ours
    match(t2.exception!.traceback, /Traceback/);
    assertEquals(visibleTask(store, bob.id, T1), undefined);
    assertEquals(visibleTask(store, carol.id, T2), undefined);
    assertEquals(store.taskLog.query({ userId: bob.id }, 0, 50).total, 0);
    assertEquals(store.taskLog.query({ userId: alice.id, status: "failed" }, 0, 50).total, 1);
    // paging: 120 more tasks, 50 a page, newest first, links to the neighbours only
    store.insertTasks(
      Array.from({ length: 120 }, (_, i) => ({
        uuid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
        userId: alice.id,
        functionUuid: F,
        endpointUuid: A,
        taskGroupId: "g2",
        container: "RAW",
        payload: "p",
      })),
    );
    const p3 = store.taskLog.query({ userId: alice.id, status: "waiting-for-ep" }, 100, 50);
    assertEquals([p3.total, p3.rows.length], [120, 20]);
    const eps = visibleEndpoints(store, live as never, alice.id, 0);
    const q = { endpoint: A, function: "", status: "waiting-for-ep", since: "", page: 3 };
    const listHtml = tasksPage({ username: "alice", csrf: "c" }, q, eps, p3, 50);
    match(listHtml, /120 task\(s\), 101–120 shown/);
    match(listHtml, /id="prev"[^>]*>/);
    assert(!listHtml.includes('id="next"'), "a next link on the last page");
    match(listHtml, /page=2/);
    assertEquals(store.taskLog.query({ userId: alice.id, endpoint: B }, 0, 50).total, 0);
    assertEquals(store.taskLog.query({ userId: alice.id, since: 1e12 }, 0, 50).total, 0);
    // rendering escapes what the task carries
    const html = taskPage({ username: "<alice>", csrf: "c" }, t2);
    assert(html.includes("&lt;alice&gt;") && !html.includes("<alice>"));
  } finally {
    store.close();
  }
});

/** A tiny cookie jar over fetch with manual redirects. */
class Browserish {
  cookies = new Map<string, string>();
  /** Every Set-Cookie header seen. */
  setCookies: string[] = [];
  constructor(private client?: Deno.HttpClient) {}
  async go(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const res = await fetch(url, {
      ...init,
      headers,
      redirect: "manual",
      ...(this.client ? { client: this.client } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      this.setCookies.push(c);
      const [pair, ...attrs] = c.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      if (attrs.some((a) => /max-age=0/i.test(a.trim()))) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(i + 1).trim());
    }
    return res;
  }
}

async function signIn(base: string, user: string, pw: string, jar = new Browserish()) {
  const start = await jar.go(`${base}/dashboard/login`);
  assertEquals(start.status, 303);
  const authorize = new URL(start.headers.get("location")!);
  assertEquals(authorize.searchParams.get("code_challenge_method"), "S256");
  // the login form (its CSRF cookie goes to the jar, its token into the form)
  const formPage = await jar.go(authorize.toString());
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(await formPage.text())?.[1];
  assert(csrf, "the login form has no CSRF token");
  const form = new URLSearchParams(authorize.searchParams);
  form.set("csrf_token", csrf);
  form.set("username", user);
  form.set("password", pw);
  const posted = await jar.go(`${base}/auth/v2/oauth2/authorize`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  assertEquals(posted.status, 303);
  const callback = posted.headers.get("location")!;
  match(callback, /\/dashboard\/callback\?code=fxc_/);
  const done = await jar.go(callback);
  assertEquals(done.status, 303, await done.text());
  assertEquals(done.headers.get("location"), "/dashboard/");
  return { jar, callback, authorize };
}

Deno.test(
  "dashboard HTTP: sign-in, headers, CSRF on sign-out, session gone after",
  opts,
  async () => {
    await withService(async (t) => {
      const base = t.url.replace(/\/v2$/, "");
      // anonymous
      const anon = await fetch(`${base}/dashboard/`);
      const anonHtml = await anon.text();
      assertEquals(anon.status, 200);
      assert(anonHtml.includes('id="count-queued"'));
      match(
        anon.headers.get("content-security-policy")!,
        /script-src 'self'.*frame-ancestors 'none'/,
      );
      assertEquals(anon.headers.get("referrer-policy"), "no-referrer");
      assertEquals(anon.headers.get("x-content-type-options"), "nosniff");
      const gated = await fetch(`${base}/dashboard/tasks`, { redirect: "manual" });
      assertEquals(gated.status, 303);
      await gated.body?.cancel();
      const api = await fetch(`${base}/dashboard/api/metrics`);
      assertEquals(api.status, 401);
      await api.body?.cancel();

      const { jar, callback } = await signIn(base, "alice", "alice-pw");
      assert(jar.cookies.has("funcx_session"));
      assert(!jar.cookies.has("funcx_login"), "the sign-in cookie is cleared");
      // a replayed callback (code used, sign-in consumed) is refused
      const replay = await new Browserish().go(callback);
      assertEquals(replay.status, 400);
      await replay.body?.cancel();
      // wrong state with a fresh pending sign-in
      const other = new Browserish();
      await (await other.go(`${base}/dashboard/login`)).body?.cancel();
      const bad = await other.go(`${base}/dashboard/callback?code=fxc_x&state=wrong`);
      assertEquals(bad.status, 400);
      match(await bad.text(), /state does not match/);

      const page = await jar.go(`${base}/dashboard/`);
      const html = await page.text();
      match(html, /Signed in as <strong id="username">alice<\/strong>/);
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1];
      assert(!/fx[ar]_/.test(html), "a token in the page");

      const post = (body: string, headers: Record<string, string> = {}) =>
        jar.go(`${base}/dashboard/logout`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
          body,
        });
      let r = await post("csrf=wrong");
      assertEquals(r.status, 403);
      await r.body?.cancel();
      r = await post(`csrf=${encodeURIComponent(csrf)}`, { origin: "http://evil.example" });
      assertEquals(r.status, 403);
      await r.body?.cancel();
      r = await jar.go(`${base}/dashboard/tasks`);
      assertEquals(r.status, 200, "still signed in after refused sign-outs");
      await r.body?.cancel();
      r = await post(`csrf=${encodeURIComponent(csrf)}`, { origin: base });
      assertEquals(r.status, 303);
      await r.body?.cancel();
      assert(!jar.cookies.has("funcx_session"));
      // the old cookie no longer works: the session and its token are gone
      const old = new Browserish();
      old.cookies.set("funcx_session", "anything");
      r = await old.go(`${base}/dashboard/tasks`);
      assertEquals(r.status, 303);
      await r.body?.cancel();
      match(t.log(), /user alice signed in/);
      match(t.log(), /user alice signed out/);
      assert(!/fx[ar]_[A-Za-z0-9_-]{20}/.test(t.log()), "a token in the log");
    });
  },
);

Deno.test(
  "dashboard over HTTPS (behind the connection gate): __Host- Secure cookies, HSTS",
  opts,
  async () => {
    const home = await Deno.makeTempDir({ prefix: "fx-dash-tls-" });
    const log = createLogger({ file: join(home, "svc.log"), level: "debug" });
    let svc: LocalService | undefined;
    let client: Deno.HttpClient | undefined;
    try {
      // a CA and a server certificate for 127.0.0.1 signed by it
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
      Deno.writeTextFileSync(
        join(home, "srv.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
      );
      for (
        const args of [
          [
            "req",
            "-x509",
            ...ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=CA",
          ],
          ["req", ...ec, "-keyout", "key.pem", "-out", "srv.csr", "-subj", "/CN=funcx"],
          ["x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
            .concat(["-out", "cert.pem", "-days", "1", "-extfile", "srv.ext"]),
        ]
      ) {
        const out = await new Deno.Command("openssl", {
          args,
          cwd: home,
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(out.success, new TextDecoder().decode(out.stderr));
      }
      svc = await LocalService.start({
        home,
        port: 0,
        log,
        tls: { certFile: join(home, "cert.pem"), keyFile: join(home, "key.pem") },
        connectionLimits: {},
      });
      await addUser(home, "alice", "alice-pw");
      client = Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(join(home, "ca.pem"))] });
      const base = `https://127.0.0.1:${svc.info.port}`;
      const { jar } = await signIn(base, "alice", "alice-pw", new Browserish(client));
      assert(jar.cookies.has("__Host-funcx_session"), [...jar.cookies.keys()].join(","));
      const session = jar.setCookies.find((c) => c.startsWith("__Host-funcx_session="))!;
      match(session, /; HttpOnly; SameSite=Strict; Secure$/);
      match(session, /Path=\//);
      const page = await jar.go(`${base}/dashboard/`);
      match(await page.text(), /Signed in as <strong id="username">alice/);
      match(page.headers.get("strict-transport-security") ?? "", /max-age=/);
    } finally {
      client?.close();
      await svc?.stop();
      log.close();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
);
