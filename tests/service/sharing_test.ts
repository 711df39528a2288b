/**
 * Sharing on one real local service with three real users logged in through the PKCE form
 * flow: alice (owner), bob (member of alice's group "lab") and carol (outsider). Every rule
 * in both directions over the HTTP API and through the SDK: identities with email and
 * scopes, group administration, function sharing (public / group, code 8), endpoint sharing
 * (public / allowed_groups, code 9), revocation at the next request, results visible only to
 * the submitter, and fuzzed sharing fields answered with clean 4xx errors.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { curveKeyPairZ85 } from "../../src/io/zmtp/mod.ts";
import { FUNCX_SCOPE, GROUPS_SCOPE } from "../../src/config/types.ts";
import { FuncXClient, SubmitError } from "../../src/sdk/client.ts";
import { packBuffers, serializeData, serializeSource } from "../../src/protocol/serialize.ts";
import { loginViaForm } from "../helpers/service.ts";
import { api, rejectsWith, withService } from "./_util.ts";
import { fuzzSeed, rng } from "../fuzz/_rand.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FULL = `${FUNCX_SCOPE} openid email ${GROUPS_SCOPE}`;
const SRC = "def add(a, b):\n    return a + b\n";
const CODE = packBuffers([serializeSource("add", SRC)]);
const PAYLOAD = packBuffers([serializeData([1, 2]), serializeData({})]);

/** Register an endpoint over HTTP with sharing fields; returns status and body. */
function registerEp(url: string, token: string, name: string, extra: Record<string, unknown>) {
  return api(`${url}/endpoints`, token, "POST", {
    endpoint_name: name,
    endpoint_uuid: null,
    version: "0.3.4",
    endpoint_pubkey: curveKeyPairZ85().publicKey,
    ...extra,
  });
}

function registerFn(url: string, token: string, extra: Record<string, unknown>) {
  return api(`${url}/functions`, token, "POST", {
    function_name: "add",
    function_code: CODE,
    function_source: SRC,
    container_uuid: null,
    entry_point: "add",
    description: null,
    searchable: true,
    ...extra,
  });
}

async function submit(url: string, token: string, fid: string, eid: string) {
  const r = await api(`${url}/submit`, token, "POST", { tasks: [[fid, eid, PAYLOAD]] });
  const res = (r.body.results as Record<string, unknown>[])[0];
  return { status: r.status, code: res.code, http: res.http_status_code, task: res.task_uuid };
}

