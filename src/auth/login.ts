/**
 * The native-app login, plus logout and whoami. Where the auth server offers it (the local
 * service does), the device authorization grant: a URL and a short code to approve from any
 * browser that reaches the server, or approved here with the user's password (`device.ts`).
 * Otherwise the PKCE S256 authorization code flow: the user opens the printed URL anywhere
 * and pastes the code back.
 *
 * @example
 * ```ts
 * import { login } from "./login.ts";
 * import { DEFAULT_GLOBAL_CONFIG } from "../config/types.ts";
 * await login({ home: "/home/u/.funcx", global: DEFAULT_GLOBAL_CONFIG });
 * ```
 * @module
 */
import type { GlobalConfig } from "../config/types.ts";
import { getAccessToken, type IdentitySource, identitySource } from "./access.ts";
import { approveDevice, pollDevice, startDevice } from "./device.ts";
import {
  AuthError,
  authorizeUrl,
  createPkce,
  funcxRecord,
  LOGIN_SCOPES,
  type Pkce,
  redirectUri,
  revokeToken,
  tokenRequest,
  userinfo,
} from "./oauth.ts";
import { type TokenRecord, TokenStore } from "./tokens.ts";

/** A started login: the URL to open and the verifier to finish it with. */
export interface LoginFlow {
  url: string;
  pkce: Pkce;
}

/**
 * Start the flow: a fresh PKCE pair and the authorization URL.
 *
 * @example
 * ```ts ignore
 * const flow = await startLogin(global);
 * console.log(flow.url);
 * ```
 */
export async function startLogin(global: GlobalConfig): Promise<LoginFlow> {
  const pkce = await createPkce();
  const url = authorizeUrl({
    authAddress: global.auth_address,
    clientId: global.client_id,
    scopes: LOGIN_SCOPES,
    challenge: pkce.challenge,
  });
  return { url, pkce };
}

/**
 * Finish the flow: exchange the pasted code, store the tokens (0600), return the record.
 *
 * @example
 * ```ts ignore
 * const rec = await finishLogin(home, global, flow, "the-pasted-code");
 * ```
 */
export async function finishLogin(
  home: string,
  global: GlobalConfig,
  flow: LoginFlow,
  code: string,
): Promise<TokenRecord> {
  const trimmed = code.trim();
  if (!trimmed) throw new AuthError("no authorization code was entered");
  const reply = await tokenRequest(global.auth_address, {
    kind: "public",
    clientId: global.client_id,
  }, {
    grant_type: "authorization_code",
    code: trimmed,
    redirect_uri: redirectUri(global.auth_address),
    code_verifier: flow.pkce.verifier,
  });
  const rec = funcxRecord(reply);
  new TokenStore(home).set(rec);
  return rec;
}

/** Read one line from a byte stream (stdin by default). `null` at end of input. */
export async function readLine(
  stream: ReadableStream<Uint8Array> = Deno.stdin.readable,
): Promise<string | null> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return buf.length ? buf : null;
      buf += dec.decode(value, { stream: true });
      const nl = buf.indexOf("\n");
      if (nl >= 0) return buf.slice(0, nl).replace(/\r$/, "");
    }
  } finally {
    reader.releaseLock();
  }
}

