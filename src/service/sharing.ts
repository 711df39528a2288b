/**
 * Who may run a function and who may use an endpoint (pure decisions on data):
 *
 * - a function: its owner, anyone when it is public, members of the group it is shared with;
 * - an endpoint: its owner, anyone when it is public, members of one of its allowed groups.
 *
 * The caller passes the requesting user's group ids as read from the database for this
 * request (never taken from the client).
 *
 * @example
 * ```ts
 * import { mayRunFunction, mayUseEndpoint } from "./sharing.ts";
 * mayRunFunction({ ownerId: 1, public: false, groupId: "g" }, 2, new Set(["g"])); // true
 * mayUseEndpoint({ ownerId: 1, public: false, groups: ["h"] }, 2, new Set(["g"])); // false
 * ```
 * @module
 */

/** What decides access to a function. */
export interface FunctionAccess {
  /** Owner (users.id). */
  ownerId: number;
  /** Anyone may run it. */
  public: boolean;
  /** Group it is shared with. */
  groupId: string | null;
}

/** What decides access to an endpoint. */
export interface EndpointAccess {
  /** Owner (users.id). */
  ownerId: number;
  /** Anyone may use it. */
  public: boolean;
  /** Groups whose members may use it. */
  groups: readonly string[];
}

/**
 * May `userId` (member of `userGroups`) run the function?
 *
 * @example
 * ```ts
 * mayRunFunction({ ownerId: 1, public: true, groupId: null }, 9, new Set()); // true
 * ```
 */
export function mayRunFunction(
  fn: FunctionAccess,
  userId: number,
  userGroups: ReadonlySet<string>,
): boolean {
  return fn.ownerId === userId || fn.public || (fn.groupId !== null && userGroups.has(fn.groupId));
}

/**
 * May `userId` (member of `userGroups`) submit tasks to the endpoint?
 *
 * @example
 * ```ts
 * mayUseEndpoint({ ownerId: 1, public: false, groups: ["g"] }, 2, new Set(["g"])); // true
 * ```
 */
export function mayUseEndpoint(
  ep: EndpointAccess,
  userId: number,
  userGroups: ReadonlySet<string>,
): boolean {
  return ep.ownerId === userId || ep.public || ep.groups.some((g) => userGroups.has(g));
}

/**
 * One line saying who may use an endpoint, for `status` and the status page.
 *
 * @example
 * ```ts
 * describeSharing("alice", { public: false, groups: ["lab"] }); // "alice and members of lab"
 * ```
 */
export function describeSharing(
  owner: string,
  sharing: { public: boolean; groups: readonly string[] },
): string {
  if (sharing.public) return "anyone (public)";
  if (sharing.groups.length === 0) return `${owner} only`;
  return `${owner} and members of ${sharing.groups.join(", ")}`;
}