Deno.test({
  name: "sharing: three users, groups, function and endpoint sharing over HTTP and the SDK",
  ...opts,
  fn: () =>
    withService(async (t) => {
      const store = t.svc.store;
      const users: Record<string, number> = {};
      for (const [name, email] of [["alice", "alice@example.org"], ["bob", "bob@example.org"]]) {
        const u = store.addUser(name, `${name}-pw`);
        store.sharing.setEmail(u.id, email);
        users[name] = u.id;
      }
      users.carol = store.addUser("carol", "carol-pw").id;
      const tok: Record<string, string> = {};
      for (const n of ["alice", "bob", "carol"]) {
        tok[n] = (await loginViaForm(t.authUrl, n, `${n}-pw`, { scope: FULL })).access_token;
      }
      const lab = store.sharing.addGroup("lab", users.alice);

      // --- identities and scopes
      const page = await (await fetch(
        `${t.authUrl}/v2/oauth2/authorize?` + new URLSearchParams({
          client_id: "4cf29807-cf21-49ec-9443-ff9a3fb9f81c",
          redirect_uri: `${t.authUrl}/v2/web/auth-code`,
          scope: FULL,
          code_challenge: "a".repeat(43),
          code_challenge_method: "S256",
        }),
      )).text();
      for (const s of [FUNCX_SCOPE, "email", GROUPS_SCOPE]) {
        assert(page.includes(`data-scope="${s}"`), `consent page lists ${s}`);
      }
      match(page, /your email address/);
      match(page, /your groups and memberships/);
      const ui = await api(`${t.authUrl}/v2/oauth2/userinfo`, tok.alice);
      assertEquals(ui.body.email, "alice@example.org");
      match(String(ui.body.scope), /groups\.api\.globus\.org/);
      // a token without the email / groups scopes reads neither
      const narrow = (await loginViaForm(t.authUrl, "bob", "bob-pw")).access_token;
      assertEquals((await api(`${t.authUrl}/v2/oauth2/userinfo`, narrow)).body.email, null);
      const noGroups = await api(`${t.url}/groups`, narrow);
      assertEquals(noGroups.status, 403);
      match(String(noGroups.body.reason), /groups scope/);

      // --- groups over HTTP: admins change members, members read, outsiders see nothing
      assertEquals((await api(`${t.url}/groups`, tok.alice)).body.groups, [
        { id: lab.id, name: "lab", role: "admin" },
      ]);
      const add = await api(`${t.url}/groups/lab/members`, tok.alice, "POST", {
        username: "bob",
      });
      assertEquals(add.status, 200, JSON.stringify(add.body));
      assertEquals((await api(`${t.url}/groups`, tok.bob)).body.groups, [
        { id: lab.id, name: "lab", role: "member" },
      ]);
      const shown = await api(`${t.url}/groups/${lab.id}`, tok.bob);
      assertEquals(shown.status, 200);
      assertEquals(shown.body.members, [
        { username: "alice", email: "alice@example.org", role: "admin" },
        { username: "bob", email: "bob@example.org", role: "member" },
      ]);
      const bobAdds = await api(`${t.url}/groups/lab/members`, tok.bob, "POST", {
        username: "carol",
      });
      assertEquals([bobAdds.status, bobAdds.body.code], [403, 21]);
      assertEquals((await api(`${t.url}/groups/lab`, tok.carol)).status, 404);
      assertEquals((await api(`${t.url}/groups/lab/members/bob`, tok.carol, "DELETE")).status, 404);
      assertEquals((await api(`${t.url}/groups`, tok.carol)).body.groups, []);
      assertEquals(
        (await api(`${t.url}/groups/lab/members`, tok.alice, "POST", { username: "nobody" }))
          .status,
        404,
      );

      // --- endpoints: alice's shared with lab, alice's private one, carol's own
      const shared = await registerEp(t.url, tok.alice, "shared", { allowed_groups: ["lab"] });
      assertEquals(shared.status, 200, JSON.stringify(shared.body));
      assertEquals(shared.body.owner, { username: "alice", email: "alice@example.org" });
      assertEquals(shared.body.sharing, {
        public: false,
        allowed_groups: [{ id: lab.id, name: "lab" }],
      });
      const epShared = shared.body.endpoint_id as string;
      const epPrivate = (await registerEp(t.url, tok.alice, "private", {})).body
        .endpoint_id as string;
      const epCarol = (await registerEp(t.url, tok.carol, "carols", {})).body.endpoint_id as string;
      const epPublic = (await registerEp(t.url, tok.alice, "open", { public: true })).body
        .endpoint_id as string;

      // --- functions: group-shared, public, private
      const fGroup = (await registerFn(t.url, tok.alice, { public: false, group: lab.id })).body
        .function_uuid as string;
      const fPublic = (await registerFn(t.url, tok.alice, { public: true, group: null })).body
        .function_uuid as string;
      const fPrivate = (await registerFn(t.url, tok.alice, {})).body.function_uuid as string;

      // the member: group function on the group endpoint, public function too
      assertEquals((await submit(t.url, tok.bob, fGroup, epShared)).code, undefined);
      assertEquals((await submit(t.url, tok.bob, fPublic, epShared)).code, undefined);
      // ...but not the private function, nor the private endpoint
      assertEquals(await submit(t.url, tok.bob, fPrivate, epShared).then((r) => [r.code, r.http]), [
        8,
        403,
      ]);
      assertEquals(await submit(t.url, tok.bob, fGroup, epPrivate).then((r) => [r.code, r.http]), [
        9,
        403,
      ]);
      // the outsider: group function refused even on their own endpoint; shared endpoint refused
      assertEquals((await submit(t.url, tok.carol, fGroup, epCarol)).code, 8);
      assertEquals((await submit(t.url, tok.carol, fPublic, epShared)).code, 9);
      assertEquals((await submit(t.url, tok.carol, fPublic, epCarol)).code, undefined);
      assertEquals((await submit(t.url, tok.carol, fPublic, epPublic)).code, undefined);
      // memberships come from the service, never from the request
      const sayso = await api(`${t.url}/submit`, tok.carol, "POST", {
        tasks: [[fGroup, epShared, PAYLOAD]],
        groups: [lab.id],
        group: lab.id,
        user_groups: ["lab"],
      });
      assertEquals((sayso.body.results as { code: number }[])[0].code, 8);
      // the owner: everything of hers
      assertEquals((await submit(t.url, tok.alice, fPrivate, epPrivate)).code, undefined);

      // endpoint status: readable by those who may use it, says who that is
      const st = await api(`${t.url}/endpoints/${epShared}/status`, tok.bob);
      assertEquals(st.status, 200);
      assertEquals(st.body.owner, "alice");
      assertEquals(
        (st.body.sharing as { allowed_groups: unknown[] }).allowed_groups,
        [{ id: lab.id, name: "lab" }],
      );
      const stCarol = await api(`${t.url}/endpoints/${epShared}/status`, tok.carol);
      assertEquals([stCarol.status, stCarol.body.code], [403, 9]);
      // the status page lists shared endpoints to those who may use them, and says who may
      const pageOf = async (who: string) =>
        await (await fetch(`${t.url.replace(/\/v2$/, "")}/`, {
          headers: { authorization: `Bearer ${tok[who]}` },
        })).text();
      const bobPage = await pageOf("bob");
      assert(bobPage.includes(epShared) && !bobPage.includes(epPrivate));
      match(bobPage, /<td class="shared-with">alice and members of lab<\/td>/);
      match(await pageOf("alice"), /<td class="shared-with">alice only<\/td>/);
      match(await pageOf("carol"), /<td class="shared-with">anyone \(public\)<\/td>/);
      assert(!(await pageOf("carol")).includes(epShared));
      // only the owner deletes
      assertEquals((await api(`${t.url}/endpoints/${epShared}`, tok.bob, "DELETE")).status, 403);

      // results and status only for the submitter (the owner of the endpoint sees nothing)
      const bobTask = (await submit(t.url, tok.bob, fGroup, epShared)).task as string;
      assertEquals((await api(`${t.url}/tasks/${bobTask}`, tok.alice)).status, 404);
      assertEquals((await api(`${t.url}/tasks/${bobTask}`, tok.carol)).status, 404);
      const bs = await api(`${t.url}/batch_status`, tok.alice, "POST", { task_ids: [bobTask] });
      assertEquals(
        (bs.body.results as Record<string, { status: string }>)[bobTask].status,
        "Failed",
      );
      assertEquals((await api(`${t.url}/tasks/${bobTask}`, tok.bob)).status, 200);

      // the owner un-shares a function (PUT group: null), and shares it again
      const fTmp = (await registerFn(t.url, tok.alice, { group: "lab" })).body.function_uuid;
      assertEquals((await submit(t.url, tok.bob, fTmp as string, epShared)).code, undefined);
      assertEquals(
        (await api(`${t.url}/functions/${fTmp}`, tok.alice, "PUT", { group: null }))
          .status,
        200,
      );
      assertEquals((await submit(t.url, tok.bob, fTmp as string, epShared)).code, 8);
      // only the owner changes sharing
      const bobShares = await api(`${t.url}/functions/${fTmp}`, tok.bob, "PUT", { public: true });
      assertEquals([bobShares.status, bobShares.body.code], [403, 8]);
      assert(/group.add-member by alice/.test(t.log()), "membership changes are logged");

      // --- through the SDK
      const sdk = (n: string) => new FuncXClient({ serviceAddress: t.url, token: tok[n] });
      const sdkFn = await sdk("alice").registerFunction(SRC, "add", { group: "lab" });
      const [bobId] = await sdk("bob").submit([{
        functionId: sdkFn,
        endpointId: epShared,
        args: [2, 3],
      }]);
      assert(bobId);
      const refused = await rejectsWith(
        () => sdk("carol").submit([{ functionId: sdkFn, endpointId: epCarol, args: [1, 1] }]),
        SubmitError,
      );
      assertEquals(refused.code, 8);
      const refusedEp = await rejectsWith(
        () => sdk("carol").submit([{ functionId: fPublic, endpointId: epShared, args: [1, 1] }]),
        SubmitError,
      );
      assertEquals(refusedEp.code, 9);

      // --- revocation: removed from the group, refused at the very next request
      const rm = await api(`${t.url}/groups/lab/members/bob`, tok.alice, "DELETE");
      assertEquals(rm.status, 200);
      assertEquals((await submit(t.url, tok.bob, fPublic, epShared)).code, 9);
      assertEquals((await submit(t.url, tok.bob, fGroup, epPublic)).code, 8);
      assertEquals((await api(`${t.url}/groups/lab`, tok.bob)).status, 404);
      // re-added as admin: access back, and now bob may manage members
      store.sharing.setMember(lab.id, users.bob, "admin");
      assertEquals((await submit(t.url, tok.bob, fGroup, epShared)).code, undefined);
      assertEquals(
        (await api(`${t.url}/groups/lab/members`, tok.bob, "POST", {
          username: "carol",
          role: "member",
        })).status,
        200,
      );
      assertEquals((await submit(t.url, tok.carol, fGroup, epShared)).code, undefined);

      // --- re-registration states the whole sharing: without the fields it is private again
      const again = await api(`${t.url}/endpoints`, tok.alice, "POST", {
        endpoint_name: "shared",
        endpoint_uuid: epShared,
        version: "0.3.4",
        endpoint_pubkey: curveKeyPairZ85().publicKey,
      });
      assertEquals(again.status, 200, JSON.stringify(again.body));
      assertEquals((await submit(t.url, tok.carol, fPublic, epShared)).code, 9);
      // another identity cannot take the endpoint over; the refusal names the caller
      const steal = await api(`${t.url}/endpoints`, tok.carol, "POST", {
        endpoint_name: "x",
        endpoint_uuid: epShared,
        version: "0.3.4",
        endpoint_pubkey: curveKeyPairZ85().publicKey,
      });
      assertEquals(steal.body.code, 11);
      match(String(steal.body.reason), /you are carol/);
    }, { users: false }),
});

