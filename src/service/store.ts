/**
 * SQLite state of the local funcX service (`node:sqlite`, WAL): users, OAuth clients,
 * authorization codes, tokens (hashed), endpoints, functions, tasks and results.
 *
 * Hot paths (submitting a batch, storing results, marking deliveries) take lists and run
 * in one transaction each.
 *
 * @example
 * ```ts
 * import { ServiceStore } from "./store.ts";
 * const store = ServiceStore.open("/tmp/funcx.sqlite");
 * const user = store.addUser("alice", "secret");
 * store.checkPassword("alice", "secret")?.id === user.id; // true
 * store.close();
 * ```
 * @module
 */
import { LegacyEndpoints } from "./legacy.ts";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { hashPassword, newToken, sha256Hex, verifyPassword } from "./secrets.ts";
import { SharingStore } from "./groups.ts";
import { TaskLog } from "./task_log.ts";

/** A problem the caller should report as a one-line error (duplicate user, bad name…). */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

/** A user (or the identity of a service-account client). */
export interface UserRow {
  /** Row id. */
  id: number;
  /** Login name. */
  username: string;
  /** Human user or service-account client. */
  kind: "user" | "client";
}

/** An OAuth client registered with `service add-client` (confidential). */
export interface ClientRow {
  /** OAuth client id. */
  client_id: string;
  /** Display name. */
  name: string;
  /** SHA-256 (hex) of the secret. */
  secret_hash: string;
  /** Owner (users.id). */
  user_id: number;
}

/** What a token grants. */
export interface TokenInfo {
  /** Owner (users.id). */
  userId: number;
  /** Login name. */
  username: string;
  /** OAuth client the token was issued to. */
  clientId: string;
  /** Space-separated scopes. */
  scope: string;
  /** Expiry, epoch seconds. */
  expiresAt: number;
  /** Issue time, epoch seconds. */
  issuedAt: number;
}

/** An authorization code waiting to be exchanged. */
export interface AuthCodeRow {
  /** Owner (users.id). */
  user_id: number;
  /** OAuth client id. */
  client_id: string;
  /** Redirect URI of the authorize request. */
  redirect_uri: string;
  /** PKCE S256 challenge. */
  code_challenge: string;
  /** Space-separated scopes. */
  scope: string;
  /** Expiry, epoch seconds. */
  expires_at: number;
}

/** A registered endpoint. */
export interface EndpointRow {
  /** Id (UUID). */
  uuid: string;
  /** Owner (users.id). */
  user_id: number;
  /** Display name. */
  name: string;
  /** Reported version. */
  version: string;
  /** Registered CURVE public key (Z85). */
  pubkey: string;
  /** SHA-256 (hex) of the secret. */
  secret_hash: string;
  /** Caller address at registration. */
  ip: string;
  /** Last registration, epoch seconds. */
  registered_at: number;
  /** Last traffic seen, epoch seconds. */
  last_heartbeat: number | null;
}

/** A registered function. */
export interface FunctionRow {
  /** Id (UUID). */
  uuid: string;
  /** Owner (users.id). */
  user_id: number;
  /** Display name. */
  name: string;
  /** Packed serialized function (`pack_buffers([serialized])`). */
  code: string;
  /** Source text, if given. */
  source: string;
  /** Container id, or RAW/null. */
  container: string | null;
  /** Entry point name. */
  entry_point: string;
  /** Free text. */
  description: string;
  /** 1 when other users may run it. */
  public: number;
  /** Creation time, epoch seconds. */
  created_at: number;
}

/** Task states, as upstream's funcx_common `TaskState`. */
export type TaskStatus =
  | "waiting-for-ep"
  | "waiting-for-nodes"
  | "waiting-for-launch"
  | "running"
  | "success"
  | "failed";

/** Final states. */
export const FINAL_STATES: ReadonlySet<string> = new Set(["success", "failed"]);

/** A task row (payload omitted by the listing helpers). */
export interface TaskRow {
  /** Id (UUID). */
  uuid: string;
  /** Owner (users.id). */
  user_id: number;
  /** Function id. */
  function_uuid: string;
  /** Endpoint id. */
  endpoint_uuid: string;
  /** Task group id. */
  task_group_id: string;
  /** Container id, or RAW/null. */
  container: string;
  /** Task state. */
  status: TaskStatus;
  /** Serialized result, when it succeeded. */
  result: string | null;
  /** Serialized exception, when it failed. */
  exception: string | null;
  /** Creation time, epoch seconds. */
  created_at: number;
  /** Completion time, epoch seconds. */
  completion_t: number | null;
}

