/**
 * Test helpers for the local funcX service: start it as a real process
 * (`deno run <COMPILE_FLAGS> main.ts service start --foreground --port 0`), create users,
 * log in through the real PKCE form flow over HTTP, and store the tokens where the
 * endpoint reads them.
 *
 * @example
 * ```ts
 * import { addUser, loginViaForm, startService, writeTokens } from "../helpers/service.ts";
 * const home = await Deno.makeTempDir();
 * const svc = await startService({ home });
 * await addUser(home, "alice", "pw");
 * const tokens = await loginViaForm(svc.authUrl, "alice", "pw");
 * await writeTokens(home, tokens);
 * // ... run an endpoint against svc.url ...
 * await svc.stop();
 * ```
 * @module
 */
import { join } from "node:path";
import { FUNCX_SCOPE, NATIVE_CLIENT_ID } from "../../src/config/types.ts";
import type { ServiceInfo } from "../../src/service/info.ts";
import { pkceChallenge } from "../../src/service/secrets.ts";
import { ServiceStore } from "../../src/service/store.ts";
import { spawnMain } from "./cli.ts";

/** Absolute path of `main.ts`. */

/** Options of {@linkcode startService}. */
export interface StartServiceOptions {
  /** funcX home of the service (its state goes to `home/service/`). */
  home: string;
  /** Always true: the helper runs `service start --foreground` as a child process. */
  foreground?: true;
  /** Seconds between forwarder heartbeats (default: the service default, 30). */
  heartbeatPeriod?: number;
  /** Access-token lifetime in seconds. */
  tokenLifetime?: number;
  /** HTTP port (default 0 = free ports for HTTP and the forwarder). */
  port?: number;
  /** First forwarder port (tasks; results +1, commands +2). */
  forwarderPort?: number;
  /** More `service start` arguments. */
  args?: string[];
  /** Give up waiting for `service.json` after this many ms (default 60 s). */
  timeoutMs?: number;
}

/** A running service started by {@linkcode startService}. */
export interface StartedService {
  /** Web service base URL, `http://127.0.0.1:PORT/v2`. */
  url: string;
  /** Auth server base URL, `http://127.0.0.1:PORT/auth`. */
  authUrl: string;
  /** Contents of `service.json`. */
  info: ServiceInfo;
  /** funcX home of the service. */
  home: string;
  /** Pid of the service process. */
  pid: number;
  /** SIGTERM and wait for a clean exit (SIGKILL after 20 s). Returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Whatever the process wrote to stderr so far (bounded). */
  stderr(): string;
}

/**
 * Start the service as a child process and wait until it has written `service.json`.
 *
 * @example
 * ```ts ignore
 * const svc = await startService({ home, heartbeatPeriod: 1 });
 * ```
 */
export async function startService(opts: StartServiceOptions): Promise<StartedService> {
  const args = ["service", "start", "--foreground", "--port", String(opts.port ?? 0)];
  if (opts.heartbeatPeriod !== undefined) {
    args.push("--heartbeat-period", String(opts.heartbeatPeriod));
  }
  if (opts.tokenLifetime !== undefined) args.push("--token-lifetime", String(opts.tokenLifetime));
  if (opts.forwarderPort !== undefined) args.push("--forwarder-port", String(opts.forwarderPort));
  args.push(...(opts.args ?? []));
  const infoFile = join(opts.home, "service", "service.json");
  await Deno.remove(infoFile).catch(() => {});
  const { child, stderr, drained } = spawnMain(opts.home, args, 200_000);
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exited = s));
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let info: ServiceInfo | undefined;
  while (!info) {
    try {
      const v = JSON.parse(await Deno.readTextFile(infoFile)) as ServiceInfo;
      if (v.pid === child.pid) info = v;
    } catch { /* not yet */ }
    if (info) break;
    if (exited) {
      await drained;
      throw new Error(
        `service exited with code ${exited.code} before listening: ${stderr().trim()}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await status;
      await drained;
      throw new Error(`service did not write service.json in time: ${stderr().trim()}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  const base = `${info.tls ? "https" : "http"}://127.0.0.1:${info.port}`;
  let stopped: Promise<number> | undefined;
  return {
    url: `${base}/v2`,
    authUrl: `${base}/auth`,
    info,
    home: opts.home,
    pid: child.pid,
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch { /* gone */ }
        }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 20_000);
        const s = await status;
        clearTimeout(timer);
        await drained;
        return s.code;
      })();
      return stopped;
    },
    async kill() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await status;
      await drained;
    },
    stderr,
  };
}

