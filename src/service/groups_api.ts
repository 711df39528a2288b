/**
 * Groups over the HTTP API (below `/v2`) and the sharing fields of the function and endpoint
 * requests.
 *
 * - `GET /groups`: the caller's groups and roles.
 * - `GET /groups/<id or name>`: a group and its members (any member may read).
 * - `POST /groups/<id>/members` `{"username", "role": "admin"|"member"}`: add a member or
 *   change a role (group admins only).
 * - `DELETE /groups/<id>/members/<username>`: remove a member (group admins only).
 *
 * All of them need a token carrying the groups scope ({@linkcode GROUPS_SCOPE}) besides the
 * funcX scope: a token without it cannot read memberships.
 *
 * @example
 * ```ts ignore
 * import { GroupsApi } from "./groups_api.ts";
 * new GroupsApi(store.sharing, (req) => auth.authenticate(req)).mount(router);
 * ```
 * @module
 */
import { GROUPS_SCOPE } from "../config/types.ts";
import { ApiError, ErrorCode } from "./errors.ts";
import { json, readJsonObject, type Router } from "./http.ts";
import type { EndpointSharing, GroupRole, GroupRow, SharingStore } from "./groups.ts";
import type { TokenInfo } from "./store.ts";

const _MAX_ALLOWED_GROUPS = 64;

/** Something that records a change (the audit log when there is one). */
export type ChangeRecorder = (
  user: string,
  action: string,
  detail: Record<string, unknown>,
) => void;

/**
 * The group a request names (a UUID or a name): `AuthGroupNotFound` (404) when unknown.
 *
 * @example
 * ```ts ignore
 * resolveGroup(store.sharing, "lab", "group").name; // "lab"
 * ```
 */
export function resolveGroup(sharing: SharingStore, ref: unknown, field: string): GroupRow {
  if (typeof ref !== "string" || ref === "" || ref.length > 100) {
    throw new ApiError(
      ErrorCode.RequestMalformed,
      `${field} must be a group id (UUID) or group name, got ${
        JSON.stringify(ref)?.slice(0, 80) ?? "undefined"
      }`,
      [field],
    );
  }
  const g = sharing.findGroup(ref);
  if (!g) {
    throw new ApiError(ErrorCode.AuthGroupNotFound, `Group ${JSON.stringify(ref)} not found`, [
      ref,
    ]);
  }
  return g;
}

/**
 * `public` and `group` of a function registration or update (upstream
 * `register_function(..., public=, group=)`): `public` a boolean, `group` a group id/name or
 * null. Absent fields are `undefined`.
 *
 * @example
 * ```ts ignore
 * parseFunctionSharing({ public: false, group: null }, store.sharing); // {public: false, groupId: null}
 * ```
 */
export function parseFunctionSharing(
  body: Record<string, unknown>,
  sharing: SharingStore,
): { public?: boolean; groupId?: string | null } {
  const out: { public?: boolean; groupId?: string | null } = {};
  if (body.public !== undefined && body.public !== null) {
    if (typeof body.public !== "boolean") {
      throw new ApiError(ErrorCode.RequestMalformed, "public must be true or false", ["public"]);
    }
    out.public = body.public;
  }
  if (body.group !== undefined) {
    out.groupId = body.group === null ? null : resolveGroup(sharing, body.group, "group").id;
  }
  return out;
}

/**
 * `public` and `allowed_groups` of an endpoint registration (from the endpoint's
 * config.yaml). Absent means private to the owner: every registration states the whole
 * sharing, so a restart with the keys removed un-shares the endpoint.
 *
 * @example
 * ```ts ignore
 * parseEndpointSharing({ public: false, allowed_groups: ["lab"] }, store.sharing);
 * ```
 */
export function parseEndpointSharing(
  body: Record<string, unknown>,
  sharing: SharingStore,
): EndpointSharing {
  let pub = false;
  if (body.public !== undefined && body.public !== null) {
    if (typeof body.public !== "boolean") {
      throw new ApiError(ErrorCode.RequestMalformed, "public must be true or false", ["public"]);
    }
    pub = body.public;
  }
  const groups: string[] = [];
  const raw = body.allowed_groups;
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw) || raw.length > _MAX_ALLOWED_GROUPS) {
      throw new ApiError(
        ErrorCode.RequestMalformed,
        `allowed_groups must be a list of at most ${_MAX_ALLOWED_GROUPS} group ids or names`,
        ["allowed_groups"],
      );
    }
    raw.forEach((ref, i) => {
      const g = resolveGroup(sharing, ref, `allowed_groups[${i}]`);
      if (!groups.includes(g.id)) groups.push(g.id);
    });
  }
  return { public: pub, groups };
}