/** A new task for {@linkcode ServiceStore.insertTasks}. */
export interface NewTask {
  /** Id (UUID). */
  uuid: string;
  /** Owner (users.id). */
  userId: number;
  /** Function id. */
  functionUuid: string;
  /** Endpoint id. */
  endpointUuid: string;
  /** Task group id. */
  taskGroupId: string;
  /** Container id, or RAW/null. */
  container: string;
  /** Task body: function code + packed args/kwargs. */
  payload: string;
}

/** A result for {@linkcode ServiceStore.storeResults}. */
export interface NewResult {
  /** Task id. */
  taskId: string;
  /** Endpoint id. */
  endpointUuid: string;
  /** Serialized result, when it succeeded. */
  result?: string;
  /** Serialized exception, when it failed. */
  exception?: string;
  /** The worker's execution start/end (funcX 0.3.7+ `times`), epoch seconds. */
  times?: { start: number; end: number } | null;
}

/** Counts for the status page. */
export interface TaskCounts {
  /** Tasks waiting for their endpoint. */
  queued: number;
  /** Tasks delivered, not finished. */
  running: number;
  /** Finished tasks not yet fetched. */
  done: number;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT,
  kind TEXT NOT NULL DEFAULT 'user',
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_codes (
  code_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  scope TEXT NOT NULL,
  expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
  token_hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  user_id INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  issued_at REAL NOT NULL,
  expires_at REAL
);
CREATE TABLE IF NOT EXISTS endpoints (
  uuid TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  pubkey TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  ip TEXT NOT NULL DEFAULT '',
  registered_at REAL NOT NULL,
  last_heartbeat REAL
);
CREATE TABLE IF NOT EXISTS endpoint_status (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint_uuid TEXT NOT NULL,
  ts REAL NOT NULL,
  info TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS endpoint_status_ep ON endpoint_status(endpoint_uuid, id);
CREATE TABLE IF NOT EXISTS functions (
  uuid TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  code TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  container TEXT,
  entry_point TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  public INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
  uuid TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  function_uuid TEXT NOT NULL,
  endpoint_uuid TEXT NOT NULL,
  task_group_id TEXT NOT NULL,
  container TEXT NOT NULL,
  payload TEXT,
  status TEXT NOT NULL,
  result TEXT,
  exception TEXT,
  created_at REAL NOT NULL,
  completion_t REAL,
  retrieved_at REAL
);
CREATE INDEX IF NOT EXISTS tasks_ep_status ON tasks(endpoint_uuid, status);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks(created_at);
CREATE INDEX IF NOT EXISTS tasks_group ON tasks(task_group_id, user_id);
CREATE TABLE IF NOT EXISTS endpoint_restricted (
  endpoint_uuid TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS endpoint_allowed_functions (
  endpoint_uuid TEXT NOT NULL,
  function_uuid TEXT NOT NULL,
  PRIMARY KEY (endpoint_uuid, function_uuid)
);
`;

const _TASK_COLS =
  "uuid, user_id, function_uuid, endpoint_uuid, task_group_id, container, status, result, exception, created_at, completion_t";

/** Seconds a handed-out result stays readable (see {@linkcode ServiceStore.handedOut}). */
export const DEFAULT_RESULT_RETENTION_S = 600;

/** Options of {@linkcode ServiceStore.open}. */
export interface StoreOptions {
  /**
   * Seconds a result stays readable after it was first handed out (default
   * {@linkcode DEFAULT_RESULT_RETENTION_S}; 0 = delete at once, as upstream does).
   */
  resultRetentionS?: number;
  /** Epoch seconds for the retention (default: the wall clock). */
  clock?: () => number;
}

function _now(): number {
  return Date.now() / 1000;
}

/** The service database. One instance per service process. */
export class ServiceStore {
  #db: DatabaseSync;
  /** Prepared statements by SQL text: each is parsed once, not on every call. */
  #stmts = new Map<string, StatementSync>();
  /** Identities (email), groups and what is shared with whom (`groups.ts`). */
  readonly sharing: SharingStore;
  /** Unmodified 0.3 endpoints, trusted on first use (`legacy.ts`). */
  readonly legacy: LegacyEndpoints;
  /** Every task's timings and outcome, kept after the result is fetched (`task_log.ts`). */
  readonly taskLog: TaskLog;
  #lastPrune = 0;

  readonly #retentionS: number;
  readonly #clock: () => number;
  #purgedAt = 0;

  private constructor(db: DatabaseSync, retentionS: number, clock: () => number) {
    this.#db = db;
    this.#retentionS = retentionS;
    this.#clock = clock;
    this.sharing = new SharingStore(db);
    this.legacy = new LegacyEndpoints(db);
    this.taskLog = new TaskLog(db);
  }

  /**
   * Open (creating if needed) the database at `path`, WAL mode, schema applied.
   *
   * @example
   * ```ts
   * const store = ServiceStore.open(":memory:");
   * ```
   */
  static open(path: string, opts: StoreOptions = {}): ServiceStore {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout=5000");
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=NORMAL");
    db.exec(_SCHEMA);
    // databases made before results were kept after hand-out
    const cols = db.prepare("PRAGMA table_info(tasks)").all() as { name: string }[];
    if (!cols.some((c) => c.name === "retrieved_at")) {
      db.exec("ALTER TABLE tasks ADD COLUMN retrieved_at REAL");
    }
    db.exec("CREATE INDEX IF NOT EXISTS tasks_retrieved ON tasks(retrieved_at)");
    // password and token hashes: owner only (the -wal/-shm files too)
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      if (path === ":memory:") break;
      try {
        Deno.chmodSync(f, 0o600);
      } catch { /* not created yet */ }
    }
    return new ServiceStore(
      db,
      opts.resultRetentionS ?? DEFAULT_RESULT_RETENTION_S,
      opts.clock ?? _now,
    );
  }

  /** Close the database. */
  close(): void {
    try {
      this.#db.close();
    } catch { /* already closed */ }
  }

  /** Run `fn` in one transaction (rolled back on error). */
  transaction<T>(fn: () => T): T {
    this.#stmt("BEGIN IMMEDIATE").run();
    try {
      const out = fn();
      this.#stmt("COMMIT").run();
      return out;
    } catch (e) {
      // SQLite may have rolled back by itself (SQLITE_FULL, SQLITE_IOERR): keep the real error
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  /** The prepared statement of `sql` (prepared on first use, then reused). */
  #stmt(sql: string): StatementSync {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#stmts.set(sql, st);
    }
    return st;
  }

  #get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#stmt(sql).get(...params) as T | undefined;
  }

  #all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#stmt(sql).all(...params) as T[];
  }

  #run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#stmt(sql).run(...params).changes);
  }

  // ---------------------------------------------------------------- users & clients

  /**
   * Create a user with a scrypt password hash. Throws {@linkcode StoreError} when the
   * name is invalid or taken.
   */
  addUser(username: string, password: string): UserRow {
    if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(username)) {
      throw new StoreError(
        `user name "${username}" is invalid: use 1-64 letters, digits, '.', '_', '@' or '-'`,
      );
    }
    if (password.length < 1) throw new StoreError("password must not be empty");
    if (this.#get("SELECT id FROM users WHERE username = ?", username)) {
      throw new StoreError(`user "${username}" already exists`);
    }
    const hash = hashPassword(password);
    this.#run(
      "INSERT INTO users (username, password_hash, kind, created_at) VALUES (?, ?, 'user', ?)",
      username,
      hash,
      _now(),
    );
    return this.#get<UserRow>("SELECT id, username, kind FROM users WHERE username = ?", username)!;
  }

  /** The user if `password` is right, else `undefined`. */
  checkPassword(username: string, password: string): UserRow | undefined {
    const row = this.#get<UserRow & { password_hash: string | null }>(
      "SELECT id, username, kind, password_hash FROM users WHERE username = ? AND kind = 'user'",
      username,
    );
    if (!row || !row.password_hash) {
      // same cost as a real check, so timing does not reveal which users exist
      _dummyHash ??= hashPassword("not a real password");
      verifyPassword(password, _dummyHash);
      return undefined;
    }
    if (!verifyPassword(password, row.password_hash)) return undefined;
    return { id: row.id, username: row.username, kind: row.kind };
  }

  /**
   * A user and their password record (for checks off the API thread, see hasher.ts);
   * `undefined` when no such password user exists.
   */
  passwordRecord(username: string): { user: UserRow; record: string } | undefined {
    const row = this.#get<UserRow & { password_hash: string | null }>(
      "SELECT id, username, kind, password_hash FROM users WHERE username = ? AND kind = 'user'",
      username,
    );
    if (!row || !row.password_hash) return undefined;
    return {
      user: { id: row.id, username: row.username, kind: row.kind },
      record: row.password_hash,
    };
  }

  /** A user by id. */
  getUser(id: number): UserRow | undefined {
    return this.#get<UserRow>("SELECT id, username, kind FROM users WHERE id = ?", id);
  }

  /**
   * Register a confidential client (service account) named `name`; returns its id and
   * secret (shown once; only a hash is kept). Its tokens act as user `client:<name>`.
   */
  addClient(name: string): { clientId: string; clientSecret: string; userId: number } {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new StoreError(
        `client name "${name}" is invalid: use 1-64 letters, digits, '.', '_' or '-'`,
      );
    }
    if (this.#get("SELECT client_id FROM clients WHERE name = ?", name)) {
      throw new StoreError(`client "${name}" already exists`);
    }
    const clientId = crypto.randomUUID();
    const clientSecret = newToken("fxs");
    return this.transaction(() => {
      this.#run(
        "INSERT INTO users (username, password_hash, kind, created_at) VALUES (?, NULL, 'client', ?)",
        `client:${name}`,
        _now(),
      );
      const user = this.#get<{ id: number }>(
        "SELECT id FROM users WHERE username = ?",
        `client:${name}`,
      )!;
      this.#run(
        "INSERT INTO clients (client_id, name, secret_hash, user_id, created_at) VALUES (?, ?, ?, ?, ?)",
        clientId,
        name,
        sha256Hex(clientSecret),
        user.id,
        _now(),
      );
      return { clientId, clientSecret, userId: user.id };
    });
  }

  /** A confidential client by id. */
  getClient(clientId: string): ClientRow | undefined {
    return this.#get<ClientRow>(
      "SELECT client_id, name, secret_hash, user_id FROM clients WHERE client_id = ?",
      clientId,
    );
  }

  // ---------------------------------------------------------------- auth codes & tokens

  /** Store a new authorization code (hashed); returns the code. */
  createAuthCode(row: AuthCodeRow): string {
    const code = newToken("fxc");
    this.#run(
      "INSERT INTO auth_codes (code_hash, user_id, client_id, redirect_uri, code_challenge, scope, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      sha256Hex(code),
      row.user_id,
      row.client_id,
      row.redirect_uri,
      row.code_challenge,
      row.scope,
      row.expires_at,
    );
    return code;
  }

  /** Take (and delete: single use) an authorization code. */
  consumeAuthCode(code: string): AuthCodeRow | undefined {
    const hash = sha256Hex(code);
    return this.transaction(() => {
      const row = this.#get<AuthCodeRow>(
        "SELECT user_id, client_id, redirect_uri, code_challenge, scope, expires_at FROM auth_codes WHERE code_hash = ?",
        hash,
      );
      if (row) this.#run("DELETE FROM auth_codes WHERE code_hash = ?", hash);
      this.#run("DELETE FROM auth_codes WHERE expires_at < ?", _now());
      return row;
    });
  }

  /**
   * Issue an access token (and a refresh token when `refresh`); only hashes are kept.
   * `lifetime` is in seconds.
   */
  issueTokens(opts: {
    userId: number;
    clientId: string;
    scope: string;
    lifetime: number;
    refresh: boolean;
  }): { accessToken: string; refreshToken?: string; expiresAt: number } {
    const now = _now();
    const accessToken = newToken("fxa");
    const expiresAt = now + opts.lifetime;
    const refreshToken = opts.refresh ? newToken("fxr") : undefined;
    this.transaction(() => {
      const ins = this.#stmt(
        "INSERT INTO tokens (token_hash, kind, user_id, client_id, scope, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      );
      ins.run(
        sha256Hex(accessToken),
        "access",
        opts.userId,
        opts.clientId,
        opts.scope,
        now,
        expiresAt,
      );
      if (refreshToken) {
        ins.run(
          sha256Hex(refreshToken),
          "refresh",
          opts.userId,
          opts.clientId,
          opts.scope,
          now,
          null,
        );
      }
      this.#run("DELETE FROM tokens WHERE kind = 'access' AND expires_at < ?", now - 86400);
    });
    return { accessToken, refreshToken, expiresAt };
  }

  /** Look a token up (expired ones too; callers check `expiresAt`). */
  lookupToken(token: string, kind: "access" | "refresh"): TokenInfo | undefined {
    const row = this.#get<{
      user_id: number;
      username: string;
      client_id: string;
      scope: string;
      expires_at: number | null;
      issued_at: number;
    }>(
      "SELECT t.user_id, u.username, t.client_id, t.scope, t.expires_at, t.issued_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.kind = ?",
      sha256Hex(token),
      kind,
    );
    if (!row) return undefined;
    return {
      userId: row.user_id,
      username: row.username,
      clientId: row.client_id,
      scope: row.scope,
      expiresAt: row.expires_at ?? Number.POSITIVE_INFINITY,
      issuedAt: row.issued_at,
    };
  }

  /** Revoke a token. */
  revokeToken(token: string): boolean {
    return this.#run("DELETE FROM tokens WHERE token_hash = ?", sha256Hex(token)) > 0;
  }

  // ---------------------------------------------------------------- endpoints

  /** An endpoint by uuid. */
  getEndpoint(uuid: string): EndpointRow | undefined {
    return this.#get<EndpointRow>("SELECT * FROM endpoints WHERE uuid = ?", uuid);
  }

  /** Insert or update an endpoint registration. */
  upsertEndpoint(row: Omit<EndpointRow, "registered_at" | "last_heartbeat">): void {
    this.#run(
      `INSERT INTO endpoints (uuid, user_id, name, version, pubkey, secret_hash, ip, registered_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, version = excluded.version,
         pubkey = excluded.pubkey, secret_hash = excluded.secret_hash, ip = excluded.ip,
         registered_at = excluded.registered_at`,
      row.uuid,
      row.user_id,
      row.name,
      row.version,
      row.pubkey,
      row.secret_hash,
      row.ip,
      _now(),
    );
  }

  /** Delete an endpoint and its status log. */
  deleteEndpoint(uuid: string): void {
    this.transaction(() => {
      this.#run("DELETE FROM endpoints WHERE uuid = ?", uuid);
      this.#run("DELETE FROM endpoint_status WHERE endpoint_uuid = ?", uuid);
    });
  }

  /** All endpoints (optionally of one user), newest registration first. */
  listEndpoints(userId?: number): EndpointRow[] {
    if (userId === undefined) {
      return this.#all<EndpointRow>("SELECT * FROM endpoints ORDER BY registered_at DESC");
    }
    return this.#all<EndpointRow>(
      "SELECT * FROM endpoints WHERE user_id = ? ORDER BY registered_at DESC",
      userId,
    );
  }

  /** Record heartbeat times for several endpoints at once. */
  recordHeartbeats(times: Map<string, number>): void {
    if (times.size === 0) return;
    this.transaction(() => {
      const st = this.#stmt("UPDATE endpoints SET last_heartbeat = ? WHERE uuid = ?");
      for (const [uuid, ts] of times) st.run(ts, uuid);
    });
  }

  /** Append status reports (keeps the last hour, at least the newest 10, at most 2000, per endpoint). */
  addStatusReports(reports: { uuid: string; ts: number; info: unknown }[]): void {
    if (reports.length === 0) return;
    this.transaction(() => {
      const ins = this.#stmt(
        "INSERT INTO endpoint_status (endpoint_uuid, ts, info) VALUES (?, ?, ?)",
      );
      const seen = new Set<string>();
      for (const r of reports) {
        ins.run(r.uuid, r.ts, JSON.stringify(r.info));
        seen.add(r.uuid);
      }
      // the dashboard charts workers over the last hour
      const prune = this.#stmt(
        "DELETE FROM endpoint_status WHERE endpoint_uuid = ? AND id NOT IN (SELECT id FROM endpoint_status WHERE endpoint_uuid = ? ORDER BY id DESC LIMIT 10) AND (ts < ? OR id NOT IN (SELECT id FROM endpoint_status WHERE endpoint_uuid = ? ORDER BY id DESC LIMIT 2000))",
      );
      const hourAgo = _now() - 3600;
      for (const uuid of seen) prune.run(uuid, uuid, hourAgo, uuid);
    });
  }

  /** Status reports of an endpoint since `since` (epoch seconds), oldest first. */
  statusSince(uuid: string, since: number): { ts: number; info: unknown }[] {
    return this.#all<{ ts: number; info: string }>(
      "SELECT ts, info FROM endpoint_status WHERE endpoint_uuid = ? AND ts >= ? ORDER BY id",
      uuid,
      since,
    ).map((r) => ({ ts: r.ts, info: JSON.parse(r.info) }));
  }

  /** The newest `n` status reports of an endpoint, newest first. */
  statusLog(uuid: string, n = 10): { ts: number; info: unknown }[] {
    return this.#all<{ ts: number; info: string }>(
      "SELECT ts, info FROM endpoint_status WHERE endpoint_uuid = ? ORDER BY id DESC LIMIT ?",
      uuid,
      n,
    ).map((r) => ({ ts: r.ts, info: JSON.parse(r.info) }));
  }

  // ---------------------------------------------------------------- functions

  /** Store a new function. */
  createFunction(row: Omit<FunctionRow, "created_at">): void {
    this.#run(
      "INSERT INTO functions (uuid, user_id, name, code, source, container, entry_point, description, public, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      row.uuid,
      row.user_id,
      row.name,
      row.code,
      row.source,
      row.container,
      row.entry_point,
      row.description,
      row.public,
      _now(),
    );
  }

  /** A function by uuid. */
  getFunction(uuid: string): FunctionRow | undefined {
    return this.#get<FunctionRow>("SELECT * FROM functions WHERE uuid = ?", uuid);
  }

  /** Functions by uuid (for a submit batch). */
  getFunctions(uuids: string[]): Map<string, FunctionRow> {
    const out = new Map<string, FunctionRow>();
    const st = this.#stmt("SELECT * FROM functions WHERE uuid = ?");
    for (const u of new Set(uuids)) {
      const row = st.get(u) as FunctionRow | undefined;
      if (row) out.set(u, row);
    }
    return out;
  }

  /** Update the given fields of a function. */
  updateFunction(
    uuid: string,
    fields: Partial<Pick<FunctionRow, "name" | "code" | "source" | "description" | "public">>,
  ): void {
    const keys = Object.keys(fields) as (keyof typeof fields)[];
    if (keys.length === 0) return;
    const set = keys.map((k) => `${k} = ?`).join(", ");
    this.#run(
      `UPDATE functions SET ${set} WHERE uuid = ?`,
      ...keys.map((k) => fields[k] as SQLInputValue),
      uuid,
    );
  }

  /** Delete a function. */
  deleteFunction(uuid: string): void {
    this.#run("DELETE FROM functions WHERE uuid = ?", uuid);
  }

  // ---------------------------------------------------------------- tasks

  /**
   * Insert a batch of new tasks in one transaction: status `waiting-for-nodes` (delivered)
   * for tasks of the endpoints in `delivered` — the caller sends those right after this —
   * and `waiting-for-ep` for the rest.
   *
   * @example
   * ```ts ignore
   * store.insertTasks(rows, new Set([connectedEndpointUuid]));
   * ```
   */
  insertTasks(tasks: NewTask[], delivered: ReadonlySet<string> = new Set()): void {
    if (tasks.length === 0) return;
    const now = _now();
    this.transaction(() => {
      const st = this.#stmt(
        "INSERT INTO tasks (uuid, user_id, function_uuid, endpoint_uuid, task_group_id, container, payload, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      );
      for (const t of tasks) {
        st.run(
          t.uuid,
          t.userId,
          t.functionUuid,
          t.endpointUuid,
          t.taskGroupId,
          t.container,
          t.payload,
          delivered.has(t.endpointUuid) ? "waiting-for-nodes" : "waiting-for-ep",
          now,
        );
      }
      this.taskLog.inserted(tasks, delivered, now);
      if (now - this.#lastPrune > 600) {
        this.#lastPrune = now;
        this.taskLog.prune(now);
      }
    });
  }

  /** A task by uuid. */
  getTask(uuid: string): TaskRow | undefined {
    return this.#get<TaskRow>(`SELECT ${_TASK_COLS} FROM tasks WHERE uuid = ?`, uuid);
  }

  /** Tasks by uuid (missing ones are absent from the map). */
  getTasks(uuids: string[]): Map<string, TaskRow> {
    const out = new Map<string, TaskRow>();
    const st = this.#stmt(`SELECT ${_TASK_COLS} FROM tasks WHERE uuid = ?`);
    for (const u of new Set(uuids)) {
      const row = st.get(u) as TaskRow | undefined;
      if (row) out.set(u, row);
    }
    return out;
  }

  /**
   * The results of these final tasks were put into an answer to their owner. They stay
   * readable for the retention period ({@linkcode StoreOptions.resultRetentionS}) and are
   * deleted after it: the answer can be lost on its way (the service killed before it was
   * written, the connection reset, the client gave up waiting), and a client that asks again
   * must get the same result, not "unknown task". Retention 0 deletes them at once.
   *
   * @example
   * ```ts ignore
   * store.handedOut([taskId]);
   * ```
   */
  handedOut(uuids: string[]): void {
    if (this.#retentionS <= 0) return this.deleteTasks(uuids);
    const now = this.#clock();
    if (uuids.length > 0) {
      this.transaction(() => {
        const st = this.#stmt(
          "UPDATE tasks SET retrieved_at = ? WHERE uuid = ? AND retrieved_at IS NULL AND status IN ('success', 'failed')",
        );
        for (const u of uuids) st.run(now, u);
      });
    }
    // at most once a second: one indexed delete of what has been handed out long enough ago
    if (now - this.#purgedAt >= 1) {
      this.#purgedAt = now;
      this.#run(
        "DELETE FROM tasks WHERE retrieved_at IS NOT NULL AND retrieved_at < ?",
        now - this.#retentionS,
      );
    }
  }

  /** Delete tasks now (one transaction). */
  deleteTasks(uuids: string[]): void {
    if (uuids.length === 0) return;
    this.transaction(() => {
      const st = this.#stmt("DELETE FROM tasks WHERE uuid = ?");
      for (const u of uuids) st.run(u);
    });
  }

  /**
   * Unfinished tasks of an endpoint, oldest first, with their payloads; only the
   * never-delivered ones (`waiting-for-ep`) when `onlyQueued`.
   */
  pendingTasks(
    endpointUuid: string,
    onlyQueued = false,
  ): { uuid: string; container: string; payload: string | null; status: string }[] {
    if (onlyQueued) {
      return this.#all(
        "SELECT uuid, container, payload, status FROM tasks WHERE endpoint_uuid = ? AND status = 'waiting-for-ep' ORDER BY created_at, rowid",
        endpointUuid,
      );
    }
    return this.#all(
      "SELECT uuid, container, payload, status FROM tasks WHERE endpoint_uuid = ? AND status NOT IN ('success', 'failed') ORDER BY created_at, rowid",
      endpointUuid,
    );
  }

  /** Set `status` on unfinished tasks (one transaction). Final states are never changed. */
  updateStatuses(updates: Map<string, TaskStatus>): void {
    if (updates.size === 0) return;
    this.transaction(() => {
      const st = this.#stmt(
        "UPDATE tasks SET status = ? WHERE uuid = ? AND status NOT IN ('success', 'failed')",
      );
      const now = _now();
      for (const [uuid, status] of updates) {
        if (Number(st.run(status, uuid).changes) > 0) this.taskLog.statusChanged(uuid, status, now);
      }
    });
  }

  /**
   * Store results in one transaction. A result is stored only for an unfinished task of
   * the endpoint that sent it; returns the ids that were stored (the rest are duplicates
   * or unknown and must still be acked).
   */
  storeResults(results: NewResult[]): Set<string> {
    // A result for a task never delivered to its endpoint (still `waiting-for-ep`) is not
    // stored: only a connection that received the task can answer it (closes the window in
    // which a stranger on a dropped endpoint's uuid could answer its queued tasks).
    const stored = new Set<string>();
    if (results.length === 0) return stored;
    const now = _now();
    this.transaction(() => {
      const st = this.#stmt(
        "UPDATE tasks SET status = ?, result = ?, exception = ?, completion_t = ?, payload = NULL WHERE uuid = ? AND endpoint_uuid = ? AND status NOT IN ('success', 'failed', 'waiting-for-ep')",
      );
      for (const r of results) {
        const failed = r.exception !== undefined;
        const res = st.run(
          failed ? "failed" : "success",
          failed ? null : (r.result ?? null),
          failed ? r.exception! : null,
          now,
          r.taskId,
          r.endpointUuid,
        );
        if (Number(res.changes) > 0) {
          stored.add(r.taskId);
          this.taskLog.finished(r.taskId, r, now);
        }
      }
    });
    return stored;
  }

  /** Fail every unfinished task of an endpoint with the given exception (one transaction). */
  failPendingTasks(endpointUuid: string, exception: string): number {
    const now = _now();
    return this.transaction(() => {
      const n = this.#run(
        "UPDATE tasks SET status = 'failed', exception = ?, completion_t = ?, payload = NULL WHERE endpoint_uuid = ? AND status NOT IN ('success', 'failed')",
        exception,
        now,
        endpointUuid,
      );
      this.taskLog.failedAll(endpointUuid, exception, now);
      return n;
    });
  }

  /** Does the user own tasks of this task group? */
  ownsTaskGroup(userId: number, groupId: string): boolean {
    return !!this.#get(
      "SELECT 1 FROM tasks WHERE task_group_id = ? AND user_id = ? LIMIT 1",
      groupId,
      userId,
    );
  }

  /** Queued / running / done counts (all users, or one user's). */
  taskCounts(userId?: number): TaskCounts {
    const rows = userId === undefined
      ? this.#all<{ status: string; n: number }>(
        "SELECT status, COUNT(*) AS n FROM tasks GROUP BY status",
      )
      : this.#all<{ status: string; n: number }>(
        "SELECT status, COUNT(*) AS n FROM tasks WHERE user_id = ? GROUP BY status",
        userId,
      );
    const out: TaskCounts = { queued: 0, running: 0, done: 0 };
    for (const r of rows) {
      if (r.status === "waiting-for-ep") out.queued += r.n;
      else if (FINAL_STATES.has(r.status)) out.done += r.n;
      else out.running += r.n;
    }
    return out;
  }

  /** The newest `n` tasks (without results), of all users or of one. */
  recentTasks(n = 20, userId?: number): Omit<TaskRow, "result" | "exception">[] {
    const cols =
      "uuid, user_id, function_uuid, endpoint_uuid, task_group_id, container, status, created_at, completion_t";
    if (userId !== undefined) {
      return this.#all(
        `SELECT ${cols} FROM tasks WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
        userId,
        n,
      );
    }
    return this.#all(
      `SELECT ${cols} FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      n,
    );
  }

  // ---------------------------------------------------------------- allow-lists, task groups

  /**
   * The endpoint's allowed functions, or null when it is not restricted (any function the
   * user may use runs there).
   *
   * @example
   * ```ts ignore
   * store.allowedFunctions(endpointUuid); // null, or ["<function uuid>", ...]
   * ```
   */
  allowedFunctions(endpointUuid: string): string[] | null {
    if (!this.#get("SELECT 1 FROM endpoint_restricted WHERE endpoint_uuid = ?", endpointUuid)) {
      return null;
    }
    return this.#all<{ function_uuid: string }>(
      "SELECT function_uuid FROM endpoint_allowed_functions WHERE endpoint_uuid = ? ORDER BY rowid",
      endpointUuid,
    ).map((r) => r.function_uuid);
  }

  /**
   * Replace the allow-list (`null`: not restricted) or, with `add`, add to it (restricting
   * the endpoint). One transaction.
   */
  setAllowedFunctions(endpointUuid: string, functions: string[] | null, add = false): void {
    this.transaction(() => {
      if (!add) {
        this.#run("DELETE FROM endpoint_allowed_functions WHERE endpoint_uuid = ?", endpointUuid);
        this.#run("DELETE FROM endpoint_restricted WHERE endpoint_uuid = ?", endpointUuid);
      }
      if (functions === null) return;
      this.#run(
        "INSERT OR IGNORE INTO endpoint_restricted (endpoint_uuid) VALUES (?)",
        endpointUuid,
      );
      const st = this.#stmt(
        "INSERT OR IGNORE INTO endpoint_allowed_functions (endpoint_uuid, function_uuid) VALUES (?, ?)",
      );
      for (const f of functions) st.run(endpointUuid, f);
    });
  }

  /** Remove one function from the allow-list (the endpoint stays restricted); was it there? */
  removeAllowedFunction(endpointUuid: string, functionUuid: string): boolean {
    return this.#run(
      "DELETE FROM endpoint_allowed_functions WHERE endpoint_uuid = ? AND function_uuid = ?",
      endpointUuid,
      functionUuid,
    ) > 0;
  }

  /** The user's finished, not yet handed-out tasks of a task group, oldest first (results WebSocket). */
  finishedTasksInGroup(userId: number, groupId: string): TaskRow[] {
    return this.#all<TaskRow>(
      `SELECT ${_TASK_COLS} FROM tasks WHERE task_group_id = ? AND user_id = ? AND status IN ('success', 'failed') AND retrieved_at IS NULL ORDER BY completion_t, rowid`,
      groupId,
      userId,
    );
  }
}

let _dummyHash: string | undefined;
