/**
 * The status page `GET /` rendered by headless Chromium (Debian `chromium`): endpoints
 * online/offline with last heartbeat, queued/running/done counts, recent tasks, and the
 * self-refresh. Skipped with a reason when /usr/bin/chromium is absent.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { serializeData } from "../../src/protocol/serialize.ts";
import { statusPageHtml } from "../../src/service/status_page.ts";
import { FuncXClient } from "../../src/sdk/client.ts";
import { TestEndpoint } from "./_endpoint.ts";
import { eventually, withService } from "./_util.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!haveChromium) {
  console.warn(`status page browser test skipped: ${CHROMIUM} not installed (.ci/run installs it)`);
}

async function dumpDom(url: string): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "fx-chromium-" });
  try {
    const out = await new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        "--dump-dom",
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dom = new TextDecoder().decode(out.stdout);
    if (!dom.includes("<html")) {
      throw new Error(`chromium printed no DOM: ${new TextDecoder().decode(out.stderr)}`);
    }
    return dom;
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

Deno.test("status page: renders counts, endpoints and escapes names", () => {
  const html = statusPageHtml({
    endpoints: [{ uuid: "u1", name: "<b>x</b>", online: true, lastHeartbeat: 0 }],
    counts: { queued: 3, running: 2, done: 1 },
    tasks: [{ uuid: "t1", endpoint: "u1", status: "running", created: 0 }],
  });
  assert(html.includes('id="count-queued">3<'));
  assert(html.includes("&lt;b&gt;x&lt;/b&gt;"));
  assert(html.includes('<meta http-equiv="refresh" content="5">'));
});

Deno.test({
  name:
    "status page: headless Chromium shows counts; a token shows only its own endpoints and tasks",
  ignore: !haveChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withService(async (t) => {
      const base = t.url.replace(/\/v2$/, "");
      const online = await TestEndpoint.register(t.url, t.alice, "online-ep");
      const offline = await TestEndpoint.register(t.url, t.bob, "offline-ep");
      const fx = new FuncXClient({ serviceAddress: t.url, token: t.alice });
      const fn = await fx.registerFunction("def f(x):\n    return x\n", "f");
      await online.connect();
      const ids = await fx.submit([1, 2, 3].map((x) => ({
        functionId: fn,
        endpointId: online.reply.endpoint_id,
        args: [x],
      })));
      await online.waitForTasks(3);
      await online.sendResult(ids[0], { result: serializeData(1) });
      await online.waitFor(() => online.acks().length === 1, 10_000, "ack");
      await online.sendStatus({});
      await eventually(
        () => t.svc.forwarder.lastSeen(online.reply.endpoint_id) !== undefined,
        "seen",
      );

      // Anonymous (what a browser on the login node gets): counts only, no ids.
      const dom = await dumpDom(`${base}/`);
      assert(dom.includes('<meta http-equiv="refresh" content="5">'));
      match(dom, /id="count-queued">0</);
      match(dom, /id="count-running">2</);
      match(dom, /id="count-done">1</);
      assert(!dom.includes(online.reply.endpoint_id), "anonymous page lists no endpoint ids");
      for (const id of ids) assert(!dom.includes(id), `anonymous page hides task ${id}`);
      match(dom, /Authorization: Bearer/);

      // With alice's token: her endpoints and tasks, not bob's.
      const res = await fetch(`${base}/`, { headers: { authorization: `Bearer ${t.alice}` } });
      const page = await res.text();
      const row = (id: string) =>
        new RegExp(`<tr class="endpoint (online|offline)" data-endpoint-id="${id}">.*?</tr>`, "s")
          .exec(page);
      const on = row(online.reply.endpoint_id);
      assertEquals(on?.[1], "online");
      match(on![0], /online-ep/);
      match(on![0], /class="heartbeat">\d{4}-\d\d-\d\dT/);
      assertEquals(row(offline.reply.endpoint_id), null, "bob's endpoint is not on alice's page");
      for (const id of ids) assert(page.includes(`data-task-id="${id}"`), `task ${id} listed`);
      assert(!page.includes("00\n"));
      const bobPage = await (await fetch(`${base}/`, {
        headers: { authorization: `Bearer ${t.bob}` },
      })).text();
      match(
        bobPage,
        new RegExp(`data-endpoint-id="${offline.reply.endpoint_id}".*?offline-ep`, "s"),
      );
      assert(!bobPage.includes(online.reply.endpoint_id), "alice's endpoint not on bob's page");
      await online.close();
    });
  },
});
