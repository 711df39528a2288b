/**
 * Identities and sharing state of the local service (SQLite, same database as
 * {@linkcode ServiceStore}): user emails, groups and their members (admin or member), the
 * group a function is shared with, and who may use an endpoint (public, allowed groups).
 *
 * Memberships are read from the database on every request, so removing a member takes
 * effect at that member's next request (nothing is cached).
 *
 * @example
 * ```ts
 * import { ServiceStore } from "./store.ts";
 * const store = ServiceStore.open(":memory:");
 * const alice = store.addUser("alice", "pw");
 * const g = store.sharing.addGroup("lab", alice.id);
 * store.sharing.groupIdsOf(alice.id).has(g.id); // true
 * ```
 * @module
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { StoreError } from "./store.ts";

/** A group. */
export interface GroupRow {
  /** Id (UUID, as a Globus group id). */
  id: string;
  /** Unique name. */
  name: string;
  /** Creation time, epoch seconds. */
  created_at: number;
}

/** A member's role in a group. */
export type GroupRole = "admin" | "member";

/** One member of a group. */
export interface GroupMember {
  /** Login name. */
  username: string;
  /** Email, when set. */
  email: string | null;
  /** Role in the group. */
  role: GroupRole;
}

/** Who may use an endpoint besides its owner. */
export interface EndpointSharing {
  /** Anyone with a funcX token. */
  public: boolean;
  /** Group ids whose members may use it. */
  groups: string[];
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS groups (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
  group_id TEXT NOT NULL,
  user_id INTEGER NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX IF NOT EXISTS group_members_user ON group_members(user_id);
CREATE TABLE IF NOT EXISTS function_groups (
  function_uuid TEXT PRIMARY KEY,
  group_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoint_sharing (
  endpoint_uuid TEXT PRIMARY KEY,
  public INTEGER NOT NULL DEFAULT 0,
  groups TEXT NOT NULL DEFAULT '[]'
);
`;

const _GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const _EMAIL = /^[^\s@<>()",;]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;
const _UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Check an email address (one line error naming what is valid).
 *
 * @example
 * ```ts
 * checkEmail("alice@example.org"); // "alice@example.org"
 * ```
 */
export function checkEmail(email: string): string {
  if (email.length > 254 || !_EMAIL.test(email)) {
    throw new StoreError(
      `email ${
        JSON.stringify(email.slice(0, 80))
      } is invalid: expected an address like name@example.org`,
    );
  }
  return email;
}

/**
 * Check a group name.
 *
 * @example
 * ```ts
 * checkGroupName("lab-1"); // "lab-1"
 * ```
 */
export function checkGroupName(name: string): string {
  if (!_GROUP_NAME.test(name) || _UUID.test(name)) {
    throw new StoreError(
      `group name ${
        JSON.stringify(name.slice(0, 80))
      } is invalid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (not a UUID)`,
    );
  }
  return name;
}

/** Sharing state; one instance per {@linkcode ServiceStore}. */
export class SharingStore {
  #db: DatabaseSync;

  /** Apply the schema (and the users.email column) to `db`. */
  constructor(db: DatabaseSync) {
    this.#db = db;
    db.exec(_SCHEMA);
    const cols = db.prepare("PRAGMA table_info(users)").all() as { name: string }[];
    if (!cols.some((c) => c.name === "email")) db.exec("ALTER TABLE users ADD COLUMN email TEXT");
  }

  #get<T>(sql: string, ...p: SQLInputValue[]): T | undefined {
    return this.#db.prepare(sql).get(...p) as T | undefined;
  }

  #all<T>(sql: string, ...p: SQLInputValue[]): T[] {
    return this.#db.prepare(sql).all(...p) as T[];
  }

  #run(sql: string, ...p: SQLInputValue[]): number {
    return Number(this.#db.prepare(sql).run(...p).changes);
  }

  // ---------------------------------------------------------------- identities

  /** Set (or clear, with null) a user's email. */
  setEmail(userId: number, email: string | null): void {
    this.#run("UPDATE users SET email = ? WHERE id = ?", email ? checkEmail(email) : null, userId);
  }

  /** Name and email of a user. */
  identity(userId: number): { id: number; username: string; email: string | null } | undefined {
    return this.#get("SELECT id, username, email FROM users WHERE id = ?", userId);
  }

  /** A user (or service-account client) by login name. */
  userByName(username: string): { id: number; username: string; email: string | null } | undefined {
    return this.#get("SELECT id, username, email FROM users WHERE username = ?", username);
  }

  // ---------------------------------------------------------------- groups

  /** Create a group, optionally with its first admin. Throws StoreError on a bad or taken name. */
  addGroup(name: string, adminUserId?: number): GroupRow {
    checkGroupName(name);
    if (this.#get("SELECT id FROM groups WHERE name = ?", name)) {
      throw new StoreError(`group "${name}" already exists`);
    }
    const row: GroupRow = { id: crypto.randomUUID(), name, created_at: Date.now() / 1000 };
    this.#run(
      "INSERT INTO groups (id, name, created_at) VALUES (?, ?, ?)",
      row.id,
      row.name,
      row.created_at,
    );
    if (adminUserId !== undefined) this.setMember(row.id, adminUserId, "admin");
    return row;
  }

  /** A group by id or by name. */
  findGroup(ref: string): GroupRow | undefined {
    if (_UUID.test(ref)) {
      return this.#get("SELECT id, name, created_at FROM groups WHERE id = ?", ref.toLowerCase());
    }
    return this.#get("SELECT id, name, created_at FROM groups WHERE name = ?", ref);
  }

  /** All groups with their member counts, by name. */
  listGroups(): (GroupRow & { members: number })[] {
    return this.#all(
      "SELECT g.id, g.name, g.created_at, COUNT(m.user_id) AS members FROM groups g LEFT JOIN group_members m ON m.group_id = g.id GROUP BY g.id ORDER BY g.name",
    );
  }

  /** Add a member or change their role. */
  setMember(groupId: string, userId: number, role: GroupRole): void {
    this.#run(
      "INSERT INTO group_members (group_id, user_id, role) VALUES (?, ?, ?) ON CONFLICT(group_id, user_id) DO UPDATE SET role = excluded.role",
      groupId,
      userId,
      role,
    );
  }

  /** Remove a member; returns whether they were one. */
  removeMember(groupId: string, userId: number): boolean {
    return this.#run(
      "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
      groupId,
      userId,
    ) > 0;
  }

  /** Members of a group, admins first. */
  members(groupId: string): GroupMember[] {
    return this.#all(
      "SELECT u.username, u.email, m.role FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY m.role, u.username",
      groupId,
    );
  }

  /** A user's role in a group, if a member. */
  role(groupId: string, userId: number): GroupRole | undefined {
    return this.#get<{ role: GroupRole }>(
      "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?",
      groupId,
      userId,
    )?.role;
  }

  /** The groups a user belongs to, with their role, by name. */
  userGroups(userId: number): { id: string; name: string; role: GroupRole }[] {
    return this.#all(
      "SELECT g.id, g.name, m.role FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name",
      userId,
    );
  }

  /** Ids of the groups a user belongs to (read now: no cache). */
  groupIdsOf(userId: number): Set<string> {
    return new Set(
      this.#all<{ group_id: string }>(
        "SELECT group_id FROM group_members WHERE user_id = ?",
        userId,
      ).map((r) => r.group_id),
    );
  }

  // ---------------------------------------------------------------- functions & endpoints

  /** Share a function with a group (null: with no group). */
  setFunctionGroup(functionUuid: string, groupId: string | null): void {
    if (groupId === null) {
      this.#run("DELETE FROM function_groups WHERE function_uuid = ?", functionUuid);
      return;
    }
    this.#run(
      "INSERT INTO function_groups (function_uuid, group_id) VALUES (?, ?) ON CONFLICT(function_uuid) DO UPDATE SET group_id = excluded.group_id",
      functionUuid,
      groupId,
    );
  }

  /** The group a function is shared with, if any. */
  functionGroup(functionUuid: string): string | null {
    return this.#get<{ group_id: string }>(
      "SELECT group_id FROM function_groups WHERE function_uuid = ?",
      functionUuid,
    )?.group_id ?? null;
  }

  /** Set who may use an endpoint (replaces the previous setting). */
  setEndpointSharing(endpointUuid: string, sharing: EndpointSharing): void {
    this.#run(
      "INSERT INTO endpoint_sharing (endpoint_uuid, public, groups) VALUES (?, ?, ?) ON CONFLICT(endpoint_uuid) DO UPDATE SET public = excluded.public, groups = excluded.groups",
      endpointUuid,
      sharing.public ? 1 : 0,
      JSON.stringify(sharing.groups),
    );
  }

  /** Who may use an endpoint (private when never set). */
  endpointSharing(endpointUuid: string): EndpointSharing {
    const row = this.#get<{ public: number; groups: string }>(
      "SELECT public, groups FROM endpoint_sharing WHERE endpoint_uuid = ?",
      endpointUuid,
    );
    if (!row) return { public: false, groups: [] };
    return { public: row.public === 1, groups: JSON.parse(row.groups) as string[] };
  }

  /** Forget a deleted endpoint's or function's sharing. */
  forget(uuid: string): void {
    this.#run("DELETE FROM endpoint_sharing WHERE endpoint_uuid = ?", uuid);
    this.#run("DELETE FROM function_groups WHERE function_uuid = ?", uuid);
  }
}