/** Options of {@linkcode login}. */
export interface LoginOptions {
  home: string;
  global: GlobalConfig;
  /** Log in again even when valid tokens are stored. */
  force?: boolean;
  /** Where prompts go (default stdout). */
  write?: (text: string) => void;
  /** Reads the pasted code (default: one line of stdin). */
  readCode?: () => Promise<string | null>;
  /** Approve the device login here as this user, with the password this returns. */
  approveAs?: { username: string; password: () => Promise<string> };
  /** Called while waiting for the approval, with the seconds left (progress). */
  onWait?: (secondsLeft: number) => void;
  /** Device-login polling (tests): the sleep between polls. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Interactive login. Returns `"already"` when usable tokens exist and `force` is not set.
 *
 * @example
 * ```ts ignore
 * const r = await login({ home, global }); // prints the URL, reads the code
 * ```
 */
export async function login(opts: LoginOptions): Promise<"logged-in" | "already"> {
  const write = opts.write ?? ((t: string) => Deno.stdout.writeSync(new TextEncoder().encode(t)));
  if (!opts.force) {
    try {
      if (new TokenStore(opts.home).get()) {
        await getAccessToken(opts.home, opts.global);
        return "already";
      }
    } catch { /* fall through to a fresh login */ }
  }
  const device = await startDevice(opts.global);
  if (device) {
    if (opts.approveAs) {
      await approveDevice(device, opts.approveAs.username, await opts.approveAs.password());
    } else {
      const minutes = Math.round(device.expiresIn / 60);
      write(
        `To log in, open this URL in a browser that reaches the funcX service:\n` +
          `  ${device.verificationUriComplete}\n` +
          `and approve the code ${device.userCode} (valid for ${minutes} minutes).\n` +
          `Without a browser: funcx-endpoint login --user NAME (asks for the password here).\n`,
      );
    }
    const reply = await pollDevice(opts.global, device, { onWait: opts.onWait, sleep: opts.sleep });
    new TokenStore(opts.home).set(funcxRecord(reply));
    return "logged-in";
  }
  if (opts.approveAs) {
    throw new AuthError(
      `${opts.global.auth_address} has no device login: run login without --user and open the URL`,
    );
  }
  const flow = await startLogin(opts.global);
  write(`Please paste the following URL in a browser:\n${flow.url}\n`);
  write("Please paste the authorization code: ");
  const code = await (opts.readCode ?? (() => readLine()))();
  if (code === null) throw new AuthError("login aborted: no authorization code on standard input");
  await finishLogin(opts.home, opts.global, flow, code);
  return "logged-in";
}

/**
 * Revoke the stored tokens when the server allows it and delete the token file.
 * Returns what happened, for the command's message.
 *
 * @example
 * ```ts ignore
 * const r = await logout(home, global); // { hadTokens: true, revoked: 2 }
 * ```
 */
export async function logout(
  home: string,
  global: GlobalConfig,
): Promise<{ hadTokens: boolean; revoked: number; revokeErrors: string[] }> {
  const store = new TokenStore(home);
  let records: TokenRecord[] = [];
  try {
    records = Object.values(store.readAll() ?? {});
  } catch { /* corrupt: just delete */ }
  let revoked = 0;
  const revokeErrors: string[] = [];
  const client = { kind: "public" as const, clientId: global.client_id };
  for (const r of records) {
    for (const t of [r.access_token, r.refresh_token]) {
      if (!t) continue;
      try {
        if (await revokeToken(global.auth_address, client, t)) revoked++;
      } catch (e) {
        revokeErrors.push((e as Error).message);
      }
    }
  }
  const existed = store.clear();
  return { hadTokens: existed, revoked, revokeErrors: [...new Set(revokeErrors)] };
}

/**
 * The userinfo of the logged-in identity (`sub`, `preferred_username`, ...).
 *
 * @example
 * ```ts ignore
 * (await whoami(home, global)).preferred_username; // "alice"
 * ```
 */
export async function whoami(
  home: string,
  global: GlobalConfig,
): Promise<Record<string, unknown>> {
  const token = await getAccessToken(home, global);
  try {
    return await userinfo(global.auth_address, token);
  } catch (e) {
    if (e instanceof AuthError && e.status === 401) {
      return await userinfo(
        global.auth_address,
        await getAccessToken(home, global, { force: true }),
      );
    }
    throw e;
  }
}

/** The identity behind the credentials, its groups and where it comes from. */
export interface IdentityReport {
  /** The userinfo reply (`preferred_username`, `email`, `sub`, `scope`). */
  info: Record<string, unknown>;
  /** The user's groups, or null when they cannot be read (see `groupsError`). */
  groups: { id: string; name: string; role: string }[] | null;
  /** Why the groups could not be read. */
  groupsError?: string;
  /** Environment client credentials or the stored login. */
  source: IdentitySource;
}

/**
 * {@linkcode whoami} plus the identity's groups (`GET {service_address}/groups`, which needs
 * the groups scope) and where the identity comes from.
 *
 * @example
 * ```ts ignore
 * const r = await identityReport(home, global);
 * r.source.kind; // "login" or "environment"
 * ```
 */
export async function identityReport(home: string, global: GlobalConfig): Promise<IdentityReport> {
  const info = await whoami(home, global);
  const source = identitySource(home);
  const token = await getAccessToken(home, global);
  try {
    const res = await fetch(`${global.service_address.replace(/\/+$/, "")}/groups`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });
    const body = await res.json().catch(() => null);
    if (res.ok && Array.isArray(body?.groups)) return { info, groups: body.groups, source };
    const why = typeof body?.reason === "string" ? body.reason : `HTTP ${res.status}`;
    return { info, groups: null, groupsError: why, source };
  } catch (e) {
    return { info, groups: null, groupsError: (e as Error).message, source };
  }
}
