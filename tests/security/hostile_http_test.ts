/**
 * The service under hostile HTTP traffic, in process over real HTTP: security headers on
 * pages, CSRF refusal of the login form, password guessing locked with an expiring wait
 * (visible in locks.json / `service status`), 429 at once when the hashing queue is full,
 * client-secret guessing, and the audit entries of all of it.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { FUNCX_SCOPE, NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import { createLogger } from "../../src/daemon/log.ts";
import { readAudit } from "../../src/service/audit.ts";
import { pkceChallenge } from "../../src/service/secrets.ts";
import { LocalService, type ServiceOptions } from "../../src/service/service.ts";
import { readLocks } from "../../src/service/shield.ts";
import { addClient, addUser, loginFormCsrf, loginViaForm } from "../helpers/service.ts";
import { runCli } from "../helpers/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function withSvc(
  shield: ServiceOptions["shield"],
  fn: (base: string, home: string, svc: LocalService) => Promise<void>,
) {
  const home = await Deno.makeTempDir({ prefix: "fx-hostile-" });
  const log = createLogger({ file: join(home, "test.log"), level: "debug" });
  const svc = await LocalService.start({ home, port: 0, log, shield });
  try {
    await addUser(home, "alice", "alice-pw");
    await fn(`http://127.0.0.1:${svc.info.port}`, home, svc);
  } finally {
    await svc.stop();
    log.close();
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

const params = {
  client_id: NATIVE_CLIENT_ID,
  redirect_uri: "http://127.0.0.1/cb",
  scope: FUNCX_SCOPE,
  response_type: "code",
  code_challenge: pkceChallenge("v".repeat(43)),
  code_challenge_method: "S256",
};

async function postLogin(
  base: string,
  password: string,
  extra: { cookie?: string; csrf_token?: string; headers?: Record<string, string> } = {},
) {
  const res = await fetch(`${base}/auth/v2/oauth2/authorize`, {
    method: "POST",
    headers: { ...(extra.cookie ? { cookie: extra.cookie } : {}), ...extra.headers },
    body: new URLSearchParams({
      ...params,
      username: "alice",
      password,
      ...(extra.csrf_token ? { csrf_token: extra.csrf_token } : {}),
    }),
    redirect: "manual",
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

Deno.test("pages carry CSP, frame-ancestors, no-referrer and nosniff", opts, async () => {
  await withSvc(undefined, async (base) => {
    for (
      const url of [`${base}/auth/v2/oauth2/authorize?${new URLSearchParams(params)}`, `${base}/`]
    ) {
      const res = await fetch(url);
      await res.body?.cancel();
      const csp = res.headers.get("content-security-policy") ?? "";
      match(csp, /default-src 'none'/, url);
      match(csp, /frame-ancestors 'none'/, url);
      match(csp, /form-action 'self'/, url);
      assertEquals(res.headers.get("x-frame-options"), "DENY");
      assertEquals(res.headers.get("referrer-policy"), "no-referrer");
      assertEquals(res.headers.get("x-content-type-options"), "nosniff");
    }
  });
});

Deno.test(
  "login form: CSRF refused without the cookie, with a wrong token, cross-site",
  opts,
  async () => {
    await withSvc(undefined, async (base) => {
      const { cookie, csrf_token } = await loginFormCsrf(`${base}/auth`, params);
      match(cookie, /^funcx_csrf=/);
      const noCookie = await postLogin(base, "alice-pw", { csrf_token });
      assertEquals(noCookie.status, 403);
      match(noCookie.text, /cookie is missing/);
      const noToken = await postLogin(base, "alice-pw", { cookie });
      assertEquals(noToken.status, 403);
      const wrong = await postLogin(base, "alice-pw", { cookie, csrf_token: csrf_token + "x" });
      assertEquals(wrong.status, 403);
      const otherCookie = await loginFormCsrf(`${base}/auth`, params);
      const mixed = await postLogin(base, "alice-pw", { cookie: otherCookie.cookie, csrf_token });
      assertEquals(mixed.status, 403);
      const crossSite = await postLogin(base, "alice-pw", {
        cookie,
        csrf_token,
        headers: { origin: "https://evil.example" },
      });
      assertEquals(crossSite.status, 403);
      match(crossSite.text, /Origin mismatch/);
      const fetchSite = await postLogin(base, "alice-pw", {
        cookie,
        csrf_token,
        headers: { "sec-fetch-site": "cross-site" },
      });
      assertEquals(fetchSite.status, 403);
      const opaque = await postLogin(base, "alice-pw", {
        cookie,
        csrf_token,
        headers: { origin: "null" },
      });
      assertEquals(opaque.status, 403);
      match(opaque.text, /opaque Origin/);
      // what Chromium sends for the page's own form under Referrer-Policy: no-referrer
      const noReferrer = await postLogin(base, "alice-pw", {
        cookie,
        csrf_token,
        headers: { origin: "null", "sec-fetch-site": "same-origin" },
      });
      assertEquals(noReferrer.status, 303);
      // the genuine form goes through
      const ok = await postLogin(base, "alice-pw", {
        cookie,
        csrf_token,
        headers: { origin: base, "sec-fetch-site": "same-origin" },
      });
      assertEquals(ok.status, 303);
    });
  },
);

Deno.test(
  "password guessing: locked after the free failures, 429 + Retry-After, visible, expires",
  opts,
  async () => {
    await withSvc({ guard: { pairFree: 3, baseDelayMs: 1500 } }, async (base, home) => {
      const f = await loginFormCsrf(`${base}/auth`, params);
      for (let i = 0; i < 3; i++) assertEquals((await postLogin(base, "wrong", f)).status, 401);
      const locked = await postLogin(base, "alice-pw", f); // even the right password waits
      assertEquals(locked.status, 429);
      assert(Number(locked.headers.get("retry-after")) >= 1);
      match(locked.text, /Too many failed sign-ins; try again in \d+ s/);
      // the admin sees the wait (locks.json is what `service status` prints)
      const deadline = performance.now() + 5000;
      let locks = readLocks(join(home, "service"));
      while (!locks?.users.length && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        locks = readLocks(join(home, "service"));
      }
      assertEquals(locks?.users.map((l) => l.key), ["pair:alice@127.0.0.1"]);
      // it expires by itself
      const until = Date.parse(locks!.users[0].until);
      while (Date.now() < until + 50) {
        await new Promise((r) => setTimeout(r, until + 60 - Date.now()));
      }
      assertEquals((await postLogin(base, "alice-pw", f)).status, 303);
      const events = readAudit(join(home, "service")).map((e) => e.event);
      assertEquals(events.filter((e) => e === "signin.failure").length, 3);
      assert(events.includes("signin.locked"));
      assert(events.includes("signin.success"));
    });
  },
);

Deno.test("login flood: a full hashing queue answers 429 at once", opts, async () => {
  await withSvc({
    hasher: { concurrency: 1, queue: 1 },
    guard: { pairFree: 1000, addrFree: 1000, accountFree: 1000 },
    signinRate: { perSecond: 1000, burst: 1000 },
  }, async (base) => {
    const f = await loginFormCsrf(`${base}/auth`, params);
    const results = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const t0 = performance.now();
        const r = await postLogin(base, "wrong", f);
        return { status: r.status, ms: performance.now() - t0 };
      }),
    );
    const refused = results.filter((r) => r.status === 429);
    const checked = results.filter((r) => r.status === 401);
    assert(refused.length >= 1, JSON.stringify(results));
    assert(checked.length >= 2, JSON.stringify(results));
    assertEquals(refused.length + checked.length, 8);
  });
});

Deno.test("unauthenticated routes are rate limited per address (429, held)", opts, async () => {
  await withSvc({ publicRate: { perSecond: 1, burst: 5 }, tarpitMs: 100 }, async (base) => {
    const statuses: number[] = [];
    const heldMs: number[] = [];
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      const r = await fetch(`${base}/auth/v2/web/auth-code?code=x`);
      await r.body?.cancel();
      statuses.push(r.status);
      if (r.status === 429) {
        heldMs.push(performance.now() - t0);
        assert(Number(r.headers.get("retry-after")) >= 1);
      }
    }
    assertEquals(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    assert(statuses.slice(5).every((s) => s === 429), String(statuses));
    // a refused flooder waits for its answer (fewer requests per connection)
    assert(heldMs.every((ms) => ms >= 90), String(heldMs));
    // the API is not affected
    const v = await fetch(`${base}/v2/version`);
    await v.body?.cancel();
    assertEquals(v.status, 200);
  });
});

Deno.test(
  "client-secret guessing is locked too; tokens issued/revoked and sign-ins are audited",
  opts,
  async () => {
    await withSvc({ guard: { pairFree: 2, baseDelayMs: 60_000 } }, async (base, home) => {
      const c = await addClient(home, "robot");
      const tok = (secret: string) =>
        fetch(`${base}/auth/v2/oauth2/token`, {
          method: "POST",
          headers: { authorization: `Basic ${btoa(`${c.clientId}:${secret}`)}` },
          body: new URLSearchParams({ grant_type: "client_credentials" }),
        }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const good = await tok(c.clientSecret);
      assertEquals(good.status, 200);
      assertEquals((await tok("fxs_wrong")).status, 401);
      assertEquals((await tok("fxs_wrong")).status, 401);
      const locked = await tok(c.clientSecret);
      assertEquals(locked.status, 429);
      match(locked.body.error_description, /retry in \d+ s/);
      // a user login and a revocation
      const t = await loginViaForm(`${base}/auth`, "alice", "alice-pw");
      const rv = await fetch(`${base}/auth/v2/oauth2/token/revoke`, {
        method: "POST",
        body: new URLSearchParams({ token: t.access_token, client_id: NATIVE_CLIENT_ID }),
      });
      await rv.body?.cancel();
      assertEquals(rv.status, 200);
      const audit = readAudit(join(home, "service"));
      const text = JSON.stringify(audit);
      for (const secret of [c.clientSecret, t.access_token, t.refresh_token!, "alice-pw"]) {
        assert(!text.includes(secret), "no secret in the audit log");
      }
      const ev = (name: string) => audit.filter((e) => e.event === name);
      assertEquals(ev("client.auth.failure").length, 2);
      assertEquals(ev("client.auth.locked").length, 1);
      assertEquals(ev("token.issued").map((e) => e.grant), [
        "client_credentials",
        "authorization_code",
      ]);
      assertEquals(ev("signin.success")[0].addr, "127.0.0.1");
      assertEquals(ev("token.revoked")[0].user, "alice");
      // `service audit --since` prints them
      const out = await runCli(home, ["service", "audit", "--since", "1h"]);
      assertEquals(out.code, 0, out.stderr);
      match(out.stdout, /signin\.success user=alice addr=127\.0\.0\.1/);
      match(out.stdout, /token\.revoked/);
      const bad = await runCli(home, ["service", "audit", "--since", "soon"]);
      assertEquals(bad.code, 1);
      match(bad.stderr, /--since: expected/);
    });
  },
);
