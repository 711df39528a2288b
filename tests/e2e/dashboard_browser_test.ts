/**
 * The web dashboard driven by the real Debian Chromium (playwright-core, no browser
 * download) against the real service (child process), the real endpoint CLI and real python3
 * workers: sign-in through the service's OAuth2 form (PKCE), the endpoint list and page, a
 * task page with a result and one with the remote traceback, the filtered task list, charts
 * with data, live updates without a reload, sign-out, and a second user (with JavaScript off)
 * who sees none of the first user's endpoints or tasks. No token in any page, URL or log.
 * Skipped with a reason when /usr/bin/chromium is absent (`.ci/run` installs it).
 */
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { join } from "node:path";
import { servicePaths } from "../../src/config/paths.ts";
import { NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import { AUDIT_FILE } from "../../src/service/audit.ts";
import { haveChromium, openBrowser } from "../helpers/browser.ts";
import { addUser, loginViaForm } from "../helpers/service.ts";
import { registerEndpoint } from "../service/_endpoint.ts";
import { createWorld, PY } from "./_world.ts";
import type { Page } from "playwright-core";

if (!haveChromium()) {
  console.warn(
    "dashboard browser test skipped: /usr/bin/chromium not installed (.ci/run installs it)",
  );
}

const TOKEN_RE = /fx[ar]_[A-Za-z0-9_-]{20,}/;

async function signIn(page: Page, base: string, user: string, password: string) {
  await page.goto(`${base}/dashboard/`);
  await page.click("#sign-in");
  await page.waitForURL(/\/auth\/v2\/oauth2\/authorize\?/);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/dashboard/`), page.click("#login")]);
  assertEquals(await page.textContent("#username"), user);
}

Deno.test({
  name: "dashboard: Chromium signs in, sees endpoints, tasks, tracebacks, charts; bob sees none",
  ignore: !haveChromium(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const w = await createWorld();
    const browser = await openBrowser();
    const seen: string[] = []; // every page body and URL the browsers got
    try {
      w.configure("main");
      const ep = await w.startEndpoint("main");
      const eid = ep.endpointId;
      const base = w.svc.url.replace(/\/v2$/, "");
      const c = w.client;
      const square = await c.registerFunction(PY.square, "square");
      const fail = await c.registerFunction(PY.fail, "fail");
      const ids = await c.submit([
        { functionId: square, endpointId: eid, args: [7] },
        { functionId: fail, endpointId: eid, args: ["x42"] },
        ...[1, 2, 3, 4, 5, 6].map((x) => ({ functionId: square, endpointId: eid, args: [x] })),
      ]);
      // the SDK fetches (and so deletes) the results: the dashboard still shows them
      const results = await c.waitForResults(ids, { timeoutMs: 240_000 });
      assertEquals(results.get(ids[0])?.value, 49);
      const [okId, failId] = ids;

      await addUser(w.home, "bob", "bob-pw");
      const bobTokens = await loginViaForm(w.svc.authUrl, "bob", "bob-pw");
      const bobEp = (await registerEndpoint(w.svc.url, bobTokens.access_token, "bobs-ep")).reply
        .endpoint_id;

      const page = await browser.context.newPage();
      page.on("response", async (r) => {
        seen.push(r.url());
        if ((r.headers()["content-type"] ?? "").match(/html|json/)) {
          seen.push(await r.text().catch(() => ""));
        }
      });

      await t.step("anonymous: counts only", async () => {
        await page.goto(`${base}/dashboard/`);
        assert(await page.isVisible("#count-queued"));
        assert(await page.isVisible("#anonymous"));
        assertEquals(await page.locator("#endpoints").count(), 0);
      });

      await t.step("sign in through the OAuth2 form; session cookie is HttpOnly", async () => {
        await signIn(page, base, "alice", "alice-pw");
        const cookies = await browser.context.cookies();
        const session = cookies.find((x) => x.name === "funcx_session");
        assert(session, `no session cookie in ${JSON.stringify(cookies.map((x) => x.name))}`);
        assert(session.httpOnly);
        assertEquals(session.sameSite, "Strict");
        assert(!cookies.some((x) => TOKEN_RE.test(x.value)), "a token in a cookie");
      });

      await t.step("endpoint list and endpoint page", async () => {
        const row = page.locator(`tr.endpoint[data-endpoint-id="${eid}"]`);
        await row.waitFor();
        assertMatch(await row.innerText(), /main/);
        assertMatch(await row.locator(".state").innerText(), /online|degraded/);
        assertEquals(await page.locator(`tr[data-endpoint-id="${bobEp}"]`).count(), 0);
        await Promise.all([
          page.waitForURL(`**/dashboard/endpoints/${eid}`),
          row.locator("a").click(),
        ]);
        // the endpoint reports every second: 2 workers
        await page.waitForFunction(
          "/^2 \\(/.test(document.getElementById('ep-workers')?.textContent ?? '')",
          undefined,
          { timeout: 30_000 },
        );
        assertMatch(await page.innerText("main"), /Who may use it\s+alice only/);
      });

      await t.step("task page with a result, timings and the source", async () => {
        await page.goto(`${base}/dashboard/tasks/${okId}`);
        assertEquals(await page.textContent("#task-status"), "success");
        assertEquals((await page.textContent("#result"))?.trim(), "49");
        for (const id of ["#t-received", "#t-dispatched", "#t-started", "#t-finished"]) {
          assertMatch((await page.textContent(id)) ?? "", /^\d{4}-\d\d-\d\d .* UTC$/);
        }
        assertMatch((await page.textContent("#source")) ?? "", /def square\(x\):/);
        assertMatch((await page.textContent("#exec-time")) ?? "", /Ran for/);
      });

      await t.step("task page with the remote traceback", async () => {
        await page.goto(`${base}/dashboard/tasks/${failId}`);
        assertEquals(await page.textContent("#task-status"), "failed");
        assertMatch((await page.textContent("#exception")) ?? "", /ValueError: bad input: x42/);
        const tb = (await page.textContent("#traceback")) ?? "";
        assertMatch(tb, /Traceback \(most recent call last\)/);
        assertMatch(tb, /in fail/);
      });

      await t.step("filtered, paged task list", async () => {
        await page.goto(`${base}/dashboard/tasks`);
        assertMatch((await page.textContent("#task-count")) ?? "", /^8 task\(s\)/);
        await page.selectOption("select[name=status]", "failed");
        await Promise.all([page.waitForURL(/status=failed/), page.click("#filters button")]);
        assertMatch((await page.textContent("#task-count")) ?? "", /^1 task\(s\)/);
        assertEquals(await page.locator(`tr[data-task-id="${failId}"]`).count(), 1);
        assertMatch(await page.locator(`tr[data-task-id="${failId}"]`).innerText(), /\bfail\b/);
      });

      await t.step("charts drawn from the JSON endpoint, with data", async () => {
        await page.goto(`${base}/dashboard/endpoints/${eid}`);
        await page.waitForSelector("#charts[data-loaded='1']", { timeout: 30_000 });
        const points = async (kind: string) =>
          Number(
            await page.getAttribute(`.chart[data-kind=${kind}] svg`, "data-points") ?? "0",
          );
        assert(await points("throughput") > 0, "throughput chart without data");
        assert(await points("latency") > 0, "latency chart without data");
        assert(await points("workers") > 0, "workers chart without data");
        assert(await page.locator(".chart[data-kind=throughput] path.series").count() >= 1);
        const busiest = Number(
          await page.getAttribute(".chart[data-kind=throughput] svg", "data-max"),
        );
        assert(busiest >= 8 / 60 - 1e-9, `max tasks/s ${busiest}`);
      });

      await t.step("live update without a reload", async () => {
        await page.goto(`${base}/dashboard/`);
        await page.evaluate(() => ((globalThis as unknown as { __same: number }).__same = 1));
        const [late] = await c.submit([{ functionId: square, endpointId: eid, args: [9] }]);
        await page.waitForSelector(`tr[data-task-id="${late}"]`, { timeout: 60_000 });
        assertEquals(
          await page.evaluate(() => (globalThis as unknown as { __same?: number }).__same),
          1,
        );
      });

      await t.step("sign out revokes the session", async () => {
        await page.click("#sign-out");
        await page.waitForSelector("#anonymous");
        assertEquals(await page.locator("#username").count(), 0);
        await page.goto(`${base}/dashboard/tasks/${okId}`);
        assertMatch(page.url(), /\/auth\/v2\/oauth2\/authorize\?/);
      });

      await t.step("bob, with JavaScript off, sees only his own", async () => {
        const bob = await openBrowser({ javaScript: false });
        try {
          const p = await bob.context.newPage();
          p.on("response", async (r) => {
            seen.push(r.url());
            seen.push(await r.text().catch(() => ""));
          });
          await signIn(p, base, "bob", "bob-pw");
          assertEquals(await p.locator(`tr.endpoint[data-endpoint-id="${bobEp}"]`).count(), 1);
          assertEquals(await p.locator(`tr[data-endpoint-id="${eid}"]`).count(), 0);
          assertEquals(await p.locator("#tasks tr.task").count(), 0);
          const res = await p.goto(`${base}/dashboard/tasks/${okId}`);
          assertEquals(res?.status(), 404);
          assertEquals((await p.goto(`${base}/dashboard/endpoints/${eid}`))?.status(), 404);
          assertEquals(
            (await p.goto(`${base}/dashboard/api/metrics?endpoint=${eid}`))?.status(),
            404,
          );
          await p.goto(`${base}/dashboard/tasks`);
          assertMatch((await p.textContent("#task-count")) ?? "", /^0 task\(s\)/);
          assertEquals(await p.locator("#charts svg").count(), 0); // no script ran
        } finally {
          await bob.close();
        }
      });

      await t.step("no token in any page, URL or the service log", () => {
        for (const s of seen) assert(!TOKEN_RE.test(s), `token in ${s.slice(0, 200)}`);
        const log = Deno.readTextFileSync(servicePaths(w.home).log) + w.svc.stderr();
        assert(!TOKEN_RE.test(log), "a token in the service log");
        assertMatch(log, /user alice signed in/);
        // sign-out went through the auth server's revocation (audited, by token hash only)
        const audit = Deno.readTextFileSync(join(servicePaths(w.home).dir, AUDIT_FILE));
        assert(!TOKEN_RE.test(audit), "a token in the audit log");
        assert(
          audit.split("\n").filter(Boolean).map((l) => JSON.parse(l)).some((e) =>
            e.event === "token.revoked" && e.user === "alice" && e.client === NATIVE_CLIENT_ID
          ),
          "no token.revoked for alice in the audit log",
        );
      });
    } finally {
      await browser.close();
      await w.close();
    }
  },
});