Deno.test({
  name: "sharing: fuzzed group and sharing fields get clean 4xx errors",
  ...opts,
  fn: () =>
    withService(async (t) => {
      const store = t.svc.store;
      store.addUser("alice", "alice-pw");
      const tok = (await loginViaForm(t.authUrl, "alice", "alice-pw", { scope: FULL }))
        .access_token;
      store.sharing.addGroup("lab", store.sharing.userByName("alice")!.id);
      const rand = rng(fuzzSeed(1616));
      const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
      const junk = (): unknown =>
        pick<unknown>([
          1,
          -1,
          0.5,
          "",
          "x".repeat(300),
          "lab\u0000",
          "00000000-0000-0000-0000-000000000000",
          [],
          [1, 2],
          ["lab", 7],
          ["nope"],
          Array(100).fill("lab"),
          {},
          { a: 1 },
          "true",
          "../lab",
          "<script>",
          1e308,
        ]);
      let n = 0;
      for (let i = 0; i < 150; i++) {
        const which = i % 5;
        let r;
        if (which === 0) {
          r = await registerFn(t.url, tok, { [pick(["public", "group"])]: junk() });
        } else if (which === 1) {
          r = await registerEp(t.url, tok, "ep", {
            [pick(["public", "allowed_groups"])]: junk(),
          });
        } else if (which === 2) {
          r = await api(`${t.url}/groups/lab/members`, tok, "POST", {
            username: pick<unknown>(["alice", junk()]),
            role: junk(),
          });
        } else if (which === 3) {
          r = await api(
            `${t.url}/groups/${encodeURIComponent(String(junk()))}/members`,
            tok,
            "POST",
            { username: "alice" },
          );
        } else {
          r = await api(
            `${t.url}/groups/lab/members/${encodeURIComponent(String(junk()))}`,
            tok,
            "DELETE",
          );
        }
        if (r.status === 200) continue; // e.g. a junk value that happens to be valid
        n++;
        assert(
          r.status >= 400 && r.status < 500,
          `${which}: HTTP ${r.status} ${JSON.stringify(r.body)}`,
        );
        assertEquals(r.body.status, "Failed");
        assert(typeof r.body.code === "number" && typeof r.body.reason === "string");
        assert(!String(r.body.reason).includes("\n"), "one-line reason");
      }
      assert(n > 100, `most fuzzed requests are refused (${n})`);
      assert(!/Internal error/.test(t.log()), "no internal error");
    }, { users: false }),
});
