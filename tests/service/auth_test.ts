/**
 * Auth server and API authentication over real HTTP: the PKCE form flow, refusals (no
 * token, bad/expired token, wrong scope, verifier mismatch, code reuse), refresh tokens,
 * client credentials, introspection and userinfo.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { FUNCX_SCOPE, NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import { pkceChallenge } from "../../src/service/secrets.ts";
import { ServiceStore } from "../../src/service/store.ts";
import { addClient, loginFormCsrf, loginViaForm } from "../helpers/service.ts";
import { api, rejectsWith, withService } from "./_util.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function token(authUrl: string, form: Record<string, string>, basic?: string) {
  const headers: Record<string, string> = {};
  if (basic) headers.authorization = `Basic ${btoa(basic)}`;
  const res = await fetch(`${authUrl}/v2/oauth2/token`, {
    method: "POST",
    headers,
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() };
}

Deno.test(
  "auth: API refuses missing, malformed, unknown, expired and wrong-scope tokens",
  opts,
  async () => {
    await withService(async (t) => {
      const url = `${t.url}/endpoints/${crypto.randomUUID()}/status`;
      const none = await api(url, null);
      assertEquals(none.status, 401);
      assertEquals(none.body.code, 1);
      assertEquals(none.body.status, "Failed");
      match(String(none.body.reason), /Missing Authorization header/);

      const res = await fetch(url, { headers: { authorization: "Token abc" } });
      assertEquals(res.status, 401);
      match((await res.json()).reason, /Malformed Authorization header/);

      const unknown = await api(url, "fxa_not-a-real-token-at-all");
      assertEquals(unknown.status, 401);
      match(String(unknown.body.reason), /Invalid or revoked token/);

      // an expired token of a real user
      const store = ServiceStore.open(join(t.home, "service", "funcx.sqlite"));
      const expired = store.issueTokens({
        userId: store.checkPassword("alice", "alice-pw")!.id,
        clientId: NATIVE_CLIENT_ID,
        scope: FUNCX_SCOPE,
        lifetime: -5,
        refresh: false,
      });
      store.close();
      const exp = await api(url, expired.accessToken);
      assertEquals(exp.status, 401);
      match(String(exp.body.reason), /Token expired at/);

      // a valid token without the funcX scope
      const openidOnly = await loginViaForm(t.authUrl, "alice", "alice-pw", { scope: "openid" });
      assertEquals(openidOnly.scope, "openid");
      const scoped = await api(url, openidOnly.access_token);
      assertEquals(scoped.status, 401);
      match(String(scoped.body.reason), /lacks the funcX scope/);
      // ...but it is good for userinfo
      const ui = await api(`${t.authUrl}/v2/oauth2/userinfo`, openidOnly.access_token);
      assertEquals(ui.status, 200);
      assertEquals(ui.body.preferred_username, "alice");

      // /version needs no token
      assertEquals((await api(`${t.url}/version`, null)).status, 200);
      // no token in the log
      assert(!t.log().includes(openidOnly.access_token));
    });
  },
);

Deno.test(
  "auth: PKCE flow; verifier mismatch, reused code and bad redirect are refused",
  opts,
  async () => {
    await withService(async (t) => {
      const err = await rejectsWith(
        () => loginViaForm(t.authUrl, "alice", "alice-pw", { wrongVerifier: "a".repeat(43) }),
        Error,
      );
      match(err.message, /invalid_grant: code_verifier does not match the code_challenge/);
      const bad = await rejectsWith(() => loginViaForm(t.authUrl, "alice", "nope"), Error);
      match(bad.message, /HTTP 401: Invalid user name or password/);
      const nobody = await rejectsWith(() => loginViaForm(t.authUrl, "mallory", "x"), Error);
      match(nobody.message, /HTTP 401/);

      // do the steps by hand to replay the code
      const verifier = "v".repeat(20) + crypto.randomUUID() + "x";
      const redirect = `${t.authUrl}/v2/web/auth-code`;
      const params = {
        client_id: NATIVE_CLIENT_ID,
        redirect_uri: redirect,
        scope: FUNCX_SCOPE,
        response_type: "code",
        code_challenge: pkceChallenge(verifier),
        code_challenge_method: "S256",
      };
      const { cookie, csrf_token } = await loginFormCsrf(t.authUrl, params);
      const post = await fetch(`${t.authUrl}/v2/oauth2/authorize`, {
        method: "POST",
        headers: { cookie },
        body: new URLSearchParams({
          ...params,
          username: "alice",
          password: "alice-pw",
          csrf_token,
        }),
        redirect: "manual",
      });
      await post.body?.cancel();
      assertEquals(post.status, 303);
      const code = new URL(post.headers.get("location")!).searchParams.get("code")!;
      const page = await (await fetch(post.headers.get("location")!)).text();
      assert(page.includes(`<code id="auth-code">${code}</code>`));
      const form = {
        grant_type: "authorization_code",
        code,
        redirect_uri: redirect,
        client_id: NATIVE_CLIENT_ID,
        code_verifier: verifier,
      };
      const ok = await token(t.authUrl, form);
      assertEquals(ok.status, 200);
      assert(ok.body.refresh_token);
      assertEquals(ok.body.resource_server, "funcx_service");
      const again = await token(t.authUrl, form);
      assertEquals(again.status, 400);
      assertEquals(again.body.error, "invalid_grant");

      // plain PKCE and foreign redirect URIs are refused at the authorize step
      for (
        const [k, v, re] of [
          ["code_challenge_method", "plain", /code_challenge_method must be S256/],
          ["redirect_uri", "https://evil.example/auth/v2/web/auth-code", /is not allowed/],
          ["client_id", crypto.randomUUID(), /Unknown client_id/],
          ["scope", "urn:evil:all", /unknown scope/],
        ] as const
      ) {
        const q = new URLSearchParams({ ...params, [k]: v });
        const r = await fetch(`${t.authUrl}/v2/oauth2/authorize?${q}`);
        assertEquals(r.status, 400, k);
        match(await r.text(), re);
      }
      const missing = new URLSearchParams({ ...params, code_challenge: "" });
      const r = await fetch(`${t.authUrl}/v2/oauth2/authorize?${missing}`);
      assertEquals(r.status, 400);
      match(await r.text(), /code_challenge is required/);
    });
  },
);

Deno.test("auth: refresh tokens, client credentials, introspection", opts, async () => {
  await withService(async (t) => {
    const tokens = await loginViaForm(t.authUrl, "alice", "alice-pw");
    const refreshed = await token(t.authUrl, {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token!,
      client_id: NATIVE_CLIENT_ID,
    });
    assertEquals(refreshed.status, 200);
    assert(refreshed.body.access_token !== tokens.access_token);
    assertEquals(refreshed.body.refresh_token, tokens.refresh_token);
    assertEquals(
      (await api(`${t.url}/endpoints/${crypto.randomUUID()}/status`, refreshed.body.access_token))
        .status,
      404,
    );
    const badRefresh = await token(t.authUrl, {
      grant_type: "refresh_token",
      refresh_token: "fxr_nope",
      client_id: NATIVE_CLIENT_ID,
    });
    assertEquals(badRefresh.status, 400);
    assertEquals(badRefresh.body.error, "invalid_grant");

    const { clientId, clientSecret } = await addClient(t.home, "robot");
    const cc = await token(
      t.authUrl,
      { grant_type: "client_credentials", scope: FUNCX_SCOPE },
      `${clientId}:${clientSecret}`,
    );
    assertEquals(cc.status, 200);
    assertEquals(cc.body.refresh_token, undefined);
    const reg = await api(`${t.url}/endpoints`, cc.body.access_token, "POST", {
      endpoint_name: "robot-ep",
      version: "0.3.4",
      endpoint_pubkey: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
    });
    assertEquals(reg.status, 200);
    const wrongSecret = await token(
      t.authUrl,
      { grant_type: "client_credentials" },
      `${clientId}:fxs_wrong`,
    );
    assertEquals(wrongSecret.status, 401);
    assertEquals(wrongSecret.body.error, "invalid_client");
    const publicClient = await token(t.authUrl, {
      grant_type: "client_credentials",
      client_id: NATIVE_CLIENT_ID,
    });
    assertEquals(publicClient.status, 400);
    assertEquals(publicClient.body.error, "unauthorized_client");

    const intro = await fetch(`${t.authUrl}/v2/oauth2/token/introspect`, {
      method: "POST",
      headers: { authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}` },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    const ib = await intro.json();
    assertEquals(ib.active, true);
    assertEquals(ib.username, "alice");
    assert(String(ib.scope).includes(FUNCX_SCOPE));
    const introBad = await fetch(`${t.authUrl}/v2/oauth2/token/introspect`, {
      method: "POST",
      headers: { authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}` },
      body: new URLSearchParams({ token: "fxa_unknown" }),
    });
    assertEquals((await introBad.json()).active, false);
    const introAnon = await fetch(`${t.authUrl}/v2/oauth2/token/introspect`, {
      method: "POST",
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    assertEquals(introAnon.status, 401);
    await introAnon.body?.cancel();
    const badGrant = await token(t.authUrl, {
      grant_type: "password",
      client_id: NATIVE_CLIENT_ID,
    });
    assertEquals(badGrant.body.error, "unsupported_grant_type");
  });
});
