/**
 * The audit trail of changes made over the API: endpoint registrations, allow-list
 * additions and removals, function sharing and group membership changes.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { readAudit } from "../../src/service/audit.ts";
import { packBuffers, serializeSource } from "../../src/protocol/serialize.ts";
import { api, withService } from "../service/_util.ts";
import { FUNCX_SCOPE, GROUPS_SCOPE } from "../../src/config/types.ts";
import { loginViaForm } from "../helpers/service.ts";
import { runCli } from "../helpers/cli.ts";
import { registerEndpoint } from "../service/_endpoint.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("audit: registrations, allow-list and sharing changes", opts, async () => {
  await withService(async (t) => {
    const ep = (await registerEndpoint(t.url, t.alice, "ep")).reply.endpoint_id as string;
    const code = packBuffers([serializeSource("f", "def f(x):\n    return x\n")]);
    const F = (await api(`${t.url}/functions`, t.alice, "POST", { function_code: code }))
      .body.function_uuid as string;
    const wl = `${t.url}/endpoints/${ep}/whitelist`;
    assertEquals((await api(wl, t.alice, "POST", { func: [F] })).status, 200);
    assertEquals((await api(`${wl}/${F}`, t.alice, "DELETE")).status, 200);
    const pub = await api(`${t.url}/functions/${F}`, t.alice, "PUT", { public: true });
    assertEquals(pub.status, 200);
    t.svc.store.sharing.addGroup("lab", t.svc.store.sharing.userByName("alice")!.id);
    const admin = (await loginViaForm(t.authUrl, "alice", "alice-pw", {
      scope: `${FUNCX_SCOPE} ${GROUPS_SCOPE}`,
    })).access_token;
    const add = await api(`${t.url}/groups/lab/members`, admin, "POST", { username: "bob" });
    assertEquals(add.status, 200, JSON.stringify(add.body));

    const audit = readAudit(join(t.home, "service"));
    const of = (event: string) => audit.filter((e) => e.event === event);
    const reg = of("endpoint.registered").find((e) => e.endpoint === ep);
    assertEquals([reg?.user, reg?.name, reg?.public], ["alice", "ep", false]);
    assertEquals(
      of("allowlist.changed").map((e) => [e.user, e.endpoint, e.added ?? null, e.removed ?? null]),
      [["alice", ep, [F], null], ["alice", ep, null, [F]]],
    );
    const sharing = of("sharing.changed");
    assert(sharing.some((e) => e.action === "function.update" && e.function === F && e.public));
    assert(
      sharing.some((e) =>
        e.action === "group.add-member" && e.group === "lab" && e.user === "bob" &&
        e.by === "alice"
      ),
      JSON.stringify(sharing),
    );
  });
});

Deno.test("audit: group changes made with the CLI", opts, async () => {
  const home = await Deno.makeTempDir({ prefix: "fx-audit-cli-" });
  try {
    await runCli(home, ["service", "add-user", "carol", "--password-stdin"], {
      stdin: "carol-strong-pw-2026",
    });
    const made = await runCli(home, ["service", "add-group", "lab", "--admin", "carol"]);
    assertEquals(made.code, 0, made.stderr);
    const out = await runCli(home, ["service", "audit"]);
    assert(
      /sharing\.changed action=group\.create group=lab admin=carol by=cli/.test(out.stdout),
      out.stdout,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