/** The group HTTP routes. */
export class GroupsApi {
  #sharing: SharingStore;
  #auth: (req: Request) => TokenInfo;
  #record: ChangeRecorder;

  /**
   * @param sharing the sharing store
   * @param authenticate checks the bearer token (funcX scope), throws 401 otherwise
   * @param record called for every membership change
   */
  constructor(
    sharing: SharingStore,
    authenticate: (req: Request) => TokenInfo,
    record: ChangeRecorder = () => {},
  ) {
    this.#sharing = sharing;
    this.#auth = authenticate;
    this.#record = record;
  }

  /**
   * Add the routes to `router`.
   *
   * @example
   * ```ts ignore
   * groupsApi.mount(router);
   * ```
   */
  mount(router: Router): void {
    router.add("GET", "/groups", (req) => this.#mine(req));
    router.add("GET", "/groups/:id", (req, [id]) => this.#show(req, id));
    router.add("POST", "/groups/:id/members", (req, [id]) => this.#addMember(req, id));
    router.add(
      "DELETE",
      "/groups/:id/members/:user",
      (req, [id, user]) => this.#removeMember(req, id, user),
    );
  }

  #user(req: Request): TokenInfo {
    const info = this.#auth(req);
    if (!info.scope.split(" ").includes(GROUPS_SCOPE)) {
      throw new ApiError(
        ErrorCode.UserUnauthenticated,
        `Token lacks the groups scope ${GROUPS_SCOPE}; log in again (funcx-endpoint login --force)`,
        [],
        403,
      );
    }
    return info;
  }

  #mine(req: Request): Response {
    const user = this.#user(req);
    return json({ groups: this.#sharing.userGroups(user.userId) });
  }

  /** The group, if the user is a member (404 otherwise: non-members cannot probe names). */
  #memberOf(user: TokenInfo, ref: string): { group: GroupRow; role: GroupRole } {
    const g = this.#sharing.findGroup(ref);
    const role = g ? this.#sharing.role(g.id, user.userId) : undefined;
    if (!g || !role) {
      throw new ApiError(ErrorCode.AuthGroupNotFound, `Group ${JSON.stringify(ref)} not found`, [
        ref,
      ]);
    }
    return { group: g, role };
  }

  #adminOf(user: TokenInfo, ref: string): GroupRow {
    const { group, role } = this.#memberOf(user, ref);
    if (role !== "admin") {
      throw new ApiError(
        ErrorCode.TaskGroupAccessForbidden,
        `Only an admin of group ${group.name} may change its members`,
        [group.id],
        403,
      );
    }
    return group;
  }

  #show(req: Request, ref: string): Response {
    const user = this.#user(req);
    const { group, role } = this.#memberOf(user, ref);
    return json({
      id: group.id,
      name: group.name,
      my_role: role,
      members: this.#sharing.members(group.id),
    });
  }

  async #addMember(req: Request, ref: string): Promise<Response> {
    const user = this.#user(req);
    const group = this.#adminOf(user, ref);
    const body = await readJsonObject(req);
    const name = body.username;
    if (typeof name !== "string" || name === "" || name.length > 128) {
      throw new ApiError(
        ErrorCode.RequestKeyError,
        "username is required: the login name of the user to add",
        ["username"],
      );
    }
    const role = body.role ?? "member";
    if (role !== "admin" && role !== "member") {
      throw new ApiError(
        ErrorCode.RequestMalformed,
        `role must be "admin" or "member", got ${JSON.stringify(role)?.slice(0, 40)}`,
        ["role"],
      );
    }
    const member = this.#sharing.userByName(name);
    if (!member) {
      throw new ApiError(ErrorCode.UserNotFound, `User ${JSON.stringify(name)} not found`, [name]);
    }
    this.#sharing.setMember(group.id, member.id, role);
    this.#record(user.username, "group.add-member", { group: group.name, user: name, role });
    return json({ group: group.name, username: name, role });
  }

  #removeMember(req: Request, ref: string, name: string): Response {
    const user = this.#user(req);
    const group = this.#adminOf(user, ref);
    const member = this.#sharing.userByName(name);
    if (!member || !this.#sharing.removeMember(group.id, member.id)) {
      throw new ApiError(
        ErrorCode.UserNotFound,
        `User ${JSON.stringify(name)} is not a member of group ${group.name}`,
        [name],
      );
    }
    this.#record(user.username, "group.remove-member", { group: group.name, user: name });
    return json({ group: group.name, username: name, removed: true });
  }
}