/**
 * Create a user in the service database of `home` (works while the service runs).
 *
 * @example
 * ```ts ignore
 * await addUser(home, "alice", "secret");
 * ```
 */
export function addUser(home: string, name: string, password: string): Promise<void> {
  const dir = join(home, "service");
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = ServiceStore.open(join(dir, "funcx.sqlite"));
  try {
    store.addUser(name, password);
  } finally {
    store.close();
  }
  return Promise.resolve();
}

/**
 * Register a confidential client (service account) in `home`'s service database.
 *
 * @example
 * ```ts ignore
 * const { clientId, clientSecret } = await addClient(home, "robot");
 * ```
 */
export function addClient(
  home: string,
  name: string,
): Promise<{ clientId: string; clientSecret: string }> {
  const dir = join(home, "service");
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = ServiceStore.open(join(dir, "funcx.sqlite"));
  try {
    const c = store.addClient(name);
    return Promise.resolve({ clientId: c.clientId, clientSecret: c.clientSecret });
  } finally {
    store.close();
  }
}

/** Tokens as returned by the token endpoint, plus `expires_at_seconds`. */
export interface Tokens {
  access_token: string;
  refresh_token?: string;
  token_type: string;
  expires_in: number;
  expires_at_seconds: number;
  scope: string;
  resource_server: string;
}

/** Options of {@linkcode loginViaForm}. */
export interface LoginOptions {
  /** Scopes to ask for (default: the funcX scope and openid). */
  scope?: string;
  /** Verifier sent to the token endpoint instead of the real one (to test refusal). */
  wrongVerifier?: string;
  /** HTTP client (e.g. trusting a test CA for an https service). */
  client?: Deno.HttpClient;
}

function _randomVerifier(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/**
 * Log in like a user with a browser: GET the authorize page, POST its form with the
 * credentials, follow the redirect to the paste-the-code page, read the code from
 * `<code id="auth-code">`, exchange it (PKCE S256) at the token endpoint.
 * Throws with the server's error description when a step fails.
 *
 * @example
 * ```ts ignore
 * const tokens = await loginViaForm(svc.authUrl, "alice", "secret");
 * ```
 */
export async function loginViaForm(
  authUrl: string,
  user: string,
  password: string,
  opts: LoginOptions = {},
): Promise<Tokens> {
  const verifier = _randomVerifier();
  const redirectUri = `${authUrl}/v2/web/auth-code`;
  const q = new URLSearchParams({
    client_id: NATIVE_CLIENT_ID,
    redirect_uri: redirectUri,
    scope: opts.scope ?? `${FUNCX_SCOPE} openid`,
    response_type: "code",
    code_challenge: pkceChallenge(verifier),
    code_challenge_method: "S256",
    state: "_default",
    access_type: "offline",
  });
  const authorize = `${authUrl}/v2/oauth2/authorize`;
  const page = await fetch(`${authorize}?${q}`, { client: opts.client });
  const pageHtml = await page.text();
  if (page.status !== 200) throw new Error(`authorize page: HTTP ${page.status}: ${pageHtml}`);
  const form = new URLSearchParams();
  for (const m of pageHtml.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form.set(m[1], _unescapeHtml(m[2]));
  }
  form.set("username", user);
  form.set("password", password);
  const action = /<form method="post" action="([^"]+)"/.exec(pageHtml)?.[1];
  if (!action) throw new Error("authorize page has no login form");
  // the login form's CSRF cookie goes back with the POST, as a browser would send it
  const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
  const posted = await fetch(new URL(action, `${authorize}?${q}`), {
    method: "POST",
    body: form,
    redirect: "manual",
    headers: cookie ? { cookie } : {},
    client: opts.client,
  });
  const postedText = await posted.text();
  const location = posted.headers.get("location");
  if (posted.status !== 303 || !location) {
    const err = /<p id="error"[^>]*>([^<]*)</.exec(postedText)?.[1] ?? postedText.slice(0, 200);
    throw new Error(`login refused: HTTP ${posted.status}: ${_unescapeHtml(err)}`);
  }
  const codePage = await fetch(location, { client: opts.client });
  const codeHtml = await codePage.text();
  const code = /<code id="auth-code">([^<]+)<\/code>/.exec(codeHtml)?.[1];
  if (!code) throw new Error(`auth-code page has no code: ${codeHtml.slice(0, 200)}`);
  const res = await fetch(`${authUrl}/v2/oauth2/token`, {
    client: opts.client,
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: _unescapeHtml(code),
      redirect_uri: redirectUri,
      client_id: NATIVE_CLIENT_ID,
      code_verifier: opts.wrongVerifier ?? verifier,
    }),
  });
  const body = await res.json();
  if (res.status !== 200) {
    throw new Error(
      `token exchange refused: HTTP ${res.status}: ${body.error}: ${body.error_description}`,
    );
  }
  return { ...body, expires_at_seconds: Math.floor(Date.now() / 1000) + body.expires_in } as Tokens;
}

