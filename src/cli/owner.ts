/**
 * Owner-only start: an endpoint registered by one identity cannot be started by another.
 * `start` checks before it detaches (the owner recorded in `endpoint.json` at registration
 * against the identity of the credentials in use) and fails in one line naming both and
 * what to do.
 *
 * @example
 * ```ts ignore
 * import { checkOwner } from "./owner.ts";
 * await checkOwner("/home/u/.funcx", "default", global); // throws CliError on a mismatch
 * ```
 * @module
 */
import { identitySource } from "../auth/access.ts";
import { whoami } from "../auth/login.ts";
import { endpointPaths } from "../config/paths.ts";
import type { GlobalConfig } from "../config/types.ts";
import { CliError } from "./context.ts";

interface _Registered {
  id: string | null;
  owner: { username: string; email: string | null } | null;
}

function _registered(home: string, name: string): _Registered {
  try {
    const j = JSON.parse(Deno.readTextFileSync(endpointPaths(home, name).endpointJson));
    const o = j?.owner;
    return {
      id: typeof j?.endpoint_id === "string" ? j.endpoint_id : null,
      owner: o && typeof o.username === "string"
        ? { username: o.username, email: typeof o.email === "string" ? o.email : null }
        : null,
    };
  } catch {
    return { id: null, owner: null };
  }
}

function _who(username: string, email: string | null | undefined): string {
  return `${username}${email ? ` <${email}>` : ""}`;
}

/**
 * The one-line refusal naming the owner and the identity in use.
 *
 * @example
 * ```ts
 * ownerMismatchMessage("default", "0b…", "alice", "bob", "stored login tokens");
 * ```
 */
export function ownerMismatchMessage(
  name: string,
  id: string | null,
  owner: string,
  current: string,
  source: string,
): string {
  return `endpoint "${name}"${id ? ` (${id})` : ""} is registered to ${owner}, ` +
    `but you are logged in as ${current} (${source}): log in as the owner ` +
    "(`funcx-endpoint logout` then `funcx-endpoint login`), or register a new endpoint of " +
    "your own with `funcx-endpoint configure NEW_NAME`";
}

function _sourceText(home: string): string {
  const s = identitySource(home);
  return s.kind === "environment"
    ? `FUNCX_SDK_CLIENT_ID ${s.clientId} from the environment`
    : "stored login tokens";
}

/**
 * Refuse (CliError) when `endpoint.json` records an owner other than the identity of the
 * credentials in use. No check before the first registration.
 *
 * @example
 * ```ts ignore
 * await checkOwner(home, "default", global);
 * ```
 */
export async function checkOwner(home: string, name: string, global: GlobalConfig): Promise<void> {
  const reg = _registered(home, name);
  if (!reg.owner) return;
  let info: Record<string, unknown>;
  try {
    info = await whoami(home, global);
  } catch {
    return; // the daemon reports credential problems itself
  }
  const current = String(info.preferred_username ?? info.username ?? "");
  if (current === reg.owner.username) return;
  throw new CliError(
    ownerMismatchMessage(
      name,
      reg.id,
      _who(reg.owner.username, reg.owner.email),
      _who(current, info.email as string | null),
      _sourceText(home),
    ),
  );
}

/**
 * The one-line refusal when the daemon's log shows the service refused the registration
 * because another identity owns the endpoint (code 11); undefined otherwise.
 *
 * @example
 * ```ts ignore
 * ownerMismatchFromLog(home, "default", logTail); // string | undefined
 * ```
 */
export function ownerMismatchFromLog(
  home: string,
  name: string,
  log: string,
): string | undefined {
  const m = /registered by a different identity \(you are ([^)\s]+)\)/.exec(log);
  if (!m) return undefined;
  const reg = _registered(home, name);
  const owner = reg.owner ? _who(reg.owner.username, reg.owner.email) : "another identity";
  return ownerMismatchMessage(name, reg.id, owner, m[1], _sourceText(home));
}
