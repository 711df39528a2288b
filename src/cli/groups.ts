/**
 * `funcx-endpoint service add-group NAME [--admin USER]` and
 * `service group add-member|remove-member|list`: groups of the local service, managed by
 * whoever runs the service (the HTTP API lets group admins do the same).
 *
 * @example
 * ```ts ignore
 * import { registerGroupCommands } from "./groups.ts";
 * registerGroupCommands(serviceCommand, ctx, openStore);
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { servicePaths } from "../config/paths.ts";
import { AuditLog } from "../service/audit.ts";
import type { GroupRole } from "../service/groups.ts";
import { type ServiceStore, StoreError } from "../service/store.ts";
import { type CliContext, CliError } from "./context.ts";

function _with<T>(open: () => ServiceStore, fn: (s: ServiceStore) => T): T {
  const store = open();
  try {
    return fn(store);
  } catch (e) {
    if (e instanceof StoreError) throw new CliError(e.message);
    throw e;
  } finally {
    store.close();
  }
}

/** Audit a change made from the command line (by whoever runs the service). */
function _audit(home: string, fields: Record<string, unknown>): void {
  const log = AuditLog.open(servicePaths(home).dir);
  try {
    log.record("sharing.changed", { ...fields, by: "cli" });
  } finally {
    log.close();
  }
}

function _user(store: ServiceStore, name: string) {
  const u = store.sharing.userByName(name);
  if (!u) {
    throw new CliError(
      `user "${name}" does not exist; create it with \`service add-user ${name}\``,
    );
  }
  return u;
}

function _group(store: ServiceStore, ref: string) {
  const g = store.sharing.findGroup(ref);
  if (!g) {
    throw new CliError(
      `group "${ref}" does not exist; create it with \`service add-group ${ref}\``,
    );
  }
  return g;
}

function _role(value: string): GroupRole {
  if (value !== "admin" && value !== "member") {
    throw new CliError(`--role: expected admin or member, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Add `add-group` and the `group` subcommands to the `service` command.
 *
 * @example
 * ```ts ignore
 * registerGroupCommands(service, ctx, () => ServiceStore.open(path));
 * ```
 */
export function registerGroupCommands(
  service: Command,
  ctx: CliContext,
  open: () => ServiceStore,
): void {
  service
    .command("add-group")
    .description("create a group of the local service (for sharing functions and endpoints)")
    .argument("<name>", "group name")
    .option("--admin <user>", "first admin of the group")
    .action((name, o) => {
      const g = _with(open, (s) => {
        const admin = o.admin === undefined ? undefined : _user(s, o.admin);
        return s.sharing.addGroup(name, admin?.id);
      });
      _audit(ctx.home, { action: "group.create", group: g.name, admin: o.admin ?? null });
      console.log(`Group "${g.name}" created (id ${g.id})${o.admin ? `, admin ${o.admin}` : ""}.`);
    });

  const group = service.command("group").description("manage the members of a group");

  group
    .command("add-member")
    .description("add a user to a group, or change their role")
    .argument("<group>", "group name or id")
    .argument("<user>", "user name")
    .option("--role <role>", "admin or member", "member")
    .action((ref, name, o) => {
      const role = _role(o.role);
      const g = _with(open, (s) => {
        const grp = _group(s, ref);
        s.sharing.setMember(grp.id, _user(s, name).id, role);
        return grp;
      });
      _audit(ctx.home, { action: "group.add-member", group: g.name, user: name, role });
      console.log(`${name} is now ${role === "admin" ? "an admin" : "a member"} of ${g.name}.`);
    });

  group
    .command("remove-member")
    .description("remove a user from a group (effective at their next request)")
    .argument("<group>", "group name or id")
    .argument("<user>", "user name")
    .action((ref, name) => {
      const g = _with(open, (s) => {
        const grp = _group(s, ref);
        if (!s.sharing.removeMember(grp.id, _user(s, name).id)) {
          throw new CliError(`${name} is not a member of ${grp.name}`);
        }
        return grp;
      });
      _audit(ctx.home, { action: "group.remove-member", group: g.name, user: name });
      console.log(`${name} removed from ${g.name}.`);
    });

  group
    .command("list")
    .description("list the groups, or the members of one group")
    .argument("[group]", "group name or id")
    .option("--json", "machine-readable output")
    .action((ref, o) => {
      if (ref === undefined) {
        const groups = _with(open, (s) => s.sharing.listGroups());
        if (o.json) console.log(JSON.stringify({ groups }, null, 2));
        else if (groups.length === 0) console.log("No groups.");
        else for (const g of groups) console.log(`${g.name}  ${g.id}  ${g.members} member(s)`);
        return;
      }
      const out = _with(open, (s) => {
        const g = _group(s, ref);
        return { ...g, members: s.sharing.members(g.id) };
      });
      if (o.json) {
        console.log(JSON.stringify(out, null, 2));
        return;
      }
      console.log(`${out.name}  ${out.id}`);
      for (const m of out.members) {
        console.log(`  ${m.username}${m.email ? ` <${m.email}>` : ""}  ${m.role}`);
      }
    });
}
