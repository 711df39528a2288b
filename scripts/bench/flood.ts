/**
 * The attacker of `deno task bench --hostile`, as its own process: `clients` concurrent
 * loops posting the login form with wrong passwords (each with the form's CSRF cookie, as
 * a scripted browser would) as fast as the service answers, for `seconds`. Prints one JSON
 * line: attempts and replies by status.
 *
 * @example
 * ```sh
 * deno run -A scripts/bench/flood.ts http://127.0.0.1:8400/auth 8 20
 * ```
 * @module
 */
import { FUNCX_SCOPE, NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import { pkceChallenge } from "../../src/service/secrets.ts";

async function client(authUrl: string, until: number, counts: Map<number, number>, i: number) {
  const params = {
    client_id: NATIVE_CLIENT_ID,
    redirect_uri: "http://127.0.0.1/cb",
    scope: FUNCX_SCOPE,
    response_type: "code",
    code_challenge: pkceChallenge("v".repeat(43)),
    code_challenge_method: "S256",
  };
  const url = `${authUrl}/v2/oauth2/authorize`;
  const page = await fetch(`${url}?${new URLSearchParams(params)}`);
  const text = await page.text();
  const csrf = /name="csrf_token" value="([^"]*)"/.exec(text)?.[1] ?? "";
  const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
  let n = 0;
  while (Date.now() < until) {
    const res = await fetch(url, {
      method: "POST",
      headers: { cookie },
      body: new URLSearchParams({
        ...params,
        csrf_token: csrf,
        username: i % 2 ? "bench" : `guess${n % 50}`, // the real user, and a spray
        password: `wrong-${n++}`,
      }),
      redirect: "manual",
    }).catch(() => undefined);
    if (!res) {
      counts.set(0, (counts.get(0) ?? 0) + 1);
      continue;
    }
    await res.body?.cancel();
    counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
  }
}

if (import.meta.main) {
  const [authUrl, clients = "8", seconds = "20"] = Deno.args;
  const until = Date.now() + Number(seconds) * 1000;
  const counts = new Map<number, number>();
  await Promise.all(
    Array.from({ length: Number(clients) }, (_, i) => client(authUrl, until, counts, i)),
  );
  const byStatus = Object.fromEntries([...counts].map(([k, v]) => [String(k), v]));
  const attempts = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({ attempts, seconds: Number(seconds), byStatus }));
}