function _unescapeHtml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(
    /&gt;/g,
    ">",
  ).replace(/&amp;/g, "&");
}

/**
 * Store tokens in `home/credentials/funcx_sdk_tokens.json` (DESIGN.md §4.1 shape, 0600).
 *
 * @example
 * ```ts ignore
 * await writeTokens(home, await loginViaForm(svc.authUrl, "alice", "pw"));
 * ```
 */
export async function writeTokens(home: string, tokens: Tokens): Promise<void> {
  const dir = join(home, "credentials");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
  const file = join(dir, "funcx_sdk_tokens.json");
  const data = {
    funcx_service: {
      scope: tokens.scope,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token ?? null,
      token_type: tokens.token_type,
      expires_at_seconds: tokens.expires_at_seconds,
      resource_server: "funcx_service",
    },
  };
  await Deno.writeTextFile(`${file}.tmp`, JSON.stringify(data, null, 2) + "\n", { mode: 0o600 });
  await Deno.rename(`${file}.tmp`, file);
}

/**
 * Point `home/config.yaml` at a started service (service_address, auth_address).
 *
 * @example
 * ```ts ignore
 * await writeGlobalConfig(home, svc);
 * ```
 */
export async function writeGlobalConfig(home: string, svc: StartedService): Promise<void> {
  await Deno.writeTextFile(
    join(home, "config.yaml"),
    `service_address: ${svc.url}\nauth_address: ${svc.authUrl}\nclient_id: ${NATIVE_CLIENT_ID}\n`,
    { mode: 0o600 },
  );
}

/**
 * The CSRF cookie and hidden-field token of the login form for `params` (what a browser
 * gets by loading the page), to POST the form by hand.
 *
 * @example
 * ```ts ignore
 * const { cookie, csrf_token } = await loginFormCsrf(authUrl, params);
 * ```
 */
export async function loginFormCsrf(
  authUrl: string,
  params: Record<string, string>,
): Promise<{ cookie: string; csrf_token: string }> {
  const page = await fetch(`${authUrl}/v2/oauth2/authorize?${new URLSearchParams(params)}`);
  const text = await page.text();
  const csrf_token = /name="csrf_token" value="([^"]*)"/.exec(text)?.[1];
  const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0];
  if (!csrf_token || !cookie) {
    throw new Error(`login form has no CSRF token: ${text.slice(0, 200)}`);
  }
  return { cookie, csrf_token };
}
