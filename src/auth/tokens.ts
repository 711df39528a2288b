/**
 * The token file `$FUNCX_HOME/credentials/funcx_sdk_tokens.json` (upstream shape).
 *
 * The file is written atomically (temporary file + rename) with mode 0600 in a 0700
 * directory. Token values are never logged or put in error messages.
 *
 * @example
 * ```ts
 * import { TokenStore } from "./tokens.ts";
 * const store = new TokenStore("/home/u/.funcx");
 * const rec = store.get("funcx_service"); // TokenRecord | undefined
 * ```
 * @module
 */
import { dirname } from "node:path";
import { homePaths } from "../config/paths.ts";

/** One resource server's tokens, as upstream stores them. */
export interface TokenRecord {
  scope: string;
  access_token: string;
  refresh_token: string | null;
  token_type: string;
  /** Unix seconds when `access_token` expires. */
  expires_at_seconds: number;
  resource_server: string;
}

/** All stored tokens, keyed by resource server (`funcx_service`, ...). */
export type TokenFile = Record<string, TokenRecord>;

/** The resource server key of the funcX service tokens. */
export const FUNCX_RESOURCE_SERVER = "funcx_service";

/**
 * The token file exists but cannot be used (bad JSON, wrong shape); never names a token.
 *
 * @example
 * ```ts
 * const e = new TokenFileError("/h/credentials/funcx_sdk_tokens.json", "not valid JSON");
 * e.message; // "/h/credentials/funcx_sdk_tokens.json: not valid JSON; run `funcx-endpoint login` ..."
 * ```
 */
export class TokenFileError extends Error {
  /** @param file the token file, @param problem what is wrong with it */
  constructor(readonly file: string, problem: string) {
    super(
      `${file}: ${problem}; run \`funcx-endpoint logout\` then \`funcx-endpoint login\` to replace it`,
    );
    this.name = "TokenFileError";
  }
}

function _checkRecord(file: string, key: string, v: unknown): TokenRecord {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TokenFileError(file, `${key}: not an object`);
  }
  const r = v as Record<string, unknown>;
  if (typeof r.access_token !== "string" || r.access_token === "") {
    throw new TokenFileError(file, `${key}.access_token: missing; expected a string`);
  }
  if (
    r.refresh_token !== undefined && r.refresh_token !== null && typeof r.refresh_token !== "string"
  ) {
    throw new TokenFileError(file, `${key}.refresh_token: expected a string or null`);
  }
  if (typeof r.expires_at_seconds !== "number" || !Number.isFinite(r.expires_at_seconds)) {
    throw new TokenFileError(file, `${key}.expires_at_seconds: expected a number of seconds`);
  }
  return {
    scope: typeof r.scope === "string" ? r.scope : "",
    access_token: r.access_token,
    refresh_token: typeof r.refresh_token === "string" ? r.refresh_token : null,
    token_type: typeof r.token_type === "string" ? r.token_type : "Bearer",
    expires_at_seconds: r.expires_at_seconds,
    resource_server: typeof r.resource_server === "string" ? r.resource_server : key,
  };
}

/**
 * Parse the text of a token file; throws {@linkcode TokenFileError} on bad content.
 *
 * @example
 * ```ts
 * parseTokenFile('{"funcx_service":{"access_token":"a","expires_at_seconds":1}}', "f.json");
 * ```
 */
export function parseTokenFile(text: string, file: string): TokenFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new TokenFileError(file, "not valid JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new TokenFileError(file, "expected a JSON object keyed by resource server");
  }
  const out: TokenFile = {};
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    out[k] = _checkRecord(file, k, v);
  }
  return out;
}

/**
 * Reads and writes the token file of a funcX home.
 *
 * @example
 * ```ts
 * const store = new TokenStore("/tmp/h");
 * store.set({ scope: "s", access_token: "a", refresh_token: "r", token_type: "Bearer",
 *   expires_at_seconds: 0, resource_server: "funcx_service" });
 * store.get()?.refresh_token; // "r"
 * ```
 */
export class TokenStore {
  /** Absolute path of the token file. */
  readonly path: string;

  /** @param home the funcX home */
  constructor(readonly home: string) {
    this.path = homePaths(home).tokens;
  }

  /** All tokens, or `undefined` when there is no token file. */
  readAll(): TokenFile | undefined {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw new TokenFileError(this.path, `cannot be read (${(e as Error).name})`);
    }
    return parseTokenFile(text, this.path);
  }

  /** One resource server's record (default `funcx_service`). */
  get(resourceServer = FUNCX_RESOURCE_SERVER): TokenRecord | undefined {
    return this.readAll()?.[resourceServer];
  }

  /** Replace the whole file atomically (0600; the directory is made 0700). */
  writeAll(tokens: TokenFile): void {
    const dir = dirname(this.path);
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700);
    const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
    try {
      Deno.writeTextFileSync(tmp, JSON.stringify(tokens, null, 2) + "\n", {
        mode: 0o600,
        createNew: true,
      });
      Deno.chmodSync(tmp, 0o600);
      Deno.renameSync(tmp, this.path);
    } catch (e) {
      try {
        Deno.removeSync(tmp);
      } catch { /* not created */ }
      throw new Error(`cannot write ${this.path}: ${(e as Error).message}`);
    }
  }

  /** Store one record under its `resource_server`, keeping the others. */
  set(record: TokenRecord): void {
    let all: TokenFile = {};
    try {
      all = this.readAll() ?? {};
    } catch (e) {
      if (!(e instanceof TokenFileError)) throw e;
      // a corrupt file is replaced by the fresh tokens
    }
    all[record.resource_server] = record;
    this.writeAll(all);
  }

  /** Delete the token file; returns whether it existed. */
  clear(): boolean {
    try {
      Deno.removeSync(this.path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }
}
