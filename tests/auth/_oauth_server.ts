/**
 * A test-side OAuth2 server (real HTTP on port 0) that checks PKCE S256 for the auth
 * client unit tests; the e2e tests use the real local service instead.
 * @module
 */
import { pkceChallenge } from "../../src/auth/oauth.ts";

export interface TestAuthServer {
  url: string;
  requests: { path: string; form: Record<string, string>; auth: string | null }[];
  /** Issue an authorization code bound to a challenge (what the authorize form would do). */
  issueCode(challenge: string): string;
  revoked: Set<string>;
  refreshAllowed: boolean;
  expiresIn: number;
  close(): Promise<void>;
}

export function startAuthServer(): TestAuthServer {
  const codes = new Map<string, string>();
  const access = new Set<string>();
  const refresh = new Set<string>();
  let n = 0;
  const state: TestAuthServer = {
    url: "",
    requests: [],
    revoked: new Set(),
    refreshAllowed: true,
    expiresIn: 3600,
    issueCode(challenge) {
      const c = `code${++n}`;
      codes.set(c, challenge);
      return c;
    },
    close: async () => {},
  };
  const mint = (withRefresh: boolean) => {
    const a = `fxa_${crypto.randomUUID().replaceAll("-", "")}`;
    access.add(a);
    const r = withRefresh ? `fxr_${crypto.randomUUID().replaceAll("-", "")}` : undefined;
    if (r) refresh.add(r);
    return {
      access_token: a,
      refresh_token: r,
      expires_in: state.expiresIn,
      token_type: "Bearer",
      scope: "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all",
      resource_server: "funcx_service",
    };
  };
  const err = (status: number, error: string) => Response.json({ error }, { status });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const u = new URL(req.url);
    const form = req.method === "POST"
      ? Object.fromEntries(new URLSearchParams(await req.text()))
      : {};
    state.requests.push({ path: u.pathname, form, auth: req.headers.get("authorization") });
    if (u.pathname === "/auth/v2/oauth2/token") {
      if (form.grant_type === "authorization_code") {
        const ch = codes.get(form.code);
        if (!ch || (await pkceChallenge(form.code_verifier ?? "")) !== ch) {
          return err(400, "invalid_grant");
        }
        codes.delete(form.code);
        return Response.json(mint(true));
      }
      if (form.grant_type === "refresh_token") {
        if (!state.refreshAllowed || !refresh.has(form.refresh_token)) {
          return err(400, "invalid_grant");
        }
        return Response.json({ ...mint(false), refresh_token: undefined });
      }
      if (form.grant_type === "client_credentials") {
        if (req.headers.get("authorization") !== `Basic ${btoa("cid:csecret")}`) {
          return err(401, "invalid_client");
        }
        return Response.json(mint(false));
      }
      return err(400, "unsupported_grant_type");
    }
    if (u.pathname === "/auth/v2/oauth2/token/revoke") {
      state.revoked.add(form.token);
      access.delete(form.token);
      refresh.delete(form.token);
      return Response.json({ active: false });
    }
    if (u.pathname === "/auth/v2/oauth2/userinfo") {
      const t = (req.headers.get("authorization") ?? "").replace(/^Bearer /, "");
      if (!access.has(t)) return err(401, "invalid_token");
      return Response.json({ sub: "u-1", preferred_username: "alice" });
    }
    return new Response("not found", { status: 404 });
  });
  state.url = `http://127.0.0.1:${server.addr.port}/auth`;
  state.close = () => server.shutdown();
  return state;
}
