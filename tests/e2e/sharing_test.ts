/**
 * Sharing end to end: the real service, the real CLI and a real endpoint with python3
 * workers. alice owns an endpoint shared with group "lab" through its config.yaml; bob (a
 * member) runs alice's group-shared function on it and gets the result; carol (outsider) is
 * refused; `status` says who may use the endpoint; a restart without `allowed_groups`
 * un-shares it; `start` as another identity (stored login or environment client
 * credentials) fails in one line naming both identities; `whoami` shows email, groups and
 * where the identity comes from.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { FUNCX_SCOPE, GROUPS_SCOPE } from "../../src/config/types.ts";
import { FuncXApiError, FuncXClient, SubmitError } from "../../src/sdk/client.ts";
import { ServiceStore } from "../../src/service/store.ts";
import { runCli } from "../helpers/cli.ts";
import { addClient, addUser, loginViaForm, writeTokens } from "../helpers/service.ts";
import { createWorld, fastEndpointConfig, PY } from "./_world.ts";

const FULL = `${FUNCX_SCOPE} openid email ${GROUPS_SCOPE}`;

async function refusedCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SubmitError || e instanceof FuncXApiError) return e.code;
    throw e;
  }
  throw new Error("expected a refusal");
}

Deno.test({
  name: "e2e sharing: a group member runs tasks on a shared endpoint; owner-only start; whoami",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const w = await createWorld();
    try {
      const home = w.home;
      const db = () => ServiceStore.open(join(home, "service", "funcx.sqlite"));
      const s0 = db();
      s0.sharing.setEmail(s0.sharing.userByName("alice")!.id, "alice@example.org");
      s0.close();

      await t.step("service add-user --email, add-group, group add-member/list", async () => {
        const bob = await runCli(
          home,
          ["service", "add-user", "bob", "--email", "bob@example.org", "--password-stdin"],
          { stdin: "Bob-has-a-long-password-1\n" },
        );
        assertEquals(bob.code, 0, bob.stderr);
        await addUser(home, "carol", "Carol-has-a-long-password-1");
        const bad = await runCli(home, ["service", "add-user", "dave", "--email", "not-an-email"]);
        assertEquals(bad.code !== 0, true);
        assertMatch(bad.stderr, /--email: email "not-an-email" is invalid/);
        const g = await runCli(home, ["service", "add-group", "lab", "--admin", "alice"]);
        assertEquals(g.code, 0, g.stderr);
        const m = await runCli(home, ["service", "group", "add-member", "lab", "bob"]);
        assertEquals(m.code, 0, m.stderr);
        const nobody = await runCli(home, ["service", "group", "add-member", "lab", "zed"]);
        assert(nobody.code !== 0);
        assertMatch(nobody.stderr, /user "zed" does not exist/);
        const l = await runCli(home, ["service", "group", "list", "lab", "--json"]);
        assertEquals(l.code, 0, l.stderr);
        assertEquals(JSON.parse(l.stdout).members, [
          { username: "alice", email: "alice@example.org", role: "admin" },
          { username: "bob", email: "bob@example.org", role: "member" },
        ]);
      });

      const bobTokens = await loginViaForm(
        w.svc.authUrl,
        "bob",
        "Bob-has-a-long-password-1",
        { scope: FULL },
      );
      const carolTok = (await loginViaForm(
        w.svc.authUrl,
        "carol",
        "Carol-has-a-long-password-1",
        { scope: FULL },
      )).access_token;
      const bob = new FuncXClient({ serviceAddress: w.svc.url, token: bobTokens.access_token });
      const carol = new FuncXClient({ serviceAddress: w.svc.url, token: carolTok });

      await t.step(
        "an unknown group in allowed_groups fails start with a clear error",
        async () => {
          w.configure("typo", fastEndpointConfig("allowed_groups: [lab, labb]"));
          const r = await runCli(home, ["start", "typo"]);
          assert(r.code !== 0);
          assertMatch(r.stderr, /Group "labb" not found \(code 7\)/);
        },
      );

      w.configure("main", fastEndpointConfig("allowed_groups: [lab]"));
      let ep = await w.startEndpoint("main");
      const fn = await w.client.registerFunction(PY.add, "add", { group: "lab" });

      await t.step("status shows who may use the endpoint", async () => {
        const st = await runCli(home, ["status", "main"]);
        assertEquals(st.code, 0, st.stderr);
        assertMatch(st.stdout, /Who may use it: alice and members of lab/);
      });

      await t.step("the member's task runs on the owner's endpoint; others refused", async () => {
        const [id] = await bob.submit([{
          functionId: fn,
          endpointId: ep.endpointId,
          args: [2, 5],
        }]);
        const r = await bob.waitForResults([id], { timeoutMs: 240_000 });
        assertEquals(r.get(id)?.value, 7);
        // the outsider: neither the group function nor the endpoint
        const own = await carol.registerFunction(PY.add, "add");
        assertEquals(
          await refusedCode(
            carol.submit([{ functionId: own, endpointId: ep.endpointId, args: [1, 1] }]),
          ),
          9,
        );
        assertEquals(
          await refusedCode(
            carol.submit([{ functionId: fn, endpointId: ep.endpointId, args: [1, 1] }]),
          ),
          8,
        );
        // bob's task is bob's: the endpoint owner cannot read it
        const [id2] = await bob.submit([{
          functionId: fn,
          endpointId: ep.endpointId,
          args: [1, 1],
        }]);
        assertEquals(await refusedCode(w.client.getTask(id2)), 6);
        assertEquals((await bob.waitForResults([id2], { timeoutMs: 240_000 })).get(id2)?.value, 2);
      });

      await t.step("a restart without allowed_groups un-shares the endpoint", async () => {
        assertEquals(await ep.stop(), 0);
        w.configure("main", fastEndpointConfig());
        ep = await w.startEndpoint("main");
        assertEquals(
          await refusedCode(
            bob.submit([{ functionId: fn, endpointId: ep.endpointId, args: [1, 1] }]),
          ),
          9,
        );
        const st = await runCli(home, ["status", "main"]);
        assertMatch(st.stdout, /Who may use it: alice only/);
        assertEquals(await ep.stop(), 0);
      });

      await t.step("start as another identity fails in one line naming both", async () => {
        await writeTokens(home, bobTokens);
        const who = await runCli(home, ["whoami"]);
        assertEquals(who.code, 0, who.stderr);
        assertMatch(who.stdout, /^bob <bob@example\.org>/);
        assertMatch(who.stdout, /Groups: lab \(member\)/);
        assertMatch(who.stdout, /Identity from: stored login tokens/);
        const start = await runCli(home, ["start", "main"]);
        assert(start.code !== 0);
        const lines = start.stderr.trim().split("\n");
        assertEquals(lines.length, 1, start.stderr);
        assertMatch(lines[0], /registered to alice <alice@example\.org>/);
        assertMatch(lines[0], /logged in as bob <bob@example\.org> \(stored login tokens\)/);
        assertMatch(lines[0], /funcx-endpoint login/);
        assertMatch(lines[0], /funcx-endpoint configure/);
        // restart as another identity: refused before the running daemon would be stopped
        const re = await runCli(home, ["restart", "main"]);
        assert(re.code !== 0);
        assertMatch(
          re.stderr,
          /registered to alice <alice@example\.org>, but you are logged in as bob/,
        );
        // an endpoint.json without the owner (older registration): the service refuses the
        // daemon (code 11) and start still says it in one line
        const file = join(home, "main", "endpoint.json");
        const reg = JSON.parse(Deno.readTextFileSync(file));
        delete reg.owner;
        Deno.writeTextFileSync(file, JSON.stringify(reg));
        const late = await runCli(home, ["start", "main"]);
        assert(late.code !== 0);
        const one = late.stderr.trim().split("\n");
        assertEquals(one.length, 1, late.stderr);
        assertMatch(one[0], /registered to another identity, but you are logged in as bob/);
        reg.owner = { username: "alice", email: "alice@example.org" };
        Deno.writeTextFileSync(file, JSON.stringify(reg));
      });

      await t.step("environment client credentials take precedence", async () => {
        const { clientId, clientSecret } = await addClient(home, "robot");
        const env = { FUNCX_SDK_CLIENT_ID: clientId, FUNCX_SDK_CLIENT_SECRET: clientSecret };
        const who = await runCli(home, ["whoami"], { env });
        assertEquals(who.code, 0, who.stderr);
        assertMatch(who.stdout, /^client:robot/);
        assertMatch(who.stdout, /Identity from: FUNCX_SDK_CLIENT_ID/);
        const start = await runCli(home, ["start", "main"], { env });
        assert(start.code !== 0);
        assertMatch(start.stderr, /registered to alice.*logged in as client:robot/);
        // the stored login is untouched: without the variables it is bob again
        const who2 = await runCli(home, ["whoami"]);
        assertMatch(who2.stdout, /^bob/);
      });
    } finally {
      await w.close();
    }
  },
});
