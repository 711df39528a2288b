/**
 * The auth commands end to end: `funcx-endpoint login` prints the authorize URL and reads
 * the pasted code from stdin (what a user does over ssh); the "browser" here is a real
 * HTTP form login against the local service. Then `whoami` (with a silent refresh),
 * `logout`, `start` without credentials, and client credentials from the environment.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../auth/_assert.ts";
import { programCommand, runCli } from "../helpers/cli.ts";
import { addClient, addUser, startService, writeGlobalConfig } from "../helpers/service.ts";

Deno.test({
  name:
    "e2e: login with a device code approved in a browser, whoami refreshes silently, logout, client credentials",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const home = Deno.makeTempDirSync({ prefix: "fx-auth-" });
    const svc = await startService({ home });
    try {
      await addUser(home, "alice", "alice-pw");
      await writeGlobalConfig(home, svc);

      // not logged in
      const none = await runCli(home, ["whoami"]);
      assert(none.code !== 0);
      assertMatch(none.stderr, /not logged in: run `funcx-endpoint login`/);

      // login: read the URL and the code from stdout, approve them in a "browser"
      const program = programCommand();
      const child = new Deno.Command(program.cmd, {
        args: [...program.args, "login"],
        env: { FUNCX_HOME: home, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stdout.getReader();
      let out = "";
      const dec = new TextDecoder();
      while (!/approve the code [A-Z]{4}-[A-Z]{4}/.test(out)) {
        const { value, done } = await reader.read();
        if (done) break;
        out += dec.decode(value);
      }
      assertMatch(out, /^To log in, open this URL in a browser/);
      const url = /https?:\/\/\S+/.exec(out)![0];
      const userCode = /approve the code ([A-Z]{4}-[A-Z]{4})/.exec(out)![1];
      assertMatch(url, /\/auth\/v2\/device\?user_code=/);
      // the browser opens the page (CSRF cookie and token); without them the form is refused
      const page = await fetch(url);
      const html = await page.text();
      assertEquals(page.status, 200, html.slice(0, 200));
      assertMatch(html, new RegExp(`value="${userCode}"`));
      const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
      const csrf = /<input type="hidden" name="csrf_token" value="([^"]*)">/.exec(html)![1];
      const form = (password: string, token = csrf) =>
        new URLSearchParams({
          csrf_token: token,
          user_code: userCode,
          username: "alice",
          password,
          action: "approve",
        });
      const forged = await fetch(url, { method: "POST", body: form("alice-pw", "") });
      assertEquals(forged.status, 403);
      await forged.body?.cancel();
      // a wrong password is refused; the right one approves
      const post = (body: URLSearchParams) =>
        fetch(url, { method: "POST", body, headers: { cookie } });
      const bad = await post(form("wrong"));
      assertEquals(bad.status, 401);
      assertMatch(await bad.text(), /Invalid user name or password/);
      const ok = await post(form("alice-pw"));
      assertEquals(ok.status, 200);
      assertMatch(await ok.text(), /id="done"/);
      const rest = (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return;
          out += dec.decode(value);
        }
      })();
      const st = await child.status;
      await rest;
      const err = await new Response(child.stderr).text();
      assertEquals(st.code, 0, err);
      assertMatch(out, /Logged in/);
      const tokFile = join(home, "credentials", "funcx_sdk_tokens.json");
      assertEquals(Deno.statSync(tokFile).mode! & 0o777, 0o600);
      assertEquals(Deno.statSync(join(home, "credentials")).mode! & 0o777, 0o700);
      const tok = JSON.parse(Deno.readTextFileSync(tokFile)).funcx_service;
      assert(!out.includes(tok.access_token) && !err.includes(tok.access_token));

      // already logged in
      const again = await runCli(home, ["login"]);
      assertEquals(again.code, 0, again.stderr);
      assertMatch(again.stdout, /Already logged in/);

      // whoami, then again with an expired access token: refreshed silently
      const who = await runCli(home, ["whoami"]);
      assertEquals(who.code, 0, who.stderr);
      assertMatch(who.stdout, /alice/);
      const data = JSON.parse(Deno.readTextFileSync(tokFile));
      data.funcx_service.expires_at_seconds = Math.floor(Date.now() / 1000) - 10;
      Deno.writeTextFileSync(tokFile, JSON.stringify(data));
      const who2 = await runCli(home, ["whoami"]);
      assertEquals(who2.code, 0, who2.stderr);
      assertMatch(who2.stdout, /alice/);
      const tok2 = JSON.parse(Deno.readTextFileSync(tokFile)).funcx_service;
      assert(tok2.access_token !== tok.access_token, "refreshed");
      assert(tok2.expires_at_seconds > Date.now() / 1000);
      assertEquals(Deno.statSync(tokFile).mode! & 0o777, 0o600);

      // logout revokes: the old refresh token no longer works
      const out3 = await runCli(home, ["logout"]);
      assertEquals(out3.code, 0, out3.stderr);
      assertMatch(out3.stdout, /Logged out/);
      assert(
        !(() => {
          try {
            Deno.statSync(tokFile);
            return true;
          } catch {
            return false;
          }
        })(),
      );
      const refused = await fetch(`${svc.authUrl}/v2/oauth2/token`, {
        method: "POST",
        body: new URLSearchParams({
          grant_type: "refresh_token",
          refresh_token: tok2.refresh_token,
          client_id: "4cf29807-cf21-49ec-9443-ff9a3fb9f81c",
        }),
      });
      await refused.body?.cancel();
      assertEquals(refused.status, 400);

      // start without credentials fails before detaching, saying what to run
      Deno.mkdirSync(join(home, "ep"));
      Deno.writeTextFileSync(join(home, "ep", "config.yaml"), "provider:\n  init_blocks: 0\n");
      const start = await runCli(home, ["start", "ep"]);
      assert(start.code !== 0);
      assertMatch(start.stderr, /funcx-endpoint login/);

      // unattended: client credentials from the environment
      const { clientId, clientSecret } = await addClient(home, "robot");
      const env = { FUNCX_SDK_CLIENT_ID: clientId, FUNCX_SDK_CLIENT_SECRET: clientSecret };
      const cc = await runCli(home, ["login"], { env });
      assertEquals(cc.code, 0, cc.stderr);
      assertMatch(cc.stdout, /client credentials/);
      const ccTok = JSON.parse(Deno.readTextFileSync(tokFile))[`funcx_service:client:${clientId}`];
      assertEquals(ccTok.refresh_token, null);
      assert(!cc.stdout.includes(clientSecret) && !cc.stderr.includes(clientSecret));
    } finally {
      await svc.stop();
      Deno.removeSync(home, { recursive: true });
    }
  },
});
