import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import { clientCredentialsKey, getAccessToken, NotLoggedInError } from "../../src/auth/access.ts";
import { login, logout, whoami } from "../../src/auth/login.ts";
import { pkceChallenge } from "../../src/auth/oauth.ts";
import { TokenFileError, TokenStore } from "../../src/auth/tokens.ts";
import { DEFAULT_GLOBAL_CONFIG, type GlobalConfig } from "../../src/config/types.ts";
import { startAuthServer } from "./_oauth_server.ts";

function globalFor(url: string): GlobalConfig {
  return { ...DEFAULT_GLOBAL_CONFIG, auth_address: url };
}

Deno.test("pkce S256 challenge matches RFC 7636 appendix B", async () => {
  assertEquals(
    await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  );
});

Deno.test("token store: 0600 file in a 0700 dir, atomic, clear errors on corrupt files", () => {
  const home = Deno.makeTempDirSync();
  try {
    const store = new TokenStore(home);
    assertEquals(store.get(), undefined);
    store.set({
      scope: "s",
      access_token: "a",
      refresh_token: "r",
      token_type: "Bearer",
      expires_at_seconds: 1,
      resource_server: "funcx_service",
    });
    assertEquals(Deno.statSync(store.path).mode! & 0o777, 0o600);
    assertEquals(Deno.statSync(`${home}/credentials`).mode! & 0o777, 0o700);
    assertEquals([...Deno.readDirSync(`${home}/credentials`)].length, 1);
    assertEquals(store.get()?.refresh_token, "r");
    Deno.writeTextFileSync(store.path, "{not json");
    const e = assertThrows(() => store.get(), TokenFileError);
    assertMatch(e.message, /funcx_sdk_tokens\.json: not valid JSON/);
    Deno.writeTextFileSync(store.path, '{"funcx_service": {"access_token": 5}}');
    assertThrows(() => store.get(), TokenFileError, "funcx_service.access_token");
    assert(store.clear());
    assert(!store.clear());
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("login: PKCE code flow stores tokens; refresh is silent; logout revokes", async () => {
  const srv = startAuthServer();
  const home = Deno.makeTempDirSync();
  const global = globalFor(srv.url);
  try {
    await assertRejects(
      () => getAccessToken(home, global),
      NotLoggedInError,
      "funcx-endpoint login",
    );
    let printed = "";
    const r = await login({
      home,
      global,
      write: (t) => (printed += t),
      readCode: () => {
        const url = new URL(printed.split("\n")[1]);
        assertEquals(url.searchParams.get("code_challenge_method"), "S256");
        assertEquals(url.searchParams.get("redirect_uri"), `${srv.url}/v2/web/auth-code`);
        return Promise.resolve(srv.issueCode(url.searchParams.get("code_challenge")!) + "\n");
      },
    });
    assertEquals(r, "logged-in");
    assertMatch(printed, /^Please paste the following URL in a browser:\nhttp/);
    assertMatch(printed, /Please paste the authorization code: $/);
    const store = new TokenStore(home);
    const first = store.get()!;
    assertEquals(Deno.statSync(store.path).mode! & 0o777, 0o600);
    assertEquals(await getAccessToken(home, global), first.access_token);
    assertEquals((await whoami(home, global)).preferred_username, "alice");
    // expire it: the next call refreshes silently and keeps the refresh token
    store.set({ ...first, expires_at_seconds: Math.floor(Date.now() / 1000) + 10 });
    const [t1, t2] = await Promise.all([
      getAccessToken(home, global),
      getAccessToken(home, global),
    ]);
    assertEquals(t1, t2);
    assert(t1 !== first.access_token);
    assertEquals(store.get()!.refresh_token, first.refresh_token);
    assertEquals(srv.requests.filter((q) => q.form.grant_type === "refresh_token").length, 1);
    // a refused refresh token means "log in again"
    srv.refreshAllowed = false;
    store.set({ ...store.get()!, expires_at_seconds: 0 });
    await assertRejects(() => getAccessToken(home, global), NotLoggedInError, "refused");
    const out = await logout(home, global);
    assertEquals(out.hadTokens, true);
    assert(srv.revoked.has(first.refresh_token!));
    assertEquals(store.get(), undefined);
  } finally {
    await srv.close();
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("client credentials from FUNCX_SDK_CLIENT_ID/SECRET are used and cached", async () => {
  const srv = startAuthServer();
  const home = Deno.makeTempDirSync();
  Deno.env.set("FUNCX_SDK_CLIENT_ID", "cid");
  Deno.env.set("FUNCX_SDK_CLIENT_SECRET", "csecret");
  try {
    const global = globalFor(srv.url);
    const t = await getAccessToken(home, global);
    assertEquals(await getAccessToken(home, global), t);
    assertEquals(srv.requests.filter((q) => q.form.grant_type === "client_credentials").length, 1);
    assertEquals(new TokenStore(home).get(clientCredentialsKey("cid"))!.refresh_token, null);
    // cached under its own key: never taken for (or replacing) a stored login
    assertEquals(new TokenStore(home).get(), undefined);
    Deno.env.set("FUNCX_SDK_CLIENT_SECRET", "wrong");
    await assertRejects(
      () => getAccessToken(home, global, { force: true }),
      Error,
      "invalid_client",
    );
  } finally {
    Deno.env.delete("FUNCX_SDK_CLIENT_ID");
    Deno.env.delete("FUNCX_SDK_CLIENT_SECRET");
    await srv.close();
    Deno.removeSync(home, { recursive: true });
  }
});
